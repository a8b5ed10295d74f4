"""Release-level rules: a release from the past, and a figure revised after publication."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from detectors.config import DetectorConfig
from detectors.rules.revisions import ReleaseRevised, TimeReversal
from detectors.types import Batch
from turnout_watch.core.records import Release

TZ = timezone(timedelta(hours=6))
CFG = DetectorConfig()


def at(hour: int) -> datetime:
    return datetime(2023, 3, 19, hour, tzinfo=TZ)


def release(hour: int, values: dict[str, float], revision: int = 0) -> Release:
    return Release("e", at(hour), at(hour) + timedelta(minutes=10), values, revision=revision)


def test_time_reversal_flags_an_unseen_old_release_on_the_nation() -> None:
    noon = at(12).timestamp()
    b = Batch.of(
        release(10, {"KZ-10": 10.0, "KZ-11": 11.0}),
        {"KZ-10": 20.0},
        {"KZ-10": noon},
        latest_as_of=noon,
        names={"KZ": "Kazakhstan"},
    )
    [flag] = TimeReversal().flags(b, CFG)
    assert (flag.region, flag.region_code, flag.detector, flag.severity) == (
        "Kazakhstan",
        "KZ",
        "time_reversal",
        "warning",
    )
    assert (flag.value, flag.expected) == (at(10).timestamp(), noon)
    assert flag.message == (
        "a release as of 10:00 arrived after one as of 12:00; "
        "the CEC republished an old release or back-dated a new one"
    )
    # KZ-10 already has a 12:00 figure; only KZ-11 is new
    assert flag.evidence == {"latest_as_of": "2023-03-19T12:00:00+06:00", "regions_not_seen_before": 1}


def test_time_reversal_ignores_a_redelivery_and_a_release_of_the_latest_hour() -> None:
    noon = at(12).timestamp()
    old = release(10, {"KZ-10": 10.0})
    assert TimeReversal().flags(Batch.of(old, latest_as_of=noon, duplicate=True), CFG) == []
    assert TimeReversal().flags(Batch.of(release(12, {"KZ-10": 10.0}), latest_as_of=noon), CFG) == []
    assert TimeReversal().flags(Batch.of(old), CFG) == []  # nothing processed before


def test_release_revised_flags_changed_figures_of_the_same_hour() -> None:
    noon = at(12).timestamp()
    b = Batch.of(
        release(12, {"KZ-10": 23.0, "KZ-11": 20.0, "KZ-15": 18.5, "KZ-19": 20.5}, revision=1),
        dict.fromkeys(["KZ-10", "KZ-11", "KZ-15", "KZ-19"], 20.0),
        dict.fromkeys(["KZ-10", "KZ-11", "KZ-15", "KZ-19"], noon),
    )
    flags = ReleaseRevised().flags(b, CFG)
    assert [(f.region_code, f.severity, f.value, f.expected, f.evidence) for f in flags] == [
        ("KZ-10", "critical", 23.0, 20.0, {"previous": 20.0, "change_points": 3.0, "revision": 1}),
        ("KZ-15", "critical", 18.5, 20.0, {"previous": 20.0, "change_points": -1.5, "revision": 1}),  # down counts too
        ("KZ-19", "warning", 20.5, 20.0, {"previous": 20.0, "change_points": 0.5, "revision": 1}),
    ]
    assert flags[0].message == "KZ-10's figure as of 12:00 was revised from 20.00% to 23.00% after publication"


def test_a_newer_figure_is_no_revision() -> None:
    b = Batch.of(release(12, {"KZ-10": 23.0}), {"KZ-10": 20.0}, {"KZ-10": at(10).timestamp()})
    assert ReleaseRevised().flags(b, CFG) == []
