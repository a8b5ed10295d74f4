"""Unit tests of the pure detectors and the tracker (no broker)."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from detectors.rules.jumps import cross_sectional_jump
from detectors.rules.values import falling, out_of_range
from detectors.tracker import Release, TurnoutTracker

TZ = timezone(timedelta(hours=6))
pct = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


@given(st.lists(pct, min_size=2, max_size=30))
def test_monotone_series_never_flags_a_decrease(values: list[float]) -> None:
    series = np.sort(np.array(values))
    assert not falling(series[:-1], series[1:]).any()


@given(st.lists(pct, min_size=2, max_size=30), st.data())
def test_any_decrease_flags(values: list[float], data: st.DataObject) -> None:
    series = np.sort(np.array(values))
    i = data.draw(st.integers(min_value=1, max_value=len(series) - 1))
    drop = data.draw(st.floats(min_value=1e-6, max_value=50.0))
    series[i] = series[i - 1] - drop
    flagged = falling(series[:-1], series[1:])
    assert flagged[i - 1]
    assert flagged.sum() == np.sum(np.diff(series) < 0)


def test_out_of_range_and_nan() -> None:
    values = np.array([-0.01, 0.0, 55.0, 100.0, 100.01, np.nan])
    assert out_of_range(values).tolist() == [True, False, False, False, True, False]


def test_falling_ignores_missing_previous() -> None:
    assert not falling(np.array([np.nan, 50.0]), np.array([10.0, np.nan])).any()


@given(
    st.lists(st.floats(min_value=0, max_value=20, allow_nan=False), min_size=6, max_size=25),
    st.floats(min_value=60, max_value=200),
)
def test_one_outlier_stands_out_whatever_the_others(rises: list[float], outlier: float) -> None:
    rates = np.array([*rises, outlier])
    scores = cross_sectional_jump(rates)
    assert scores.z[-1] == np.nanmax(scores.z)
    assert scores.z[-1] > 3
    assert scores.peers[-1] == len(rises)


def _release(hour: int, values: dict[str, float]) -> Release:
    as_of = datetime(2022, 11, 20, hour, tzinfo=TZ)
    return Release("test", as_of, as_of + timedelta(minutes=5), values)


def test_tracker_flags_turkistan_style_jump_and_fall_once() -> None:
    regions = [f"KZ-{n}" for n in (10, 11, 15, 19, 23, 27, 31, 33, 35, 39)]
    tracker = TurnoutTracker("test", {"KZ-61": "Turkistan Region"})
    base = {code: 20.0 + i for i, code in enumerate(regions)} | {"KZ-61": 27.0}
    assert tracker.process(_release(10, base)).flags == []
    later = {code: v + 15.0 + (i % 3) for i, (code, v) in enumerate(base.items())} | {"KZ-61": 64.21}
    result = tracker.process(_release(12, later))
    assert [(f.region_code, f.detector, f.severity) for f in result.flags] == [
        ("KZ-61", "cross_sectional_jump", "critical")
    ]
    assert result.flags[0].value == round(64.21 - 27.0, 4)
    # the same release delivered again (at-least-once) changes nothing and flags nothing
    again = tracker.process(_release(12, later))
    assert again.flags == [] and again.updates == [] and again.stale == len(later)
    fell = dict(later) | {"KZ-11": later["KZ-11"] - 0.07}
    result = tracker.process(_release(14, fell))
    falls = [f for f in result.flags if f.detector == "falling_turnout"]
    assert [(f.region_code, f.severity) for f in falls] == [("KZ-11", "warning")]
    assert falls[0].expected == round(later["KZ-11"], 4)


def test_tracker_out_of_range_is_critical() -> None:
    tracker = TurnoutTracker("test")
    result = tracker.process(_release(10, {"KZ-10": 101.5, "KZ-11": 30.0}))
    assert [(f.region_code, f.detector, f.severity, f.expected) for f in result.flags] == [
        ("KZ-10", "out_of_range", "critical", 100.0)
    ]
