"""Growth after polls close, on batches built by hand."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np

from detectors.config import DetectorConfig
from detectors.rules.closing import GrowthAfterClose, growth_after_close
from detectors.types import Batch
from turnout_watch.core.records import Release

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
