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
