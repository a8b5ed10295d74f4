"""Jumps: against the other regions' rises, and against the region's own past curve."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from detectors.config import DetectorConfig
from detectors.curves import ExpectedCurves
from detectors.robust import MAD_TO_SIGMA
from detectors.rules.jumps import (
    CrossSectionalJump,
    ExpectedCurveJump,
    cross_sectional_jump,
    curve_model,
    expected_curve_residuals,
    jump_scores,
    pace_change_scores,
)
from detectors.types import Batch
from tests.support.days import election_on
from turnout_watch.core.records import Release

TZ = timezone(timedelta(hours=6))
CFG = DetectorConfig()
PEERS = ["KZ-10", "KZ-11", "KZ-15", "KZ-19", "KZ-23"]


def at(hour: int) -> datetime:
    return datetime(2022, 11, 20, hour, tzinfo=TZ)


def batch(
    before: dict[str, float],
    after: dict[str, float],
    curves: ExpectedCurves | None = None,
    pace: dict[str, float] | None = None,
) -> Batch:
    """`before` as of 10:00, `after` as of 12:00 (local +06:00); `pace`: points/h before 10:00."""
    release = Release("e", at(12), at(12) + timedelta(minutes=5), after)
    ten = at(10).timestamp()
    names = {"KZ-61": "Turkistan Region"}
    return Batch.of(release, before, dict.fromkeys(before, ten), names=names, curves=curves, pace=pace)


def surge(curves: ExpectedCurves | None = None) -> Batch:
    """Five regions rise 1..5 points/h over two hours; Turkistan rises 20/h (+40, as in 2022's +37)."""
    before = dict.fromkeys([*PEERS, "KZ-61"], 20.0)
    after = {code: 20.0 + 2.0 * (k + 1) for k, code in enumerate(PEERS)} | {"KZ-61": 60.0, "KZ": 31.0}
    return batch(before | {"KZ": 20.0}, after, curves)


def test_cross_sectional_jump_known_answer() -> None:
    # the others of the last value: 1..5, median 3, MAD 1, so its z is (20 - 3) / 1.4826
    scores = cross_sectional_jump(np.array([1.0, 2.0, 3.0, 4.0, 5.0, 20.0]))
    assert scores.z[-1] == pytest.approx(17 / MAD_TO_SIGMA)
    assert scores.peer_median[-1] == 3.0 and scores.peers[-1] == 5
    # the first value's others are 2..5 and 20: median 4, MAD 1
    assert scores.z[0] == pytest.approx(-3 / MAD_TO_SIGMA)


def test_jump_scores_leave_out_the_nation_and_stale_regions() -> None:
    scores = jump_scores(surge(), CFG)
    assert np.isnan(scores.z[-1])  # KZ, the nation
    assert scores.peers.tolist() == [5] * 6 + [6]


def test_cross_sectional_jump_flags_the_surge_alone() -> None:
    [flag] = CrossSectionalJump().flags(surge(), CFG)
    z = 17 / MAD_TO_SIGMA  # 11.47
    assert (flag.region_code, flag.detector, flag.severity) == ("KZ-61", "cross_sectional_jump", "critical")
    assert (flag.value, flag.expected) == (40.0, 6.0)  # the peers' median 3 points/h over 2 h
    assert flag.message == (
        "Turkistan Region rose 40.0 points in 2 h; other regions rose 6.0 (median), 11.5 robust SDs above them"
    )
    assert flag.evidence == {
        "z": round(z, 2),
        "hours": 2.0,
        "peers": 5,
        "peer_median_points_per_hour": 3.0,
        "peer_sigma_points_per_hour": MAD_TO_SIGMA,
    }


def test_cross_sectional_jump_needs_enough_peers() -> None:
    """With four other regions there is no cross-section to stand out from."""
    b = surge()
    fewer = batch(dict.fromkeys(b.codes[1:], 20.0), dict(zip(b.codes[1:], b.value[1:].tolist(), strict=True)))
    assert CrossSectionalJump().flags(fewer, CFG) == []


def test_a_jump_its_own_curve_predicts_is_a_habit_noted_as_info() -> None:
    """Turkistan's past days quintupled between 10:00 and 12:00 (share 0.125 -> 0.625); the others rose 1.5x."""
    shares = {c: np.array([0.25, 0.375, 1.0]) for c in PEERS} | {"KZ-61": np.array([0.125, 0.625, 1.0])}
    curves = ExpectedCurves(np.array([10.0, 12.0, 22.0]), shares, ("past",))
    b = surge()
    b = batch(
        dict(zip(b.codes, b.prev.tolist(), strict=True)), dict(zip(b.codes, b.value.tolist(), strict=True)), curves
    )
    model = curve_model(b, CFG)
    assert model is not None
    # this day's pace: the median of (value / previous) / past ratio over the six regions, 0.8333
    assert model.day == pytest.approx((24 / 20 / 1.5 + 26 / 20 / 1.5) / 2)
    assert model.expected[5] == pytest.approx(20 * 5 * model.day)  # 83.3: its habit says more than it did
    [flag] = CrossSectionalJump().flags(b, CFG)
    assert flag.severity == "info"
    assert flag.evidence["curve_expected"] == round(250 / 3, 4)
    assert flag.message.endswith("; its own past curves expected 83.3%, so this is its habit, not news")


def test_expected_curve_residuals_scale_by_the_day_and_cap_at_100() -> None:
    expected, residual = expected_curve_residuals(
        np.array([20.0, 60.0]), np.array([45.0, 99.0]), np.array([2.0, 2.0]), 1.1
    )
    assert expected.tolist() == pytest.approx([44.0, 100.0])
    assert residual.tolist() == pytest.approx([1.0, -1.0])


def late_region(with_curves: bool = True) -> Batch:
    """Six regions doubled 10:00 -> 12:00 on past days and today; KZ-75, which used to go 5 -> 10, went 5 -> 22."""
    shares = {c: np.array([0.25, 0.5, 1.0]) for c in [*PEERS, "KZ-61"]} | {"KZ-75": np.array([0.0625, 0.125, 1.0])}
    curves = ExpectedCurves(np.array([10.0, 12.0, 22.0]), shares, ("past",))
    before = dict.fromkeys([*PEERS, "KZ-61"], 20.0) | {"KZ-75": 5.0}
    after = dict.fromkeys([*PEERS, "KZ-61"], 40.0) | {"KZ-75": 22.0}
    return batch(before, after, curves if with_curves else None)


def test_expected_curve_jump_flags_a_region_far_above_its_own_curve() -> None:
    [flag] = ExpectedCurveJump().flags(late_region(), CFG)
    # expected 5 * 2 * 1.0 = 10; residual 12 points = 6/h against the others' 0 (scale floored at 0.5): z 12
    assert (flag.region_code, flag.detector, flag.severity, flag.value, flag.expected) == (
        "KZ-75",
        "expected_curve_jump",
        "critical",
        22.0,
        10.0,
    )
    assert flag.message == (
        "KZ-75 reached 22.0% where its past curves (adjusted to this day) expected 10.0%: 12.0 points over, "
        "12.0 robust SDs beyond the other regions"
    )
    assert flag.evidence == {
        "z": 12.0,
        "excess_points": 12.0,
        "curve_ratio": 2.0,
        "day_adjustment": 1.0,
        "learned_from": ["past"],
    }


def test_expected_curve_jump_needs_past_curves_and_a_large_enough_excess() -> None:
    b = late_region()
    assert ExpectedCurveJump().flags(late_region(with_curves=False), CFG) == []
    assert ExpectedCurveJump().flags(b, DetectorConfig(curve_min_excess_points=12.5)) == []
    assert ExpectedCurveJump().flags(b, DetectorConfig(curve_z_warning=12.5)) == []
    assert [f.severity for f in ExpectedCurveJump().flags(b, DetectorConfig(curve_z_critical=12.5))] == ["warning"]


def test_regions_still_voting_are_not_compared_with_regions_closed() -> None:
    """22:00 capital time on 19 Mar 2023: five regions an hour behind held their last hour of voting."""
    from turnout_watch.core.normalize import election_context

    def scores(on: str) -> tuple[list[float], list[float]]:
        election = election_on(on)
        west = ["KZ-15", "KZ-23", "KZ-27", "KZ-43", "KZ-47"]
        east = [f"KZ-{n}" for n in (10, 11, 19, 31, 33, 35, 39, 55, 59, 61)]
        as_of = datetime.combine(election.date, datetime.min.time().replace(hour=22), election.tz)
        before = dict.fromkeys(west + east, 50.0)
        after = {c: 50.0 + 0.02 * n for n, c in enumerate(east)} | dict.fromkeys(west, 51.0)
        after["KZ-15"] = 51.2
        release = Release("e", as_of, as_of, after, **election_context(election))
        b = Batch.of(release, before, dict.fromkeys(before, as_of.timestamp() - 7200))
        z = jump_scores(b, CFG).z
        return [float(z[b.codes.index(c)]) for c in west], [float(z[b.codes.index(c)]) for c in east]

    west_2023, east_2023 = scores("2023-03-19")
    assert all(np.isnan(west_2023))  # their last hour: too few in that phase, left to the closing rule
    assert not any(np.isnan(east_2023)) and max(east_2023) < 3  # closed regions among themselves
    west_2024, east_2024 = scores("2024-03-17")  # one zone: everyone closed at 20:00, all judged together
    assert not any(np.isnan(west_2024 + east_2024)) and west_2024[0] > max(east_2024)


def paced(late_pace: float) -> Batch:
    """Five regions slowed from 3 points/h to 0.5..2.5; KZ-61, at `late_pace` before, rose 6.5/h (+13 in 2 h)."""
    before = dict.fromkeys([*PEERS, "KZ-61"], 40.0)
    after = {code: 40.0 + 2 * (0.5 + 0.5 * k) for k, code in enumerate(PEERS)} | {"KZ-61": 53.0}
    return batch(before, after, pace=dict.fromkeys(PEERS, 3.0) | {"KZ-61": late_pace})


def test_pace_change_scores_known_answer() -> None:
    # changes of pace: the five peers -2.5, -2, -1.5, -1, -0.5; KZ-61 6.5 - 6 = +0.5
    scores = pace_change_scores(paced(6.0), CFG)
    assert scores.peer_median[5] == -1.5 and scores.peers[5] == 5
    assert scores.z[5] == pytest.approx(2 / (0.5 * MAD_TO_SIGMA))  # 2.70: MAD 0.5 of the others
    # a region without a known pace is neither scored nor a peer
    b = paced(6.0)
    b = batch(dict.fromkeys(b.codes, 40.0), dict(zip(b.codes, b.value.tolist(), strict=True)), pace={"KZ-10": 3.0})
    assert np.isnan(pace_change_scores(b, CFG).z).all()


def test_a_region_keeping_its_own_pace_is_noted_not_alerted() -> None:
    """It rose 6 points/h before and 6.5 now; the others slowed by 0.5..2.5: its rise is an outlier, its pace is not."""
    [flag] = CrossSectionalJump().flags(paced(6.0), CFG)
    # the rise alone: (6.5 - 1.5) / (0.5 * 1.4826) = 6.7 robust SDs, critical before its pace is asked
    assert (flag.region_code, flag.severity, flag.value, flag.expected) == ("KZ-61", "info", 13.0, 3.0)
    assert flag.message == (
        "Turkistan Region rose 13.0 points in 2 h; other regions rose 3.0 (median), 6.7 robust SDs above them; "
        "but it rose 6.0 points/h before and 6.5 now, a change of pace 2.7 robust SDs from the others' "
        "(-1.5/h median): its own pace, not news"
    )
    assert flag.evidence["pace_change_z"] == round(2 / (0.5 * MAD_TO_SIGMA), 2)
    assert flag.evidence["own_pace_points_per_hour"] == 6.0
    assert flag.evidence["peer_median_pace_change"] == -1.5


def test_a_surge_changes_the_region_s_own_pace_and_stays_critical() -> None:
    """The same rise from the same pace as the others (3 points/h): +3.5 against their -1.5, z 6.7."""
    [flag] = CrossSectionalJump().flags(paced(3.0), CFG)
    assert (flag.region_code, flag.severity) == ("KZ-61", "critical")
    assert flag.evidence["pace_change_z"] == round(5 / (0.5 * MAD_TO_SIGMA), 2)
    assert "its own pace" not in flag.message


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
