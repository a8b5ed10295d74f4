"""The typed records every stage shares, and the one codec of the topics that carry them.

| record              | topic               | built by                                          |
|---------------------|---------------------|---------------------------------------------------|
| `Release`           | releases            | the edge (`core.normalize`)                       |
| `RegionUpdate`      | turnout             | the tracker                                       |
| `ObserverCount`     | observer-counts     | the intake's validation, the day-file reader      |
| `StationCounts`     | station-counts      | the counts hop (counts re-keyed by election)      |
| `DeadLetter`        | dead-letter         | any agent, for a record it could not use          |
| `Flag`              | flags               | the detectors (also a line of the flags file)     |

Every record has `to_dict` (the payload, keys in the contract's order); those read back from a topic
have `from_dict`. `encode` and `decode` are the codec: UTF-8 JSON on the wire, a `RecordError` for a
payload that breaks its record's contract. Plain frozen dataclasses, not `faust.Record`, which costs
too much per message at the rates the agents take records.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any, Literal, Protocol, Self, TypeVar
from zoneinfo import ZoneInfo

from turnout_watch.core.errors import RecordError


@dataclass(frozen=True)
class Release:
    """A CEC release after the edge normalised it: region codes (the national figure under `KZ`).

    The optional context travels with every release so a worker needs no other topic to judge it:
    `timezone` (the clock releases are stated in), `polls_open`/`polls_close` (the national unit's, on
    that clock), `polls_open_by_region`/`polls_close_by_region` (each region's own instants, with the
    UTC offset of its own zone on the day: its local hours), `registered` voters per region code
    (weights of the national figure) and `revision` (0 = as first published).
    """

    election: str
    as_of: datetime
    published_at: datetime
    turnout: Mapping[str, float]
    timezone: str | None = None
    polls_close: datetime | None = None
    polls_open: datetime | None = None
    registered: Mapping[str, int] = field(default_factory=dict)
    revision: int = 0
    polls_open_by_region: Mapping[str, datetime] = field(default_factory=dict)
    polls_close_by_region: Mapping[str, datetime] = field(default_factory=dict)

    def opens_of(self, code: str) -> datetime | None:
        """When polls open in region `code`: its own instant, else the day's."""
        return self.polls_open_by_region.get(code, self.polls_open)

    def closes_of(self, code: str) -> datetime | None:
        """When polls close in region `code`: its own instant, else the day's."""
        return self.polls_close_by_region.get(code, self.polls_close)

    @property
    def zone(self) -> tzinfo | None:
        """The zone its local hours are read in: `timezone` when given, else the offset of `as_of`."""
        return ZoneInfo(self.timezone) if self.timezone else self.as_of.tzinfo

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "election": self.election,
            "as_of": self.as_of.isoformat(),
            "published_at": self.published_at.isoformat(),
            "turnout": dict(self.turnout),
        }
        if self.timezone:
            out["timezone"] = self.timezone
        if self.polls_open:
            out["polls_open"] = self.polls_open.isoformat()
        if self.polls_close:
            out["polls_close"] = self.polls_close.isoformat()
        if self.registered:
            out["registered"] = dict(self.registered)
        if self.revision:
            out["revision"] = self.revision
        if self.polls_open_by_region:
            out["polls_open_by_region"] = {k: v.isoformat() for k, v in self.polls_open_by_region.items()}
        if self.polls_close_by_region:
            out["polls_close_by_region"] = {k: v.isoformat() for k, v in self.polls_close_by_region.items()}
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Release:
        """The release a payload holds; RecordError naming the field that breaks the contract.

        Times need their UTC offset (a naive time would be read on the worker's own clock) and every
        figure must be a finite number: `NaN` or `Infinity` are valid JSON for Python, not turnout.
        """
        what = "release"

        def table(key: str, required: bool = False) -> Mapping[str, Any]:
            value = _required(obj, key, what) if required else (obj.get(key) or {})
            if not isinstance(value, Mapping):
                raise RecordError(f"{what}: field {key!r} must be an object, got {value!r}")
            return value

        def instants(key: str) -> dict[str, datetime]:
            times = table(key)
            return {str(k): _time(times, k, f"{what} {key}") for k in times}

        def optional_time(key: str) -> datetime | None:
            return _time(obj, key, what) if obj.get(key) else None

        timezone = obj.get("timezone")
        if timezone is not None and not isinstance(timezone, str):
            raise RecordError(f"{what}: field 'timezone' must be a string, got {timezone!r}")
        return cls(
            election=_text(obj, "election", what),
            as_of=_time(obj, "as_of", what),
            published_at=_time(obj, "published_at", what),
            turnout={str(k): _number(v, f"turnout {k}", what) for k, v in table("turnout", required=True).items()},
            timezone=timezone,
            polls_close=optional_time("polls_close"),
            polls_open=optional_time("polls_open"),
            registered={str(k): _count(v, f"registered {k}", what) for k, v in table("registered").items()},
            revision=_count(obj.get("revision") or 0, "revision", what),
            polls_open_by_region=instants("polls_open_by_region"),
            polls_close_by_region=instants("polls_close_by_region"),
        )


@dataclass(frozen=True)
class RegionUpdate:
    """A region's new figure and how it moved since its previous one (NaN where there was none)."""

    election: str
    region_code: str
    as_of: str
    value: float
    previous: float
    delta: float
    hours: float
    as_of_seconds: float
    jump_z: float = float("nan")  # robust z of the rise against the other regions' (NaN: none)

    @property
    def rate(self) -> float:
        """Points per hour since the previous figure."""
        return self.delta / self.hours if self.hours > 0 else float("nan")

    def to_dict(self) -> dict[str, Any]:
        num = _rounded  # a worker writes ~20 of these per release: no numpy call per figure
        return {
            "election": self.election,
            "region_code": self.region_code,
            "as_of": self.as_of,
            "turnout_pct": self.value,
            "previous_pct": num(self.previous),
            "delta_points": num(self.delta),
            "hours": num(self.hours),
            "points_per_hour": num(self.rate),
            "jump_z": num(self.jump_z),
        }


def _rounded(x: float) -> float | None:
    """A figure as the turnout topic carries it: rounded to 4 decimals, None for NaN (no such figure)."""
    return None if math.isnan(x) else round(x, 4)


Severity = Literal["info", "warning", "critical"]
SEVERITIES: tuple[Severity, ...] = ("info", "warning", "critical")
#: Detectors whose anomalies belong to a region and can persist across releases (see AlertBook).
REGION_DETECTORS = (
    "out_of_range",
    "falling_turnout",
    "cross_sectional_jump",
    "expected_curve_jump",
    "growth_after_close",
    "national_inconsistency",
)
RELEASE_DETECTORS = ("release_revised", "time_reversal")
OBSERVER_DETECTORS = ("official_above_observed", "protocol_above_tally")
#: Every detector name a flag can carry.
DETECTORS = REGION_DETECTORS + RELEASE_DETECTORS + OBSERVER_DETECTORS


@dataclass(frozen=True)
class Flag:
    """One implausible figure: which region, which release, which rule, and the numbers behind it."""

    election: str
    region: str
    region_code: str
    as_of: str
    detector: str
    severity: Severity
    value: float
    expected: float | None
    message: str
    evidence: dict[str, Any] = field(default_factory=dict)
    station: str | None = None  # station-level flags name their polling station

    @property
    def key(self) -> str:
        """The flag's identity: election, detector, region (and station), the hour it is about, its
        severity, for a revision the revision number, and for a station the two figures compared. The
        same anomaly raised again — a redelivered release, a replayed day — has the same key, and is
        published only once."""
        parts = [self.election, self.detector, self.region_code, self.station or "", self.as_of, self.severity]
        revision = self.evidence.get("revision")
        if revision is not None:
            parts.append(f"r{revision}")
        if self.station is not None:  # a station's figures can be corrected within the hour: each pair is news
            parts.append(f"{self.value:g}/{self.expected:g}" if self.expected is not None else f"{self.value:g}")
        return "|".join(parts)

    def to_dict(self) -> dict[str, Any]:
        """The flags-file line (shared/spec/day-format.md), keys in the spec's order."""
        out: dict[str, Any] = {
            "election": self.election,
            "region": self.region,
            "region_code": self.region_code,
            "as_of": self.as_of,
            "detector": self.detector,
            "severity": self.severity,
            "value": self.value,
            "expected": self.expected,
            "message": self.message,
        }
        if self.station is not None:
            out["station"] = self.station
        if self.evidence:
            out["evidence"] = self.evidence
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Flag:
        return cls(
            election=obj["election"],
            region=obj["region"],
            region_code=obj["region_code"],
            as_of=obj["as_of"],
            detector=obj["detector"],
            severity=obj["severity"],
            value=obj["value"],
            expected=obj.get("expected"),
            message=obj["message"],
            evidence=dict(obj.get("evidence") or {}),
            station=obj.get("station"),
        )


Source = Literal["tally", "commission"]
#: Who counted: the observer's own `tally`, or the `commission`'s announced or protocol figure.
SOURCES: tuple[Source, ...] = ("tally", "commission")


def _required(obj: Mapping[str, Any], key: str, what: str) -> Any:
    value = obj.get(key)
    if value is None:
        raise RecordError(f"{what}: missing field {key!r}")
    return value


def _text(obj: Mapping[str, Any], key: str, what: str) -> str:
    value = _required(obj, key, what)
    if not isinstance(value, str):
        raise RecordError(f"{what}: field {key!r} must be a string, got {_shown(value)}")
    if not _encodable(value):
        raise RecordError(f"{what}: field {key!r} holds a lone surrogate (\\ud800-\\udfff), not text")
    return value


def _encodable(text: str) -> bool:
    """Text that UTF-8 can carry: JSON's `\\ud800` escapes give lone surrogates that no producer can write."""
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


#: Times a record may hold: an election of this era, nothing a date library cannot add an hour to.
EARLIEST, LATEST = datetime(1990, 1, 1, tzinfo=UTC).timestamp(), datetime(2100, 1, 1, tzinfo=UTC).timestamp()


#: Whole numbers in records stay below 2**53: exact as floats, so sums of them (the observers' statistics,
#: gauges) neither overflow nor round. No electoral list comes near it; a larger number is a broken record.
MAX_WHOLE = 2**53


def _integer(obj: Mapping[str, Any], key: str, what: str) -> int:
    value = _required(obj, key, what)
    if isinstance(value, bool) or not isinstance(value, int) or not -MAX_WHOLE < value < MAX_WHOLE:
        raise RecordError(f"{what}: field {key!r} must be an integer below 2**53, got {_shown(value)}")
    return value


def _shown(value: Any) -> str:
    """A value for an error message, cut short (a record may hold a 4,000-digit number or a huge list)."""
    text = (
        repr(value) if not isinstance(value, int) or abs(value) < 10**30 else f"an integer of {len(str(value))} digits"
    )
    return text if len(text) <= 80 else text[:77] + "..."


def _number(value: Any, key: str, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not _finite(value):
        raise RecordError(f"{what}: field {key!r} must be a finite number, got {_shown(value)}")
    return float(value)


def _instant(value: Any, key: str, what: str) -> float:
    """Unix seconds of this era (see EARLIEST, LATEST)."""
    seconds = _number(value, key, what)
    if not EARLIEST <= seconds <= LATEST:
        raise RecordError(f"{what}: field {key!r} is not a time of this era (1990-2100): {_shown(value)}")
    return seconds


def _offset(value: Any, what: str) -> float:
    """A UTC offset in seconds, as zones have them (within ±18 hours)."""
    seconds = _number(value, "offset", what)
    if abs(seconds) > 18 * 3600:
        raise RecordError(f"{what}: field 'offset' must be a UTC offset within 18 hours, got {_shown(value)}")
    return seconds


def _finite(value: int | float) -> bool:
    return -MAX_WHOLE < value < MAX_WHOLE if isinstance(value, int) else math.isfinite(value)


def _count(value: Any, key: str, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_WHOLE:
        raise RecordError(f"{what}: field {key!r} must be a whole number >= 0 and below 2**53, got {_shown(value)}")
    return value


def _time(obj: Mapping[str, Any], key: str, what: str) -> datetime:
    text = _text(obj, key, what)
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise RecordError(f"{what}: field {key!r} is not an ISO 8601 time: {text!r}") from exc
    if value.tzinfo is None:
        raise RecordError(f"{what}: field {key!r} needs a UTC offset: {text!r}")
    if not EARLIEST <= value.timestamp() <= LATEST:
        raise RecordError(f"{what}: field {key!r} is not a time of this era (1990-2100): {text!r}")
    return value


#: The payload keys an `ObserverCount` names; any other key travels in `extra`.
OBSERVER_COUNT_KEYS = frozenset(
    {"type", "election", "station", "region", "observer", "observed_at", "received_at", "registered", "voted",
     "source", "report_id", "region_code", "accepted_at", "token_id", "observer_note"}
)  # fmt: skip


@dataclass(frozen=True)
class ObserverCount:
    """One count from a polling station: `voted` of the `registered` voters on its list by `observed_at`.

    The record of the `observer-counts` topic (keyed by station), built where a count enters: by the
    intake's validation (`accepted_at` set once it is accepted) and by the day-file reader (an
    `observer_count` event of shared/spec/day-format.md). `region` is the name as reported;
    `region_code` the gazetteer's code for it, resolved once there. `extra` keeps fields of a day
    file's event this record does not name, so they travel on unchanged.

    From the intake, `observer` is the holder of the token that sent the count and `token_id` that
    token's public id: attribution is the server's, never the client's. What the client wrote in its
    own `observer` field travels only as `observer_note` (when it differs from the holder).
    """

    election: str
    station: str
    region: str
    region_code: str
    observed_at: datetime
    received_at: datetime
    registered: int
    voted: int
    source: Source
    observer: str | None = None
    report_id: str | None = None
    accepted_at: datetime | None = None
    token_id: str | None = None
    observer_note: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @property
    def observed_ts(self) -> float:
        """`observed_at` as unix time."""
        return self.observed_at.timestamp()

    @property
    def event_time(self) -> datetime:
        """When the watch room learned of it (the order a day file replays in)."""
        return self.received_at

    def to_dict(self) -> dict[str, Any]:
        """The topic payload: the day-file event's fields, then `report_id`, `region_code`, `accepted_at`.

        Times in ISO 8601 with their offsets; `accepted_at` to the millisecond.
        """
        out: dict[str, Any] = {
            "type": "observer_count",
            "election": self.election,
            "station": self.station,
            "region": self.region,
        }
        if self.observer is not None:
            out["observer"] = self.observer
        out["observed_at"] = self.observed_at.isoformat()
        out["received_at"] = self.received_at.isoformat()
        out["registered"] = self.registered
        out["voted"] = self.voted
        out["source"] = self.source
        if self.report_id is not None:
            out["report_id"] = self.report_id
        out["region_code"] = self.region_code
        if self.accepted_at is not None:
            out["accepted_at"] = self.accepted_at.isoformat(timespec="milliseconds")
        if self.token_id is not None:
            out["token_id"] = self.token_id
        if self.observer_note is not None:
            out["observer_note"] = self.observer_note
        for key, value in self.extra.items():
            out.setdefault(key, value)
        return out

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> ObserverCount:
        """The count a payload holds; RecordError naming the field that breaks the contract."""
        what = "observer count"
        kind = obj.get("type", "observer_count")
        if kind != "observer_count":
            raise RecordError(f"{what}: type must be 'observer_count', got {kind!r}")
        source = _text(obj, "source", what)
        if source not in SOURCES:
            raise RecordError(f"{what}: source must be 'tally' or 'commission', got {source!r}")
        extra = {k: v for k, v in obj.items() if k not in OBSERVER_COUNT_KEYS}
        optional: dict[str, str | None] = {}
        for key in ("observer", "report_id", "token_id", "observer_note"):  # text when given, else as it came
            value = obj.get(key)
            if isinstance(value, str):
                optional[key] = value
            elif key in obj:
                extra[key] = value
        return cls(
            election=_text(obj, "election", what),
            station=_text(obj, "station", what),
            region=_text(obj, "region", what),
            region_code=_text(obj, "region_code", what),
            observed_at=_time(obj, "observed_at", what),
            received_at=_time(obj, "received_at", what),
            registered=_count(_required(obj, "registered", what), "registered", what),
            voted=_count(_required(obj, "voted", what), "voted", what),
            source="tally" if source == "tally" else "commission",
            observer=optional.get("observer"),
            report_id=optional.get("report_id"),
            accepted_at=None if obj.get("accepted_at") is None else _time(obj, "accepted_at", what),
            token_id=optional.get("token_id"),
            observer_note=optional.get("observer_note"),
            extra=extra,
        )


#: The sums the observers' estimate is built from, in order: stations, and the sums of registered (x),
#: voted (y), x², xy and y² over them (`detectors.observer_estimates`).
AGGREGATE_SUMS = ("n", "sx", "sy", "sxx", "sxy", "syy")


@dataclass(frozen=True, slots=True)
class StationRow:
    """What the estimate and the protocol check need of one count: a row of a `StationCounts` record.

    Times as unix seconds; `offset` is the UTC offset (seconds) the station stated `observed_at` in,
    which places the count in its hour on the station's own clock (`detectors.station_ledger`).
    """

    station: str
    region_code: str
    source: Source
    observed_ts: float
    offset: float
    received_ts: float
    registered: int
    voted: int

    @classmethod
    def of(cls, count: ObserverCount) -> StationRow:
        local = count.observed_at.utcoffset()
        return cls(
            count.station,
            count.region_code,
            count.source,
            count.observed_at.timestamp(),
            local.total_seconds() if local is not None else 0.0,
            count.received_at.timestamp(),
            count.registered,
            count.voted,
        )

    def to_list(self) -> list[Any]:
        return [self.station, self.region_code, self.source, self.observed_ts, self.offset, self.received_ts,
                self.registered, self.voted]  # fmt: skip


#: The fields of a `StationRow` on the wire, in order.
STATION_ROW_FIELDS = ("station", "region_code", "source", "observed_ts", "offset", "received_ts", "registered", "voted")


@dataclass(frozen=True)
class StationCounts:
    """Observer counts of one election, re-keyed by election: the `station-counts` record.

    The counts hop (streams/counts_hop.py) takes counts keyed by station and forwards each batch's
    counts per election, so every count of an election reaches the one worker holding the election. There each
    (station, hour, source) keeps only its latest count: a count sent twice, redelivered or replayed
    replaces itself, never adds (`detectors.station_ledger`). Rows are lists (`STATION_ROW_FIELDS`),
    not objects: a record carries up to a batch of counts.
    """

    election: str
    rows: tuple[StationRow, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"election": self.election, "fields": list(STATION_ROW_FIELDS), "rows": [r.to_list() for r in self.rows]}

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> StationCounts:
        """The counts a payload holds; RecordError naming the row and field that break the contract."""
        what = "station counts"
        election = _text(obj, "election", what)
        rows = _required(obj, "rows", what)
        if not isinstance(rows, list):
            raise RecordError(f"{what}: field 'rows' must be a list, got {_shown(rows)}")
        out = []
        width = len(STATION_ROW_FIELDS)
        for i, row in enumerate(rows):
            where = f"{what} row {i}"
            if not isinstance(row, list) or len(row) != width:
                raise RecordError(f"{where}: must be a list of {width} values ({', '.join(STATION_ROW_FIELDS)})")
            values = dict(zip(STATION_ROW_FIELDS, row, strict=True))
            source = _text(values, "source", where)
            if source not in SOURCES:
                raise RecordError(f"{where}: source must be 'tally' or 'commission', got {_shown(source)}")
            registered, voted = (
                _count(values["registered"], "registered", where),
                _count(values["voted"], "voted", where),
            )
            out.append(
                StationRow(
                    _text(values, "station", where),
                    _text(values, "region_code", where),
                    "tally" if source == "tally" else "commission",
                    _instant(values["observed_ts"], "observed_ts", where),
                    _offset(values["offset"], where),
                    _instant(values["received_ts"], "received_ts", where),
                    registered,
                    voted,
                )
            )
        return cls(election, tuple(out))


@dataclass(frozen=True)
class DeadLetter:
    """A record an agent could not use, and why: the `dead-letter` record, keyed by its source topic.

    The value is kept as it came (text when it is UTF-8, else base64), so an operator can read the
    reason, fix the producer, and re-publish it by hand.
    """

    topic: str
    partition: int
    offset: int
    reason: str
    value: str
    encoding: Literal["utf-8", "base64"] = "utf-8"
    key: str | None = None

    @classmethod
    def of(
        cls, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, reason: str
    ) -> DeadLetter:
        import base64

        raw = value or b""
        try:
            text, encoding = raw.decode(), "utf-8"
        except UnicodeDecodeError:
            text, encoding = base64.b64encode(raw).decode(), "base64"
        shown_key = None if key is None else key.decode(errors="replace")
        return cls(topic, partition, offset, reason, text, "utf-8" if encoding == "utf-8" else "base64", shown_key)

    def to_dict(self) -> dict[str, Any]:
        return {
            "topic": self.topic,
            "partition": self.partition,
            "offset": self.offset,
            "key": self.key,
            "reason": self.reason,
            "encoding": self.encoding,
            "value": self.value,
        }

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> DeadLetter:
        what = "dead letter"
        encoding = _text(obj, "encoding", what)
        key = obj.get("key")
        return cls(
            _text(obj, "topic", what),
            _integer(obj, "partition", what),
            _integer(obj, "offset", what),
            _text(obj, "reason", what),
            _text(obj, "value", what),
            "base64" if encoding == "base64" else "utf-8",
            key if isinstance(key, str) else None,
        )


class Encodable(Protocol):
    """A record that can go on a topic."""

    def to_dict(self) -> dict[str, Any]: ...


class Decodable(Encodable, Protocol):
    """A record that can be read back from its topic."""

    @classmethod
    def from_dict(cls, obj: Mapping[str, Any]) -> Self: ...


D = TypeVar("D", bound=Decodable)


def encode(record: Encodable | Mapping[str, Any]) -> bytes:
    """A record's value as every producer writes it: UTF-8 JSON, names in their own script.

    Plain mappings are for the topics whose payload is kept as the source gave it (raw releases).
    """
    obj = record if isinstance(record, Mapping) else record.to_dict()
    return _ENCODER.encode(obj).encode()


#: What `json.dumps(obj, ensure_ascii=False, allow_nan=False)` builds on every call, built once.
_ENCODER = json.JSONEncoder(ensure_ascii=False, allow_nan=False)


def _refuse_constant(name: str) -> Any:
    """`NaN`, `Infinity` and `-Infinity` are Python's extensions of JSON, not numbers a record may hold."""
    raise RecordError(f"{name} is not a number a record may hold (non-finite)")


def decode(kind: type[D], value: bytes | str) -> D:
    """The `kind` record a topic value holds; RecordError if it is not JSON or breaks the contract."""
    try:
        obj = json.loads(value, parse_constant=_refuse_constant)
    except RecursionError as exc:
        raise RecordError(f"{kind.__name__} record is nested too deeply to read") from exc
    except (TypeError, ValueError) as exc:  # also bytes that are not UTF-8, and 4,300-digit integers
        raise RecordError(f"{kind.__name__} record is not JSON: {exc}") from exc
    if not isinstance(obj, dict):
        raise RecordError(f"{kind.__name__} record must be a JSON object, got {type(obj).__name__}")
    if (b"\\ud" in value or b"\\uD" in value) if isinstance(value, bytes) else ("\\ud" in value or "\\uD" in value):
        try:  # a `\\ud800` escape gives a lone surrogate, which no producer can encode again
            json.dumps(obj, ensure_ascii=False).encode()
        except UnicodeEncodeError as exc:
            raise RecordError(f"{kind.__name__} record holds a lone surrogate (\\ud800-\\udfff), not text") from exc
    try:
        return kind.from_dict(obj)
    except RecordError:
        raise
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        detail = f"missing field {exc}" if isinstance(exc, KeyError) else f"{type(exc).__name__}: {exc}"
        raise RecordError(f"{kind.__name__} record breaks its contract: {detail}") from exc
