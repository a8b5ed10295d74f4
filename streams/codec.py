"""Fast decoding of the records the hot path reads (observer counts, station counts, releases), with the
core codec's exact verdicts.

`turnout_watch.core.records.decode` checks every field through small helpers and builds a full
`ObserverCount` (every time parsed, extras kept) only for the counts hop to keep eight of its fields:
~11 µs a count, more than twice the `json.loads` it starts with. Here one JSON decoder (built once, not
per call as `json.loads(..., parse_constant=...)` does) and one pass of exact type checks give the
same `StationRow`. A payload that passes these checks is one the core decoder accepts with the same
values (tests/streams/test_codec.py holds the two side by side, on good and broken records); anything
else — not JSON, not UTF-8, a missing or mistyped field, a bool for a number — returns None, and the
caller decodes it with the core codec, which raises the RecordError naming what is wrong. So the
dead-letter reasons are the core's, word for word.
"""

from __future__ import annotations

import functools
import json
import math
from datetime import datetime
from typing import Any

from turnout_watch.core.records import (
    EARLIEST,
    LATEST,
    MAX_WHOLE,
    STATION_ROW_FIELDS,
    RegionUpdate,
    Release,
    StationCounts,
    StationRow,
    encode,
)


def _refuse_constant(name: str) -> Any:
    raise ValueError(name)


_DECODER = json.JSONDecoder(parse_constant=_refuse_constant)
_decode_json = _DECODER.decode
_SOURCES = ("tally", "commission")


def _json(value: bytes) -> Any:
    if type(value) is not bytes:  # a tombstone (no value): the core codec names it
        return None
    if b"\\ud" in value or b"\\uD" in value:  # maybe a lone surrogate: the core codec judges it
        return None
    try:
        return _decode_json(value.decode())
    except (ValueError, RecursionError, UnicodeDecodeError):
        return None


def _aware(text: Any) -> datetime | None:
    if type(text) is not str:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None or not EARLIEST <= value.timestamp() <= LATEST:
        return None
    return value


@functools.lru_cache(maxsize=4096)
def _moment(text: str) -> tuple[float, float] | None:
    """(unix seconds, UTC offset in seconds) of an aware ISO time in range; remembered, because a whole
    hour's counts carry the same few observation times (each station's count "as of 14:00")."""
    value = _aware(text)
    if value is None:
        return None
    offset = value.utcoffset()
    return value.timestamp(), offset.total_seconds() if offset is not None else 0.0


def count_row(value: bytes) -> tuple[str, StationRow] | None:
    """(election, row) of an `observer-counts` record, as `StationRow.of(decode(ObserverCount, value))`
    gives them; None when the core decoder must judge it."""
    obj = _json(value)
    if type(obj) is not dict or obj.get("type", "observer_count") != "observer_count":
        return None
    get = obj.get
    election, station, region, code = get("election"), get("station"), get("region"), get("region_code")
    source = get("source")
    registered, voted = get("registered"), get("voted")
    if (
        type(election) is not str
        or type(station) is not str
        or type(region) is not str
        or type(code) is not str
        or type(source) is not str
        or source not in _SOURCES
        or type(registered) is not int
        or type(voted) is not int
        or not 0 <= registered < MAX_WHOLE
        or not 0 <= voted < MAX_WHOLE
    ):
        return None
    observed_at = get("observed_at")
    observed = _moment(observed_at) if type(observed_at) is str else None
    received = _aware(get("received_at"))
    if observed is None or received is None:
        return None
    if get("accepted_at") is not None and _aware(get("accepted_at")) is None:
        return None
    row = StationRow(
        station,
        code,
        "tally" if source == "tally" else "commission",
        observed[0],
        observed[1],
        received.timestamp(),
        registered,
        voted,
    )
    return election, row


#: How `encode` (a `json.JSONEncoder(ensure_ascii=False)`) writes a string: the same function it calls.
_text = json.encoder.encode_basestring
_round = round
_isfinite = math.isfinite
#: A figure's JSON text once rounded: a day repeats the same previous figures, deltas and hours.
_SHOWN: dict[float, str] = {}
_SHOWN_MAX = 1 << 16


def update_value(update: RegionUpdate) -> bytes:
    """A `turnout` record's value, byte for byte as `encode(update)` writes it (`RegionUpdate.to_dict`).

    A release gives ~20 of these; building the dict and walking it in the generic encoder cost the
    releases path about a sixth of the worker's time (bench/agent_throughput.py --profile). Only the
    plain shapes are written here (text fields, finite Python floats); anything else goes through
    `encode`, which writes it, or refuses it, as it always did.
    """
    election, code, as_of = update.election, update.region_code, update.as_of
    value, previous, delta, hours, z = update.value, update.previous, update.delta, update.hours, update.jump_z
    if (
        type(election) is not str
        or type(code) is not str
        or type(as_of) is not str
        or type(value) is not float
        or type(previous) is not float
        or type(delta) is not float
        or type(hours) is not float
        or type(z) is not float
        or not _isfinite(value)
    ):
        return encode(update)
    # `to_dict`'s `_rounded`: NaN is null, anything else rounded to 4 decimals (and must then be finite)
    shown = []
    for x in (previous, delta, hours, update.rate, z):
        text = _SHOWN.get(x) if x else None  # never 0.0 for -0.0 (equal keys) nor NaN (no key)
        if text is None:
            if x != x:
                shown.append("null")
                continue
            rounded = _round(x, 4)
            if not _isfinite(rounded):
                return encode(update)
            text = repr(rounded)
            if x:
                if len(_SHOWN) >= _SHOWN_MAX:
                    _SHOWN.clear()
                _SHOWN[x] = text
        shown.append(text)
    return (
        f'{{"election": {_text(election)}, "region_code": {_text(code)}, "as_of": {_text(as_of)}, '
        f'"turnout_pct": {value!r}, "previous_pct": {shown[0]}, "delta_points": {shown[1]}, '
        f'"hours": {shown[2]}, "points_per_hour": {shown[3]}, "jump_z": {shown[4]}}}'
    ).encode()


def _number(value: Any) -> float | None:
    kind = type(value)
    if kind is float:
        return value if math.isfinite(value) else None
    if kind is int:
        return float(value) if -MAX_WHOLE < value < MAX_WHOLE else None
    return None


def station_counts(value: bytes) -> StationCounts | None:
    """The `station-counts` record, as `decode(StationCounts, value)` gives it; None when the core
    decoder must judge it."""
    obj = _json(value)
    if type(obj) is not dict:
        return None
    election, rows = obj.get("election"), obj.get("rows")
    if type(election) is not str or type(rows) is not list:
        return None
    out: list[StationRow] = []
    append = out.append
    number = _number
    for row in rows:
        if type(row) is not list or len(row) != 8:
            return None
        station, code, source, observed_ts, offset, received_ts, registered, voted = row
        observed_ts, offset, received_ts = number(observed_ts), number(offset), number(received_ts)
        if (
            type(station) is not str
            or type(code) is not str
            or type(source) is not str
            or source not in _SOURCES
            or observed_ts is None
            or offset is None
            or received_ts is None
            or not EARLIEST <= observed_ts <= LATEST
            or not EARLIEST <= received_ts <= LATEST
            or abs(offset) > 18 * 3600
            or type(registered) is not int
            or type(voted) is not int
            or not 0 <= registered < MAX_WHOLE
            or not 0 <= voted < MAX_WHOLE
        ):
            return None
        append(
            StationRow(
                station,
                code,
                "tally" if source == "tally" else "commission",
                observed_ts,
                offset,
                received_ts,
                registered,
                voted,
            )
        )
    return StationCounts(election, tuple(out))


def encode_rows(election: str, rows: list[StationRow]) -> bytes:
    """A `StationCounts` record's value, as `encode(StationCounts(election, tuple(rows)))` writes it."""
    return json.dumps(
        {
            "election": election,
            "fields": list(STATION_ROW_FIELDS),
            "rows": [
                [r.station, r.region_code, r.source, r.observed_ts, r.offset, r.received_ts, r.registered, r.voted]
                for r in rows
            ],
        },
        ensure_ascii=False,
        allow_nan=False,
    ).encode()


#: Times already parsed: a day's releases repeat the same instants (polls of every region, the hours).
_TIMES: dict[str, datetime] = {}
_TIMES_MAX = 4096


def _instant(text: Any) -> datetime | None:
    """`_aware`, remembering what it parsed (datetimes are immutable: sharing one is safe)."""
    if type(text) is not str:
        return None
    got = _TIMES.get(text)
    if got is None:
        got = _aware(text)
        if got is not None:
            if len(_TIMES) >= _TIMES_MAX:
                _TIMES.clear()
            _TIMES[text] = got
    return got


def _instants(table: Any) -> dict[str, datetime] | None:
    """A table of region -> time: None to leave it to the core, as for a missing or empty one ({})."""
    if table is None:
        return {}
    if type(table) is not dict:
        return None
    out = {}
    for key, text in table.items():
        when = _instant(text)
        if when is None:
            return None
        out[key] = when
    return out


def release(value: bytes) -> Release | None:
    """The `releases` record, as `decode(Release, value)` gives it; None when the core decoder must judge it.

    Only the plain shapes are taken (each optional field absent, null or of its type); anything else,
    a falsy stand-in for a missing field included, is the core's to read or refuse.
    """
    obj = _json(value)
    if type(obj) is not dict:
        return None
    get = obj.get
    election, turnout, timezone = get("election"), get("turnout"), get("timezone")
    if type(election) is not str or type(turnout) is not dict or (timezone is not None and type(timezone) is not str):
        return None
    as_of, published_at = _instant(get("as_of")), _instant(get("published_at"))
    if as_of is None or published_at is None:
        return None
    figures: dict[str, float] = {}
    number = _number
    for code, figure in turnout.items():
        got = number(figure)
        if got is None:
            return None
        figures[code] = got
    times: list[datetime | None] = []
    for key in ("polls_close", "polls_open"):
        text = get(key)
        when = None if text is None else _instant(text)
        if when is None and text is not None:
            return None
        times.append(when)
    registered = get("registered")
    if registered is None:
        registered = {}
    elif type(registered) is not dict or not all(type(n) is int and 0 <= n < MAX_WHOLE for n in registered.values()):
        return None
    revision = get("revision")
    if revision is None:
        revision = 0
    elif type(revision) is not int or not 0 <= revision < MAX_WHOLE:
        return None
    opens, closes = _instants(get("polls_open_by_region")), _instants(get("polls_close_by_region"))
    if opens is None or closes is None:
        return None
    return Release(
        election,
        as_of,
        published_at,
        figures,
        timezone,
        times[0],
        times[1],
        registered,
        revision,
        opens,
        closes,
    )
