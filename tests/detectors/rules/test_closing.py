"""Growth after polls close, on batches built by hand."""

from __future__ import annotations

from datetime import datetime, time, timedelta, timezone

import numpy as np

from detectors.config import DetectorConfig
from detectors.rules.closing import GrowthAfterClose, growth_after_close
from detectors.types import Batch
from tests.support.days import election_on
from turnout_watch.core.records import Flag, Release

TZ = timezone(timedelta(hours=6))
CFG = DetectorConfig()
CODES = [f"KZ-{n}" for n in (10, 19, 23, 27, 31, 33)]


def at(hour: int) -> datetime:
    return datetime(2023, 3, 19, hour, tzinfo=TZ)


def after_close(before_hour: int, rises: dict[str, float], close_hour: int | None = 20) -> Batch:
    """Every region at 50 % as of `before_hour`, then at 22:00 risen by `rises` (the others by nothing)."""
    codes = [*CODES, *rises]
    turnout = {c: 50.0 + rises.get(c, 0.0) for c in codes}
    close = None if close_hour is None else at(close_hour)
    release = Release("e", at(22), at(22) + timedelta(minutes=10), turnout, polls_close=close)
    return Batch.of(release, dict.fromkeys(codes, 50.0), dict.fromkeys(codes, at(before_hour).timestamp()))


def test_the_relative_test_spares_a_day_of_late_reports_everywhere() -> None:
    # 1.2 is above the 0.5 allowance but not 3x the median 0.6 of a day when everyone reported late
    assert growth_after_close(np.array([0.6, 0.6, 0.6, 0.5, 1.2]), 0.5).tolist() == [False] * 4 + [False]
    assert growth_after_close(np.array([0.6, 0.6, 0.6, 0.5, 1.9]), 0.5).tolist() == [False] * 4 + [True]
    # NaN (no post-close rise) neither flags nor counts towards the median
    assert growth_after_close(np.array([np.nan, 0.0, 0.0, 0.75]), 0.5).tolist() == [False, False, False, True]


def test_growth_after_close_severities() -> None:
    b = after_close(20, {"KZ-43": 0.75, "KZ-15": 0.35, "KZ-11": 2.5, "KZ-47": 0.25})
    flags = GrowthAfterClose().flags(b, CFG)
    assert [(f.region_code, f.severity, f.value, f.expected) for f in flags] == [
        ("KZ-43", "warning", 0.75, 0.5),
        ("KZ-15", "info", 0.35, 0.5),  # over 0.3 (info) but within the 0.5 late reports explain
        ("KZ-11", "critical", 2.5, 0.5),
    ]
    assert flags[0].message == (
        "KZ-43 rose 0.75 points after polls closed at 20:00 (50.00% -> 50.75%); late reports explain up to 0.5"
    )
    assert flags[0].evidence == {"previous": 50.0, "polls_close": "2023-03-19T20:00:00+06:00"}


def test_only_rises_measured_entirely_after_closing_count() -> None:
    rule = GrowthAfterClose()
    assert rule.flags(after_close(18, {"KZ-43": 2.0}), CFG) == []  # 18:00 -> 22:00 mixes voting and late reports
    assert rule.flags(after_close(20, {"KZ-43": 2.0}, close_hour=22), CFG) == []  # the 22:00 release is not after
    assert rule.flags(after_close(20, {"KZ-43": 2.0}, close_hour=None), CFG) == []  # closing time unknown


def test_the_nation_is_not_judged_by_this_rule() -> None:
    assert GrowthAfterClose().flags(after_close(20, {"KZ": 2.0}), CFG) == []


# Every region on its own clock: a UTC+5 region (Aktobe, Asia/Aqtobe) while the capital was on UTC+6
# (19 Mar 2023) and after the whole country moved to UTC+5 (17 Mar 2024). Releases on the capital's clock.
WEST, EAST = "KZ-15", [f"KZ-{n}" for n in (10, 11, 19, 31, 33, 35, 39, 55, 59, 61)]


def own_clock_day(on: str, west: list[float]) -> list[Flag]:
    """Releases at 16, 18, 20, 22 capital time: the east closed at 20:00 local (+0.05 late), Aktobe's figures given."""
    from detectors.tracker import TurnoutTracker
    from turnout_watch.core.normalize import election_context

    election = election_on(on)
    context = election_context(election)
    tracker, flags = TurnoutTracker("e"), []
    for k, hour in enumerate((16, 18, 20, 22)):
        as_of = datetime.combine(election.date, time(hour), election.tz)
        east = 50.0 + (0.05 if hour == 22 else 2.0 * k)
        turnout = dict.fromkeys(EAST, east) | {WEST: west[k]}
        flags += tracker.process(Release("e", as_of, as_of + timedelta(minutes=10), turnout, **context)).flags
    return [f for f in flags if f.detector == "growth_after_close"]


def test_a_region_an_hour_behind_is_judged_from_its_own_close() -> None:
    # 2023 Aktobe: +0.57 in 18-20, +0.55 in 20-22 capital time; it closed at 21:00 capital time
    aktobe = [56.32, 56.88, 57.45, 58.00]
    assert own_clock_day("2023-03-19", aktobe) == []
    # the same figures a year later, when Aktobe closed with the capital at 20:00: growth after close
    [flag] = own_clock_day("2024-03-17", aktobe)
    assert (flag.region_code, flag.severity, flag.value) == (WEST, "warning", 0.55)
    assert "after polls closed at 20:00" in flag.message


def test_its_last_hour_is_judged_against_its_own_pace() -> None:
    # +2.5 in its last hour after +0.57 in the two before: 1.93 beyond what its pace explains
    [flag] = own_clock_day("2023-03-19", [56.32, 56.88, 57.45, 59.95])
    assert (flag.severity, flag.evidence["voting_hours"], flag.evidence["pace_explains"]) == ("warning", 1.0, 0.57)
    assert flag.expected == 1.07 and "20:00 local (21:00 on the releases' clock)" in flag.message
    assert flag.evidence["polls_close"] == "2023-03-19T20:00:00+05:00"


def test_a_stale_figure_then_a_two_hour_rise_is_normal() -> None:
    # June 2022: the 20:00 release repeated the west's 18:00 figure; 22:00 brought 18:00-21:00 at once
    assert own_clock_day("2023-03-19", [55.0, 56.0, 56.0, 57.4]) == []
    # counted from the 20:00 repeat, the rise would look like one hour at three times its pace
    [flag] = own_clock_day("2023-03-19", [55.0, 56.0, 56.0, 60.5])
    assert flag.evidence["voting_hours"] == 3.0 and flag.severity == "warning"
