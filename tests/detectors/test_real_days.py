"""The detectors beyond the first three: curves, closing time, national figure, revisions, alert book."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from detectors.alert_book import AlertBook
from detectors.curves import PastDay, learn_curves
from detectors.history import load_curves
from detectors.rules.closing import growth_after_close
from detectors.rules.national import weighted_national
from detectors.tracker import Release, TurnoutTracker
from tests.support.paths import DAY_2022, DAY_2023
from turnout_watch.core.dayfile import load_day
from turnout_watch.core.normalize import normalize_release
from turnout_watch.core.records import Flag
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.services.detect import detect_day

TZ = timezone(timedelta(hours=6))
CODES = [f"KZ-{n}" for n in (10, 11, 15, 19, 23, 27, 31, 33, 35, 39, 43, 47)]


def release(hour: int, values: dict[str, float], **context: object) -> Release:
    as_of = datetime(2023, 3, 19, hour, tzinfo=TZ)
    return Release("e", as_of, as_of + timedelta(minutes=10), values, **context)  # type: ignore[arg-type]


def test_growth_after_close_needs_allowance_and_relative_excess() -> None:
    rises = np.array([0.0, 0.0, 0.0, 0.0, 0.1, 0.55, 0.75, np.nan, 0.45])
    assert growth_after_close(rises, 0.5).tolist() == [False] * 5 + [True, True, False, False]
    everyone_late = np.array([0.6, 0.7, 0.65, 0.8])  # a day when every region reported late
    assert not growth_after_close(everyone_late, 0.5).any()


def test_weighted_national_and_coverage() -> None:
    mean, coverage = weighted_national(np.array([50.0, 70.0, np.nan]), np.array([100.0, 300.0, 100.0]), 500.0)
    assert mean == pytest.approx(65.0) and coverage == pytest.approx(0.8)


def test_national_inconsistency_flags_a_national_figure_off_its_regions() -> None:
    registered = {c: 1000 for c in CODES}
    values = {c: 60.0 for c in CODES}
    ok = TurnoutTracker("e").process(release(20, values | {"KZ": 60.3}, registered=registered))
    assert ok.flags == []
    off = TurnoutTracker("e").process(release(20, values | {"KZ": 63.0}, registered=registered))
    assert [(f.detector, f.severity, f.expected) for f in off.flags] == [("national_inconsistency", "critical", 60.0)]
    partial = TurnoutTracker("e").process(
        release(20, dict(list(values.items())[:6]) | {"KZ": 63.0}, registered=registered)
    )
    assert partial.flags == []  # half the electorate is no basis for a national comparison


def test_growth_after_close_in_the_tracker_only_counts_post_close_rises() -> None:
    close = datetime(2023, 3, 19, 20, tzinfo=TZ)
    tracker = TurnoutTracker("e")
    base = {c: 50.0 for c in CODES}
    tracker.process(release(18, base, polls_close=close))
    late = tracker.process(release(22, base | {"KZ-43": 52.0}, polls_close=close))  # 18:00 -> 22:00: mixed
    assert not [f for f in late.flags if f.detector == "growth_after_close"]
    tracker.process(release(20, base, polls_close=close))  # stale: older than 22:00, ignored
    fresh = TurnoutTracker("e")
    fresh.process(release(20, base, polls_close=close))
    flags = fresh.process(release(22, base | {"KZ-43": 50.75, "KZ-15": 50.35}, polls_close=close)).flags
    got = {(f.region_code, f.severity) for f in flags if f.detector == "growth_after_close"}
    assert got == {("KZ-43", "warning"), ("KZ-15", "info")}


def test_time_reversal_and_revision() -> None:
    tracker = TurnoutTracker("e")
    base = {c: 20.0 for c in CODES}
    tracker.process(release(12, base))
    back = tracker.process(release(10, {c: 10.0 for c in CODES}))
    assert [f.detector for f in back.flags] == ["time_reversal"]
    revised = tracker.process(release(12, base | {"KZ-10": 23.0}, revision=1))
    assert [(f.region_code, f.detector, f.severity, f.value, f.expected) for f in revised.flags] == [
        ("KZ-10", "release_revised", "critical", 23.0, 20.0)
    ]
    assert tracker.last_value["KZ-10"] == 23.0
    assert tracker.process(release(12, base | {"KZ-10": 23.0}, revision=1)).flags == []  # redelivered


def flag(severity: str, code: str = "KZ-61", detector: str = "cross_sectional_jump") -> Flag:
    return Flag("e", "Turkistan", code, "t", detector, severity, 1.0, 0.0, "m")  # type: ignore[arg-type]


def test_alert_book_holds_repeats_escalates_and_resolves() -> None:
    book = AlertBook()
    dets = ["cross_sectional_jump"]
    assert book.admit([flag("warning")], ["KZ-61"], dets)[0] == [flag("warning")]
    assert book.admit([flag("warning")], ["KZ-61"], dets) == ([], 1)  # persists: not re-alerted
    escalated, _ = book.admit([flag("critical")], ["KZ-61"], dets)
    assert escalated[0].evidence["escalated_from"] == "warning" and "escalated" in escalated[0].message
    assert book.admit([], ["KZ-61"], dets) == ([], 0)  # resolved
    assert book.admit([flag("warning")], ["KZ-61"], dets)[0] == [flag("warning")]  # news again


def test_curves_learn_share_of_final_and_borrow_through_history() -> None:
    day = PastDay("d", (10.0, 12.0, 22.0), {"KZ-61": (20.0, 40.0, 80.0), "KZ": (10.0, 30.0, 60.0)})
    curves = learn_curves([day], borrow={"KZ-YUZ": ("KZ-61", "KZ-79")})
    assert curves.share_at("KZ-61", np.array([10.0, 11.0, 12.0, 23.0])).tolist() == [0.25, 0.375, 0.5, 1.0]
    assert curves.curve("KZ-YUZ").tolist() == curves.curve("KZ-61").tolist()  # South Kazakhstan -> Turkistan
    assert curves.curve("KZ-75").tolist() == curves.curve("KZ").tolist()  # no history: the nation's
    assert np.isnan(curves.share_at("KZ-61", np.array([9.0]))[0])


def test_expected_curve_jump_catches_a_surge_that_looks_ordinary_next_to_others() -> None:
    """A late-voting region rising like an early one: same points as the others, far above its curve."""
    hours = (10.0, 12.0, 14.0, 22.0)
    past = {c: (20.0, 40.0, 60.0, 80.0) for c in CODES} | {"KZ-75": (5.0, 10.0, 20.0, 80.0)}
    curves = learn_curves([PastDay("past", hours, past)])
    tracker = TurnoutTracker("e", curves=curves)
    tracker.process(
        release(10, {c: 20.0 + i * 0.3 for i, c in enumerate(CODES)} | {"KZ-75": 5.0}, timezone="Asia/Almaty")
    )
    today = {c: 40.0 + i * 0.5 for i, c in enumerate(CODES)} | {"KZ-75": 22.0}  # +17 like the others (+20)
    flags = tracker.process(release(12, today, timezone="Asia/Almaty")).flags
    curve = [f for f in flags if f.detector == "expected_curve_jump"]
    assert [(f.region_code, f.severity) for f in curve] == [("KZ-75", "critical")]
    assert curve[0].expected == pytest.approx(10.0, abs=1.0)
    assert not [f for f in flags if f.detector == "cross_sectional_jump"]


def test_shipped_days_never_learn_from_themselves() -> None:
    for day, other in ((DAY_2022, DAY_2023), (DAY_2023, DAY_2022)):
        # the curves detect uses: learned from the other shipped day only (neither day raises a curve flag)
        curves = load_curves(SHIPPED_ELECTIONS, exclude=load_day(day).election.election)
        assert curves is not None and curves.elections == (other.stem,)
        flags = detect_day(day, history_dir=SHIPPED_ELECTIONS).flags
        learned = {tuple(f.evidence["learned_from"]) for f in flags if f.detector == "expected_curve_jump"}
        assert all(day.stem not in sources for sources in learned)


def test_redelivery_of_a_whole_day_adds_no_flag() -> None:
    """At-least-once delivery: the same releases processed again raise nothing new."""
    day = load_day(DAY_2022)
    releases = [normalize_release(e, day.election.date, election=day.election).release for e in day.releases()]
    tracker = TurnoutTracker(day.election.election)
    first = tracker.process_many(releases)
    again = tracker.process_many(releases)
    assert len(first.flags) >= 5
    assert again.flags == [] and again.updates == []
    assert again.stale == sum(len(r.turnout) for r in releases)


WEST = {"KZ-15", "KZ-23", "KZ-27", "KZ-43", "KZ-47"}  # on UTC+5 while the capital was on UTC+6, until March 2024


def test_the_shipped_days_flags_every_region_on_its_own_clock() -> None:
    """Every flag of the two real days (docs/real-days.md); none on the west for its last hour of voting."""
    flags_2022 = [
        (f.as_of[11:16], f.region_code, f.detector, f.severity)
        for f in detect_day(DAY_2022, history_dir=SHIPPED_ELECTIONS).flags
    ]
    flags_2023 = [
        (f.as_of[11:16], f.region_code, f.detector, f.severity)
        for f in detect_day(DAY_2023, history_dir=SHIPPED_ELECTIONS).flags
    ]
    assert flags_2022 == [
        ("12:00", "KZ-61", "cross_sectional_jump", "critical"),  # Turkistan, reported by observers
        ("14:00", "KZ-10", "cross_sectional_jump", "warning"),  # Abai, reported by observers
        ("18:00", "KZ-19", "cross_sectional_jump", "info"),  # Almaty Region: kept its own pace (7.1 -> 7.9/h)
        ("20:00", "KZ-33", "cross_sectional_jump", "info"),  # Jetisu: slowed from 4.1 to 2.2/h, as the others did
        ("22:00", "KZ-33", "falling_turnout", "warning"),
        ("22:00", "KZ-71", "falling_turnout", "warning"),
        ("22:00", "KZ-59", "growth_after_close", "warning"),  # North Kazakhstan: UTC+6, closed at 20:00
    ]
    assert flags_2023 == [
        ("16:00", "KZ-59", "cross_sectional_jump", "info"),  # its habit, and its own pace
        ("18:00", "KZ-75", "cross_sectional_jump", "info"),  # Almaty (city): 1.9/h before and after
    ]
    assert not [f for f in flags_2022 + flags_2023 if f[1] in WEST and f[0] == "22:00"]
