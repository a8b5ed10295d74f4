"""Impossible values: out of range and falling turnout, on batches built by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from detectors.config import DetectorConfig
from detectors.rules.values import FallingTurnout, OutOfRange, falling, out_of_range
from detectors.types import Batch
from turnout_watch.core.records import Release

TZ = timezone(timedelta(hours=6))
CFG = DetectorConfig()
pct = st.floats(min_value=0.0, max_value=100.0, allow_nan=False)


def at(hour: int) -> datetime:
    return datetime(2022, 11, 20, hour, tzinfo=TZ)


def release(hour: int, values: dict[str, float]) -> Release:
    return Release("e", at(hour), at(hour) + timedelta(minutes=5), values)


def test_out_of_range_flags_both_bounds_as_critical_with_the_bound_expected() -> None:
    b = Batch.of(release(10, {"KZ-10": 101.5, "KZ-11": -0.5, "KZ-15": 100.0}), names={"KZ-10": "Almaty"})
    flags = OutOfRange().flags(b, CFG)
    assert [(f.region, f.region_code, f.severity, f.value, f.expected, f.evidence) for f in flags] == [
        ("Almaty", "KZ-10", "critical", 101.5, 100.0, {"bound": 100.0}),
        ("KZ-11", "KZ-11", "critical", -0.5, 0.0, {"bound": 0.0}),
    ]
    assert flags[0].message == "Almaty reported 101.50% turnout; a share of the list must lie within 0..100%"
    assert flags[0].as_of == "2022-11-20T10:00:00+06:00" and flags[0].detector == "out_of_range"


def test_out_of_range_ignores_a_figure_already_seen() -> None:
    """A redelivered 101 % was flagged when it was news; the stale copy is not judged again."""
    b = Batch.of(release(10, {"KZ-10": 101.5}), {"KZ-10": 101.5}, {"KZ-10": at(10).timestamp()})
    assert not b.fresh[0]
    assert OutOfRange().flags(b, CFG) == []


def test_falling_turnout_is_a_warning_below_a_point_and_critical_from_one() -> None:
    ten = at(10).timestamp()
    b = Batch.of(
        release(12, {"KZ-11": 48.60, "KZ-15": 49.0, "KZ-19": 30.0, "KZ-23": 20.0}),
        {"KZ-11": 48.67, "KZ-15": 50.0, "KZ-19": 29.0},
        {"KZ-11": ten, "KZ-15": ten, "KZ-19": ten},
        names={"KZ-11": "Astana"},
    )
    flags = FallingTurnout().flags(b, CFG)
    assert [(f.region_code, f.severity, f.value, f.expected) for f in flags] == [
        ("KZ-11", "warning", 48.6, 48.67),
        ("KZ-15", "critical", 49.0, 50.0),  # exactly falling_critical_points (1.0)
    ]
    assert flags[0].message == "Astana fell 0.07 points (48.67% -> 48.60%) since 10:00; cumulative turnout cannot fall"
    assert flags[0].evidence == {"previous": 48.67, "drop_points": 0.07, "previous_as_of": "2022-11-20T10:00:00+06:00"}


def test_falling_turnout_severity_follows_the_config() -> None:
    ten = at(10).timestamp()
    b = Batch.of(release(12, {"KZ-11": 48.60}), {"KZ-11": 48.67}, {"KZ-11": ten})
    strict = DetectorConfig(falling_critical_points=0.05)
    assert [f.severity for f in FallingTurnout().flags(b, strict)] == ["critical"]


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
