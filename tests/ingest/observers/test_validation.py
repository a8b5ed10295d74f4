"""`check_count`: every rule names its code and field; a valid count gets a stable report_id and fingerprint.

Only the checks are tested here; what the record published for a valid count holds is the contract with
the streams side, checked on the topic in test_api.py.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest

from ingest.observers.registry import Station
from ingest.observers.validation import CheckedCount, ItemError, PriorCount, check_count, derive_report_id
from tests.support.intake import ELECTION

STATIONS = {
    s.station: s for s in (Station("75-0001", "Almaty", "KZ-75", 2374), Station("71-0001", "Astana", "KZ-71", 1800))
}
NOON = "2022-11-20T12:00:00+06:00"
AFTER_CLOSE = datetime.fromisoformat("2022-11-20T21:00:00+06:00")

History = dict[tuple[str, str], list[PriorCount]]


def check(
    item: Any, history: History | None = None, now: datetime = AFTER_CLOSE, observer: str = "obs-1"
) -> CheckedCount | list[ItemError]:
    return check_count(item, election=ELECTION, stations=STATIONS, history=history or {}, now=now, observer=observer)


def count(**fields: Any) -> dict[str, Any]:
    return {"station": "75-0001", "observed_at": NOON, "voted": 800, **fields}


def valid(result: CheckedCount | list[ItemError]) -> CheckedCount:
    assert isinstance(result, CheckedCount), [e.to_dict() for e in result]
    return result


def problems(result: CheckedCount | list[ItemError]) -> set[tuple[str, str | None]]:
    assert isinstance(result, list), f"accepted: {result}"
    return {(e.code, e.field) for e in result}


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"colour": "red"}, {("unknown_field", "colour")}),
        ({"type": "cec_release"}, {("type", "type")}),
        ({"election": "kz-2023-03-19-majilis"}, {("wrong_election", "election")}),
        ({"election": 2022}, {("type", "election")}),
        ({"station": None}, {("missing", "station")}),
        ({"station": "   "}, {("missing", "station")}),
        ({"station": 750001}, {("type", "station")}),
        ({"station": "99-9999"}, {("unknown_station", "station")}),
        ({"observed_at": None}, {("missing", "observed_at")}),
        ({"observed_at": "noon"}, {("bad_time", "observed_at")}),
        ({"observed_at": "2022-11-20T12:00:00"}, {("bad_time", "observed_at")}),  # no offset
        ({"observed_at": "0001-01-01T00:00:00+01:00"}, {("bad_time", "observed_at")}),
        ({"observed_at": "9999-12-31T23:59:59+00:00"}, {("bad_time", "observed_at")}),
        ({"observed_at": "2022-11-20T06:59:00+06:00"}, {("outside_hours", "observed_at")}),
        ({"observed_at": "2022-11-20T20:01:00+06:00"}, {("outside_hours", "observed_at")}),
        ({"observed_at": "2022-11-19T12:00:00+06:00"}, {("outside_hours", "observed_at")}),
        ({"received_at": "2022-11-21T12:00:00+06:00"}, {("in_future", "received_at")}),
        ({"voted": None}, {("missing", "voted")}),
        ({"voted": ""}, {("missing", "voted")}),
        ({"voted": "many"}, {("type", "voted")}),
        ({"voted": True}, {("type", "voted")}),
        ({"voted": 800.5}, {("type", "voted")}),
        ({"voted": -1}, {("negative", "voted")}),
        ({"voted": "-3"}, {("negative", "voted")}),
        ({"voted": 1_000_001}, {("too_large", "voted")}),
        ({"voted": 2375}, {("exceeds_registered", "voted")}),  # the station's 2374 on the list
        ({"registered": 700}, {("registered_mismatch", "registered")}),  # the registry's 2374 wins
        ({"registered": 1_000_000, "voted": 900_000}, {("registered_mismatch", "registered"),
                                                       ("exceeds_registered", "voted")}),
        ({"registered": 10, "voted": 9}, {("registered_mismatch", "registered")}),
        ({"voted": "1" + "0" * 5000}, {("type", "voted")}),  # past int()'s digit limit: not a 500
        ({"voted": "٣"}, {("type", "voted")}),  # an Arabic-Indic digit: int() reads it, we do not
        ({"station": "7" * 5000}, {("too_long", "station")}),
        ({"observer": "x" * 201}, {("too_long", "observer")}),
        ({"registered": "lots"}, {("type", "registered")}),
        ({"source": "exit_poll"}, {("bad_source", "source")}),
        ({"report_id": "has a space"}, {("bad_report_id", "report_id")}),
        ({"report_id": "x" * 101}, {("bad_report_id", "report_id")}),
        ({"region": "Astana"}, {("region_mismatch", "region")}),
        ({"region": "Atlantis"}, {("region_mismatch", "region")}),
        ({"voted": -1, "observed_at": "noon", "colour": 1}, {("negative", "voted"), ("bad_time", "observed_at"),
                                                             ("unknown_field", "colour")}),
    ],
)  # fmt: skip
def test_each_rule_by_code_and_field(fields: dict[str, Any], expected: set[tuple[str, str | None]]) -> None:
    assert problems(check(count(**fields))) == expected


@pytest.mark.parametrize("item", [[1, 2], "75-0001,800", None, 800])
def test_an_item_that_is_not_an_object(item: Any) -> None:
    assert problems(check(item)) == {("type", None)}


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"voted": "812"},  # a CSV cell
        {"voted": " 812 ", "registered": "2374"},
        {"voted": 0},
        {"voted": 2374},  # everyone on the list
        {"region": "Алматы"},  # another spelling of the station's region
        {"region": "KZ-75"},
        {"observed_at": "2022-11-20T07:00:00+06:00"},  # the hours include both ends
        {"observed_at": "2022-11-20T20:00:00+06:00"},
        {"observed_at": "2022-11-20T06:00:00+05:00"},  # 07:00 in the election's zone
        {"source": "commission", "report_id": "phone-42.1:a_b-c", "type": "observer_count"},
        {"election": "kz-2022-11-20-presidential", "observer": "Aigerim", "received_at": NOON},
    ],
)
def test_valid_counts(fields: dict[str, Any]) -> None:
    checked = valid(check(count(**fields)))
    assert checked.station is STATIONS["75-0001"]
    assert checked.source == fields.get("source", "tally")
    assert checked.observed_ts == datetime.fromisoformat(fields.get("observed_at", NOON)).timestamp()


def test_a_phone_clock_a_little_ahead_is_not_the_future() -> None:
    now = datetime.fromisoformat(NOON)
    valid(check(count(observed_at="2022-11-20T12:02:00+06:00"), now=now))
    assert problems(check(count(observed_at="2022-11-20T12:02:01+06:00"), now=now)) == {("in_future", "observed_at")}
    valid(check(count(received_at="2022-11-20T12:02:00+06:00"), now=now))


def test_errors_carry_the_numbers_behind_them() -> None:
    result = check(count(voted=2375))
    assert isinstance(result, list)
    assert result[0].to_dict() == {
        "code": "exceeds_registered",
        "field": "voted",
        "message": "voted (2375) is more than the 2374 voters on the station's list",
        "params": {"voted": 2375, "registered": 2374},
    }


def prior(at: str, voted: int, report_id: str = "earlier") -> PriorCount:
    return PriorCount(datetime.fromisoformat(at).timestamp(), at, voted, report_id)


def test_history_a_count_never_goes_down_over_the_day() -> None:
    history: History = {("75-0001", "tally"): [prior(NOON, 800)]}
    lower = check(count(voted=700, observed_at="2022-11-20T14:00:00+06:00"), history)
    assert problems(lower) == {("lower_than_earlier", "voted")}
    assert isinstance(lower, list) and lower[0].params == {"earlier_voted": 800, "earlier_at": NOON, "voted": 700}
    assert problems(check(count(voted=900, observed_at="2022-11-20T10:00:00+06:00"), history)) == {
        ("higher_than_later", "voted")
    }
    assert problems(check(count(voted=801), history)) == {("conflicting_count", "voted")}
    valid(check(count(voted=800), history))  # the same figure at the same time: a resend
    valid(check(count(voted=900, observed_at="2022-11-20T14:00:00+06:00"), history))
    valid(check(count(voted=700, observed_at="2022-11-20T14:00:00+06:00", source="commission"), history))
    valid(check(count(voted=700, observed_at="2022-11-20T14:00:00+06:00", report_id="earlier"), history))


def test_report_id_derived_from_the_content_when_not_given() -> None:
    checked = valid(check(count()))
    ts = datetime.fromisoformat(NOON).timestamp()
    assert checked.report_id == derive_report_id(ELECTION.election, "75-0001", "tally", ts, 2374, 800)
    assert checked.report_id.startswith("r-") and len(checked.report_id) == 26
    assert valid(check(count(report_id="phone-42-1"))).report_id == "phone-42-1"
    assert valid(check(count(voted=801))).report_id != checked.report_id
    assert valid(check(count(source="commission"))).report_id != checked.report_id


def test_fingerprint_is_the_count_not_who_sent_it_or_when() -> None:
    first = valid(check(count(), observer="obs-1"))
    resent = valid(check(count(observer="Aigerim", received_at="2022-11-20T12:30:00+06:00"), observer="HQ"))
    assert (resent.report_id, resent.fingerprint) == (first.report_id, first.fingerprint)
    same_instant = valid(check(count(observed_at="2022-11-20T11:00:00+05:00")))  # 12:00 at +06:00
    assert same_instant.fingerprint == first.fingerprint
    assert valid(check(count(voted=801))).fingerprint != first.fingerprint
    assert valid(check(count(registered=2374))).fingerprint == first.fingerprint  # the registry's, repeated


def test_a_clients_report_id_is_scoped_to_its_token() -> None:
    def scoped(token_id: str) -> CheckedCount:
        return valid(
            check_count(count(report_id="phone-1"), election=ELECTION, stations=STATIONS, history={}, now=AFTER_CLOSE,
                        observer="obs-1", token_id=token_id)
        )  # fmt: skip

    mine, theirs = scoped("aaaaaaaaaaaa"), scoped("bbbbbbbbbbbb")
    assert (mine.report_id, theirs.report_id) == ("aaaaaaaaaaaa:phone-1", "bbbbbbbbbbbb:phone-1")
    assert mine.client_report_id == theirs.client_report_id == "phone-1"
    assert mine.record.report_id == mine.report_id and mine.record.token_id == "aaaaaaaaaaaa"
    derived = valid(check(count()))
    assert derived.report_id == derived.client_report_id and derived.report_id.startswith("r-")


def test_error_messages_quote_at_most_a_little_of_a_value() -> None:
    nested: Any = "x"
    for _ in range(900):  # deep enough to break json.dumps' recursion on a small stack, if it recursed
        nested = [nested]
    result = check(count(station={"a": nested}, voted=["y" * 10_000]))
    assert isinstance(result, list) and all(len(e.message) < 200 for e in result)
