"""The fast decoders of streams/codec.py against the core codec: same rows, or None where the core judges."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from streams.app import create_app
from streams.codec import count_row, encode_rows, release, station_counts, update_value
from turnout_watch.core.errors import RecordError
from turnout_watch.core.records import ObserverCount, RegionUpdate, Release, StationCounts, StationRow, decode, encode
from turnout_watch.core.settings import load_settings

COUNT: dict[str, Any] = {
    "type": "observer_count",
    "election": "kz-2024",
    "station": "st-1",
    "region": "Abai",
    "observed_at": "2024-10-06T09:50:00+05:00",
    "received_at": "2024-10-06T09:53:00+05:00",
    "registered": 1500,
    "voted": 300,
    "source": "commission",
    "report_id": "r1",
    "region_code": "KZ-10",
    "accepted_at": "2024-10-06T09:53:01.250+05:00",
    "observer": 7,  # not text: kept in extra by the core, irrelevant to the row
}


def variants() -> list[Any]:
    out: list[Any] = [COUNT, {k: v for k, v in COUNT.items() if k not in ("accepted_at", "type", "observer")}]
    for key, bad in [
        ("registered", True),
        ("registered", 1.0),
        ("registered", 2**53),
        ("voted", -1),
        ("voted", None),
        ("source", "phone"),
        ("source", 1),
        ("observed_at", "2024-10-06T09:50:00"),
        ("observed_at", "yesterday"),
        ("received_at", 5),
        ("accepted_at", "not a time"),
        ("election", 3),
        ("station", None),
        ("region", ["x"]),
        ("region_code", 10),
        ("type", "cec_release"),
    ]:
        out.append({**COUNT, key: bad})
    out.append({k: v for k, v in COUNT.items() if k != "station"})
    return out


def core_row(value: bytes) -> tuple[str, StationRow] | str:
    try:
        count = decode(ObserverCount, value)
    except RecordError as exc:
        return str(exc)
    return count.election, StationRow.of(count)


@pytest.mark.parametrize("payload", variants())
def test_a_count_row_is_the_core_s_or_left_to_it(payload: Any) -> None:
    value = json.dumps(payload).encode()
    fast = count_row(value)
    if fast is not None:
        assert fast == core_row(value)


@pytest.mark.parametrize("value", [b"", b"\xff\xfe", b"[1]", b'{"registered": NaN}', b"null", b"[" * 5000])
def test_what_is_not_a_json_object_is_left_to_the_core(value: bytes) -> None:
    assert count_row(value) is None
    assert station_counts(value) is None


def test_counts_of_good_payloads_take_the_fast_path() -> None:
    assert count_row(json.dumps(COUNT).encode()) is not None


def rows_payload(**row_changes: Any) -> dict[str, Any]:
    row = StationRow("st-1", "KZ-10", "tally", 1728190200.0, 18000.0, 1728190380.5, 1500, 300)
    payload = StationCounts("kz-2024", (row, row)).to_dict()
    fields = payload["fields"]
    for key, value in row_changes.items():
        payload["rows"][1][fields.index(key)] = value
    return payload


@pytest.mark.parametrize(
    "payload",
    [
        rows_payload(),
        rows_payload(observed_ts=1728190200),  # an integer time is a number too
        rows_payload(registered=True),
        rows_payload(voted=-1),
        rows_payload(offset="5h"),
        rows_payload(observed_ts=2**60),
        rows_payload(source="phone"),
        rows_payload(station=None),
        {"election": "kz-2024", "rows": [[1, 2]]},
        {"election": "kz-2024", "rows": {}},
        {"election": 5, "rows": []},
    ],
)
def test_station_counts_are_the_core_s_or_left_to_it(payload: Any) -> None:
    value = json.dumps(payload).encode()
    fast = station_counts(value)
    try:
        core: StationCounts | str = decode(StationCounts, value)
    except RecordError as exc:
        core = str(exc)
    if fast is not None:
        assert fast == core
    else:
        assert isinstance(core, str) or payload["rows"][1][3] == 1728190200  # never None for a good payload


def test_rows_encode_as_the_core_encodes_them() -> None:
    counts = decode(StationCounts, json.dumps(rows_payload()).encode())
    assert encode_rows(counts.election, list(counts.rows)) == encode(counts)


async def test_the_worker_consumer_waits_for_a_fetch_at_most_the_setting(tmp_path: Any) -> None:
    settings = load_settings(data_dir=tmp_path, history_dir=tmp_path / "none", fetch_max_wait=0.05)
    app = create_app(settings, "127.0.0.1:9")
    thread = app.consumer._thread  # type: ignore[attr-defined]
    try:
        consumer = thread._create_worker_consumer(app.transport)
        assert consumer._fetch_max_wait_ms == 50
        await consumer.stop()
    finally:
        thread.thread_loop.close()  # mode's consumer thread made a loop of its own for the thread


RELEASE: dict[str, Any] = {
    "election": "kz-2024",
    "as_of": "2024-10-06T12:00:00+05:00",
    "published_at": "2024-10-06T12:05:00+05:00",
    "turnout": {"KZ-10": 30.25, "KZ-11": 28, "KZ": 29.5},
    "timezone": "Asia/Almaty",
    "polls_open": "2024-10-06T07:00:00+05:00",
    "polls_close": "2024-10-06T20:00:00+05:00",
    "registered": {"KZ-10": 500000, "KZ-11": 400000},
    "revision": 2,
    "polls_open_by_region": {"KZ-10": "2024-10-06T07:00:00+05:00"},
    "polls_close_by_region": {"KZ-10": "2024-10-06T20:00:00+05:00", "KZ-11": "2024-10-06T20:00:00+06:00"},
}


def release_variants() -> list[Any]:
    out: list[Any] = [RELEASE, {k: RELEASE[k] for k in ("election", "as_of", "published_at", "turnout")}]
    for key, bad in [
        ("election", 3),
        ("election", ""),
        ("as_of", "2024-10-06T12:00:00"),
        ("as_of", "noon"),
        ("published_at", None),
        ("turnout", [40.0]),
        ("turnout", {}),
        ("turnout", None),
        ("turnout", {"KZ-10": "40"}),
        ("turnout", {"KZ-10": True}),
        ("turnout", {"KZ-10": 2**53}),
        ("turnout", {"KZ-10": 1e308 * 10}),
        ("timezone", 5),
        ("timezone", ""),
        ("timezone", None),
        ("polls_open", ""),
        ("polls_open", 0),
        ("polls_open", None),
        ("polls_close", "20:00"),
        ("polls_close", 7),
        ("registered", {"KZ-10": -1}),
        ("registered", {"KZ-10": 1.5}),
        ("registered", {"KZ-10": True}),
        ("registered", []),
        ("registered", None),
        ("registered", {}),
        ("revision", 1.5),
        ("revision", -1),
        ("revision", False),
        ("revision", 0),
        ("revision", None),
        ("polls_open_by_region", {"KZ-10": None}),
        ("polls_open_by_region", {"KZ-10": "07:00"}),
        ("polls_open_by_region", []),
        ("polls_open_by_region", ""),
        ("polls_close_by_region", {"KZ-10": "2024-10-06T20:00:00"}),
        ("polls_close_by_region", None),
    ]:
        out.append({**RELEASE, key: bad})
    out.append({k: v for k, v in RELEASE.items() if k != "turnout"})
    out.append({**RELEASE, "extra": {"anything": 1}})
    return out


@pytest.mark.parametrize("payload", release_variants())
def test_a_release_is_the_core_s_or_left_to_it(payload: Any) -> None:
    value = json.dumps(payload).encode()
    fast = release(value)
    try:
        core: Release | str = decode(Release, value)
    except RecordError as exc:
        core = str(exc)
    if fast is not None:
        assert fast == core
        assert encode(fast) == encode(core)


def test_good_releases_take_the_fast_path() -> None:
    assert release(json.dumps(RELEASE).encode()) == decode(Release, json.dumps(RELEASE).encode())
    assert release(encode(decode(Release, json.dumps(RELEASE).encode()))) is not None


@pytest.mark.parametrize("value", [b"", b"\xff\xfe", b"[1]", b'{"turnout": {"KZ-10": NaN}}', b"null", b"[" * 5000])
def test_what_is_not_a_release_object_is_left_to_the_core(value: bytes) -> None:
    assert release(value) is None


def _written(update: RegionUpdate) -> bytes | str:
    try:
        return update_value(update)
    except (ValueError, TypeError) as exc:  # the core's refusal, the same either way
        return f"{type(exc).__name__}: {exc}"


def _encoded(update: RegionUpdate) -> bytes | str:
    try:
        return encode(update)
    except (ValueError, TypeError) as exc:  # the core's refusal, the same either way
        return f"{type(exc).__name__}: {exc}"


@given(
    text=st.text(max_size=12),
    numbers=st.lists(st.one_of(st.floats(), st.integers(-(10**6), 10**6), st.none()), min_size=6, max_size=6),
)
def test_a_turnout_record_is_written_as_the_core_writes_it(text: str, numbers: list[Any]) -> None:
    update = RegionUpdate(text, "KZ-1" + text, "2024-03-17T12:00:00+05:00", *numbers)
    assert _written(update) == _encoded(update)


@pytest.mark.parametrize(
    "figures",
    [
        (41.2, float("nan"), float("nan"), float("nan"), 1.7e9, float("nan")),
        (41.2, 38.05, 3.1500000000000057, 2.0, 1.7e9, 3.27),
        (0.0, -0.0, 0.0, 1e-9, 1.7e9, -0.0),
        (100.0, 99.99, 1e-05, 0.5, 1.7e9, 12345.678912345),
        (5.0, 4.0, 1.0, 1e-310, 1.7e9, float("inf")),  # inf rounds to inf: refused by both
        (1e300, 1.0, 1e300, 1e-300, 1.7e9, 0.1),  # a rate beyond float: refused by both
    ],
)
def test_turnout_records_of_every_shape_are_written_as_the_core_writes_them(figures: tuple[float, ...]) -> None:
    update = RegionUpdate("kz-2024 «выборы»", "KZ-10", "2024-03-17T12:00:00+05:00", *figures)
    assert _written(update) == _encoded(update)
