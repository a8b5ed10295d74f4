"""The alert book: one flag per anomaly, published again only when it escalates or comes back."""

from __future__ import annotations

from detectors.alert_book import AlertBook
from turnout_watch.core.records import Flag, Severity

JUMP = ("cross_sectional_jump",)


def flag(code: str, severity: Severity, detector: str = "cross_sectional_jump", station: str | None = None) -> Flag:
    return Flag(
        "e",
        code,
        code,
        "2022-11-20T12:00:00+06:00",
        detector,
        severity,
        1.0,
        None,
        f"{code} jumped",
        {"z": 7.0},
        station,
    )


def test_a_new_anomaly_is_published_and_a_persisting_one_held_back() -> None:
    book = AlertBook()
    assert book.admit([flag("KZ-61", "warning")], ["KZ-61", "KZ-10"], JUMP) == ([flag("KZ-61", "warning")], 0)
    assert book.active == {("KZ-61", "cross_sectional_jump", None): "warning"}
    assert book.admit([flag("KZ-61", "warning")], ["KZ-61", "KZ-10"], JUMP) == ([], 1)
    # a lower severity of an active anomaly is not news either, and does not lower it
    assert book.admit([flag("KZ-61", "info")], ["KZ-61"], JUMP) == ([], 1)
    assert book.active == {("KZ-61", "cross_sectional_jump", None): "warning"}


def test_escalation_is_published_and_says_from_what() -> None:
    book = AlertBook()
    book.admit([flag("KZ-61", "info")], ["KZ-61"], JUMP)
    [warning], held = book.admit([flag("KZ-61", "warning")], ["KZ-61"], JUMP)
    assert held == 0
    assert warning.severity == "warning" and warning.message == "KZ-61 jumped (escalated from info)"
    assert warning.evidence == {"z": 7.0, "escalated_from": "info"}
    [critical], _ = book.admit([flag("KZ-61", "critical")], ["KZ-61"], JUMP)
    assert critical.message == "KZ-61 jumped (escalated from warning)"
    assert critical.evidence["escalated_from"] == "warning"
    assert book.admit([flag("KZ-61", "critical")], ["KZ-61"], JUMP) == ([], 1)
    assert flag("KZ-61", "critical").evidence == {"z": 7.0}  # the flag raised is left as it was


def test_resolved_then_recurring_is_news_again() -> None:
    book = AlertBook()
    book.admit([flag("KZ-61", "critical")], ["KZ-61"], JUMP)
    # assessed and not raised: resolved
    assert book.admit([], ["KZ-61"], JUMP) == ([], 0)
    assert book.active == {}
    [again], held = book.admit([flag("KZ-61", "warning")], ["KZ-61"], JUMP)
    assert (again.severity, again.message, held) == ("warning", "KZ-61 jumped", 0)  # not an escalation


def test_only_regions_looked_at_by_those_detectors_resolve() -> None:
    book = AlertBook()
    book.admit([flag("KZ-61", "warning"), flag("KZ-61", "warning", "falling_turnout")], ["KZ-61"], JUMP)
    book.admit([], ["KZ-10"], JUMP)  # KZ-61 not in this release: its anomalies stand
    book.admit([], ["KZ-61"], ("expected_curve_jump",))  # another detector looked: the jump stands
    assert book.admit([flag("KZ-61", "warning")], ["KZ-61"], JUMP) == ([], 1)
    # the jump detector looked at KZ-61 and did not raise the fall: the fall is not its to resolve
    book.admit([], ["KZ-61"], JUMP)
    assert set(book.active) == {("KZ-61", "falling_turnout", None)}


def test_in_one_batch_the_first_flag_of_an_anomaly_is_the_news() -> None:
    book = AlertBook()
    published, held = book.admit([flag("KZ-61", "critical"), flag("KZ-61", "warning")], ["KZ-61"], JUMP)
    assert ([f.severity for f in published], held) == (["critical"], 1)
    published, held = book.admit([flag("KZ-10", "info"), flag("KZ-10", "critical")], ["KZ-10"], JUMP)
    assert [(f.severity, f.evidence.get("escalated_from")) for f in published] == [("info", None), ("critical", "info")]


def test_station_anomalies_are_kept_and_resolved_per_station() -> None:
    book = AlertBook()
    tally = ("protocol_above_tally",)
    s1, s2 = (
        flag("KZ-61", "warning", "protocol_above_tally", "S1"),
        flag("KZ-61", "warning", "protocol_above_tally", "S2"),
    )
    assert book.admit([s1, s2], ["S1", "S2"], tally) == ([s1, s2], 0)  # one region, two anomalies
    assert book.admit([s1], ["S1"], tally) == ([], 1)
    book.admit([], ["KZ-61"], tally)  # the region's code does not resolve a station's anomaly
    book.admit([], ["S2"], tally)
    assert set(book.active) == {("KZ-61", "protocol_above_tally", "S1")}
    assert book.admit([s2], ["S2"], tally) == ([s2], 0)
