"""The topic records and their codec: each record round-trips through its payload unchanged, the payload
keeps the contract's keys and spelling, and a payload that breaks the contract is one clear RecordError."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from datetime import datetime
from typing import Any

import pytest

from turnout_watch.core.dayfile import UnplacedCount, parse_event
from turnout_watch.core.errors import DayFileError, RecordError, TurnoutWatchError
from turnout_watch.core.records import (
    STATION_ROW_FIELDS,
    DeadLetter,
    Flag,
    ObserverCount,
    Release,
    StationCounts,
    StationRow,
    decode,
    encode,
)

#: What the intake publishes for an accepted count (shared/spec/day-format.md + region_code, report_id,
#: accepted_at), in the order it publishes the keys.
INTAKE_PAYLOAD: dict[str, Any] = {
    "type": "observer_count",
    "election": "kz-2022-11-20-presidential",
    "station": "75-0203",
    "region": "Алматы",
    "observer": "obs-0042",
    "observed_at": "2022-11-20T12:00:00+06:00",
    "received_at": "2022-11-20T12:03:10+06:00",
    "registered": 2374,
    "voted": 812,
    "source": "tally",
    "report_id": "phone-42.1",
    "region_code": "KZ-75",
    "accepted_at": "2022-11-20T12:03:10.250+06:00",
}


def test_an_observer_count_round_trips_byte_for_byte() -> None:
    wire = json.dumps(INTAKE_PAYLOAD, ensure_ascii=False).encode()
    count = decode(ObserverCount, wire)
    assert count.region_code == "KZ-75" and count.source == "tally" and count.report_id == "phone-42.1"
    assert count.observed_ts == datetime.fromisoformat("2022-11-20T12:00:00+06:00").timestamp()
    assert count.event_time == count.received_at
    assert encode(count) == wire  # same keys, same order, same spelling (names in their own script)


def test_an_observer_count_from_a_day_file_keeps_what_it_does_not_name() -> None:
    event = {k: v for k, v in INTAKE_PAYLOAD.items() if k not in ("report_id", "region_code", "accepted_at")}
    count = ObserverCount.from_dict({**event, "note": "late", "observer": None, "region_code": "KZ-75"})
    assert count.observer is None and count.report_id is None and count.accepted_at is None
    assert count.to_dict() == {**event, "region_code": "KZ-75", "note": "late", "observer": None}


def test_accepted_at_is_spelled_to_the_millisecond() -> None:
    count = decode(ObserverCount, json.dumps(INTAKE_PAYLOAD))
    stamped = ObserverCount.from_dict({**count.to_dict(), "accepted_at": "2022-11-20T12:03:10+06:00"})
    assert stamped.to_dict()["accepted_at"] == "2022-11-20T12:03:10.000+06:00"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"region_code": None}, "missing field 'region_code'"),
        ({"voted": "812"}, "field 'voted' must be a whole number"),
        ({"registered": True}, "field 'registered' must be a whole number"),
        ({"voted": -1}, "field 'voted' must be a whole number >= 0"),
        ({"registered": -5}, "field 'registered' must be a whole number >= 0"),
        ({"observed_at": "9999-12-31T23:00:00-12:00"}, "'observed_at' is not a time of this era"),
        ({"station": "\ud800"}, "lone surrogate"),
        ({"observer": "\ud800"}, "lone surrogate"),
        ({"station": 75}, "field 'station' must be a string"),
        ({"observed_at": "noon"}, "field 'observed_at' is not an ISO 8601 time"),
        ({"received_at": "2022-11-20T12:03:10"}, "field 'received_at' needs a UTC offset"),
        ({"accepted_at": 5}, "field 'accepted_at' must be a string"),
        ({"source": "guess"}, "source must be 'tally' or 'commission'"),
        ({"type": "cec_release"}, "type must be 'observer_count'"),
    ],
)
def test_an_observer_count_that_breaks_the_contract(change: dict[str, Any], message: str) -> None:
    payload = {k: v for k, v in {**INTAKE_PAYLOAD, **change}.items() if v is not None}
    with pytest.raises(RecordError, match=message):
        decode(ObserverCount, json.dumps(payload))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (b"{not json", "ObserverCount record is not JSON"),
        (b"\xff\xfe", "ObserverCount record is not JSON"),
        (None, "ObserverCount record is not JSON"),  # a tombstone
        (b"[1, 2]", "must be a JSON object, got list"),
    ],
)
def test_a_payload_that_is_not_a_record(value: Any, message: str) -> None:
    with pytest.raises(RecordError, match=message) as info:
        decode(ObserverCount, value)
    assert isinstance(info.value, TurnoutWatchError) and isinstance(info.value, ValueError)


def station_row(**changes: Any) -> StationRow:
    row = StationRow("75-0002", "KZ-75", "tally", 1668924000.0, 18000.0, 1668924010.5, 3000, 1200)
    return replace(row, **changes)


def test_station_counts_round_trip_as_the_agent_sent_them() -> None:
    sent = StationCounts("e", (station_row(), station_row(station="75-0003", source="commission", voted=1300)))
    wire = encode(sent)
    assert json.loads(wire)["fields"] == list(STATION_ROW_FIELDS)
    assert decode(StationCounts, wire) == sent


def test_a_station_row_is_what_the_count_says() -> None:
    count = ObserverCount(
        "e", "75-0002", "Almaty", "KZ-75", datetime.fromisoformat("2022-11-20T11:50:00+05:00"),
        datetime.fromisoformat("2022-11-20T11:51:00+06:00"), 3000, 1200, "tally",
    )  # fmt: skip
    row = StationRow.of(count)
    assert (row.offset, row.observed_ts) == (18000.0, count.observed_at.timestamp())
    assert (row.received_ts, row.registered, row.voted, row.source) == (
        count.received_at.timestamp(),
        3000,
        1200,
        "tally",
    )


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        ("x", "'rows' must be a list"),
        ([["75-0002", "KZ-75", "tally", 1.0, 0.0, 1.0, 3000]], "row 0: must be a list of 8 values"),
        ([{"station": "75-0002"}], "row 0: must be a list of 8 values"),
        ([["75-0002", "KZ-75", "guess", 1.0, 0.0, 1.0, 3000, 1]], "row 0: source must be"),
        ([["75-0002", "KZ-75", "tally", "noon", 0.0, 1.0, 3000, 1]], "'observed_ts' must be a finite number"),
        ([["75-0002", "KZ-75", "tally", 1e308 * 10, 0.0, 1.0, 3000, 1]], "Infinity is not a number"),
        ([["75-0002", "KZ-75", "tally", 1.0, 0.0, 1.0, 3000.5, 1]], "'registered' must be a whole number"),
        ([["75-0002", "KZ-75", "tally", 1.0, 0.0, 1.0, 10**400, 1]], "'registered' must be a whole number"),
        ([["75-0002", 75, "tally", 1.0, 0.0, 1.0, 3000, 1]], "'region_code' must be a string"),
        ([["75-0002", "KZ-75", "tally", 1.0, 0.0, 1.0, 3000, -1]], "'voted' must be a whole number >= 0"),
    ],
)
def test_station_counts_that_break_the_contract(rows: Any, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        decode(StationCounts, json.dumps({"election": "e", "fields": list(STATION_ROW_FIELDS), "rows": rows}))


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ('{"election": "e", "rows": [["s", "KZ-75", "tally", NaN, 0, 1, 3, 1]]}', "NaN is not a number"),
        ('{"election": "e", "rows": [["s", "KZ-75", "tally", Infinity, 0, 1, 3, 1]]}', "Infinity is not a number"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ('{"election": "e", "rows": [["s", "KZ-75", "tally", 1, 0, 1, ' + "9" * 5000 + ", 1]]}", "not JSON"),
        ("[1, 2]", "must be a JSON object, got list"),
        ("17", "must be a JSON object, got int"),
        ('"text"', "must be a JSON object, got str"),
        (b"\xff\xfe{", "not JSON"),
    ],
)
def test_a_value_no_record_may_hold(value: str | bytes, message: str) -> None:
    """Non-finite constants, nesting past the parser's depth, integers past Python's digit limit."""
    with pytest.raises(RecordError, match=message):
        decode(StationCounts, value)


def test_a_record_is_never_written_with_a_non_finite_number() -> None:
    with pytest.raises(ValueError, match="Out of range float"):
        encode({"value": float("inf")})


def test_a_flag_key_names_the_anomaly_not_the_delivery() -> None:
    flag = Flag(
        "e", "Turkistan", "KZ-61", "2022-11-20T12:00:00+06:00", "cross_sectional_jump", "critical", 9.0, 1.0, "m"
    )
    again = Flag.from_dict(json.loads(encode(flag)))
    assert again.key == flag.key
    assert replace(flag, severity="warning").key != flag.key  # an escalation is news
    assert replace(flag, as_of="2022-11-20T14:00:00+06:00").key != flag.key
    assert replace(flag, station="61-0001").key != flag.key
    revised = replace(flag, detector="release_revised", evidence={"revision": 1})
    assert replace(revised, evidence={"revision": 2}).key != revised.key
    assert replace(flag, message="other words", value=9.5).key == flag.key  # same anomaly, same hour


@pytest.mark.parametrize("value", [b'{"a": 1}', b"\xff\x00binary"])
def test_a_dead_letter_keeps_the_value_as_it_came(value: bytes) -> None:
    letter = DeadLetter.of("tw.releases", 2, 41, b"e", value, "release: missing field 'as_of'")
    back = decode(DeadLetter, encode(letter))
    assert back == letter
    raw = back.value.encode() if back.encoding == "utf-8" else base64.b64decode(back.value)
    assert raw == value


def release() -> Release:
    noon = datetime.fromisoformat("2022-11-20T12:00:00+06:00")
    return Release(
        "e", noon, noon, {"KZ": 40.5, "KZ-61": 44.0}, "Asia/Almaty", noon, noon, {"KZ-61": 1_500_000}, revision=1
    )


def test_releases_and_flags_round_trip_through_the_codec() -> None:
    assert decode(Release, encode(release())) == release()
    flag = Flag("e", "Turkistan Region", "KZ-61", "2022-11-20T12:00:00+06:00", "cross_sectional_jump", "critical",
                37.18, 15.2, "Turkistan rose", {"z": 5.1}, station=None)  # fmt: skip
    assert decode(Flag, encode(flag)) == flag
    assert encode(flag) == json.dumps(flag.to_dict(), ensure_ascii=False).encode()


@pytest.mark.parametrize(
    ("kind", "payload", "message"),
    [
        (Release, {"election": "e", "as_of": "2022-11-20T12:00:00+06:00"}, "release: missing field 'published_at'"),
        (Release, {**release().to_dict(), "as_of": "noon"}, "release: field 'as_of' is not an ISO 8601 time"),
        (Release, {**release().to_dict(), "as_of": "2022-11-20T12:00:00"}, "release: field 'as_of' needs a UTC offset"),
        (Release, {**release().to_dict(), "turnout": [40.5]}, "release: field 'turnout' must be an object"),
        (Release, {**release().to_dict(), "turnout": {"KZ": float("nan")}}, "NaN is not a number a record may hold"),
        (Release, {**release().to_dict(), "turnout": {"KZ": float("inf")}}, "Infinity is not a number a record may"),
        (Release, {**release().to_dict(), "turnout": {"KZ": 10**300}}, "'turnout KZ' must be a finite number"),
        (Release, {**release().to_dict(), "revision": 2**60}, "'revision' must be a whole number"),
        (Release, {**release().to_dict(), "election": 7}, "release: field 'election' must be a string"),
        (Release, {**release().to_dict(), "revision": -1}, "'revision' must be a whole number"),
        (Flag, {"election": "e"}, "Flag record breaks its contract: missing field 'region'"),
    ],
)
def test_releases_and_flags_that_break_the_contract(kind: type[Release | Flag], payload: Any, message: str) -> None:
    with pytest.raises(RecordError, match=message):
        decode(kind, json.dumps(payload))


def test_the_day_file_reader_resolves_a_count_region_once_at_the_edge() -> None:
    event = {k: v for k, v in INTAKE_PAYLOAD.items() if k not in ("report_id", "region_code", "accepted_at")}
    count = parse_event({**event, "region": "Almaty"}, "day.jsonl:2", on=datetime(2022, 11, 20).date())
    assert isinstance(count, ObserverCount) and count.region_code == "KZ-75" and count.region == "Almaty"
    assert count.to_dict() == {**event, "region": "Almaty", "region_code": "KZ-75"}  # what replay publishes
    unplaced = parse_event({**event, "region": "Atlantis"}, "day.jsonl:3")
    assert isinstance(unplaced, UnplacedCount) and "unknown region 'Atlantis'" in unplaced.problem
    with pytest.raises(DayFileError, match=re.escape("day.jsonl:4: observer count: field 'accepted_at' must be")):
        parse_event({**event, "accepted_at": 5}, "day.jsonl:4")
