"""The tracker runs the rules in a fixed order under the names the rest of the system knows."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from detectors.rules.observers import ProtocolAboveTally
from detectors.tracker import OBSERVED_RULE, REGION_DETECTORS, REGION_RULES, RELEASE_RULES, TurnoutTracker
from turnout_watch.core import records
from turnout_watch.core.records import DETECTORS, OBSERVER_DETECTORS, RELEASE_DETECTORS, Release

TZ = timezone(timedelta(hours=6))
NOON = datetime(2023, 3, 19, 12, tzinfo=TZ)


def test_rule_names_are_the_detector_names_of_the_records() -> None:
    assert REGION_DETECTORS == records.REGION_DETECTORS
    assert {rule.detector for rule in RELEASE_RULES} == set(RELEASE_DETECTORS)
    assert (OBSERVED_RULE.detector, ProtocolAboveTally().detector) == OBSERVER_DETECTORS
    assert len(set(DETECTORS)) == len(REGION_RULES) + len(RELEASE_RULES) + 2


def test_release_flags_come_first_then_region_flags_in_rule_order() -> None:
    tracker = TurnoutTracker("e")
    tracker.process(Release("e", NOON, NOON, {"KZ-10": 20.0, "KZ-11": 30.0}))
    # the same hour again: KZ-10 revised; KZ-15 new and over 100; KZ-19 new and out of range below 0
    result = tracker.process(Release("e", NOON, NOON, {"KZ-15": 101.0, "KZ-10": 21.5, "KZ-11": 30.0, "KZ-19": -1.0}))
    assert [(f.region_code, f.detector) for f in result.flags] == [
        ("KZ-10", "release_revised"),
        ("KZ-15", "out_of_range"),
        ("KZ-19", "out_of_range"),
    ]
    assert result.stale == 1  # KZ-11: the same figure again


def test_a_persisting_anomaly_is_held_back_until_it_escalates() -> None:
    tracker = TurnoutTracker("e")
    hour = [NOON + timedelta(hours=h) for h in range(3)]
    tracker.process(Release("e", hour[0], hour[0], {"KZ-10": 50.0}))
    first = tracker.process(Release("e", hour[1], hour[1], {"KZ-10": 49.9}))
    again = tracker.process(Release("e", hour[2], hour[2], {"KZ-10": 49.8}))
    assert [(f.detector, f.severity) for f in first.flags] == [("falling_turnout", "warning")]
    assert (again.flags, again.held_back) == ([], 1)


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
