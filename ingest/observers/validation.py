"""Check one submitted count against the contract, the registry, the election and what came before.

Every problem of an item is reported (not just the first), each with a stable `code` (the form
translates it), the `field` it concerns, a plain-English `message` and the numbers behind it in
`params`. Checks that need the station (counts, history) run only once the station is known.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from dataclasses import field as dataclass_field
from datetime import UTC, date, datetime, timedelta, tzinfo
from typing import Any

from ingest.observers.registry import Station
from turnout_watch.core.dayfile import Election
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.records import SOURCES, ObserverCount

FIELDS = frozenset(
    {"type", "election", "station", "region", "observer", "observed_at", "received_at", "registered", "voted",
     "source", "report_id"}
)  # fmt: skip
REPORT_ID = re.compile(r"^[A-Za-z0-9._:-]{1,100}$")
#: Longest text a field may hold (station ids, region names, notes): anything longer is not a count.
MAX_TEXT = 200
#: A whole number spelled as text (a CSV cell): ASCII digits only, and few of them, so `int()` stays cheap.
INTEGER_TEXT = re.compile(r"\s*-?[0-9]{1,15}\s*")
MAX_SHOWN = 60
MAX_UNKNOWN = 10


def show(value: Any) -> str:
    """A value as an error message quotes it: JSON, cut short (a message never echoes a megabyte back)."""
    try:
        text = json.dumps(value, ensure_ascii=False)
    except (ValueError, TypeError, RecursionError):
        text = type(value).__name__
    return text if len(text) <= MAX_SHOWN else text[: MAX_SHOWN - 1] + "…"


#: Phones' clocks drift; a count stamped a little ahead of the server's clock is not "in the future".
CLOCK_SKEW = timedelta(minutes=2)


@dataclass(frozen=True)
class ItemError:
    code: str
    field: str | None
    message: str
    params: Mapping[str, Any] = dataclass_field(default_factory=dict)  # `field` is the attribute above

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "field": self.field, "message": self.message, "params": dict(self.params)}


@dataclass(frozen=True)
class PriorCount:
    """An accepted (or in-flight) count of the same station and source."""

    observed_ts: float
    observed_at: str
    voted: int
    report_id: str


@dataclass(frozen=True)
class CheckedCount:
    """A valid count: the record to publish (`accepted_at` is set once it is), its idempotency key and
    content fingerprint."""

    station: Station
    source: str
    report_id: str
    fingerprint: str
    observed_ts: float
    record: ObserverCount
    client_report_id: str = ""  # the id the client knows it by (its own, or the derived one)


def _text(item: Mapping[str, Any], key: str, errors: list[ItemError], *, required: bool) -> str | None:
    value = item.get(key)
    if type(value) is str and len(value) <= MAX_TEXT:  # the usual case first: plain text of a sane length
        stripped = value.strip()
        if stripped:
            return stripped
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            errors.append(ItemError("missing", key, f"{key} is required"))
        return None
    if not isinstance(value, str):
        errors.append(ItemError("type", key, f"{key} must be text, got {show(value)}"))
        return None
    if len(value) > MAX_TEXT:
        errors.append(ItemError("too_long", key, f"{key} is longer than {MAX_TEXT} characters", {"max": MAX_TEXT}))
        return None
    return value.strip()


def _integer(item: Mapping[str, Any], key: str, errors: list[ItemError], *, required: bool) -> int | None:
    value = item.get(key)
    if type(value) is int and 0 <= value <= 1_000_000:  # the usual case first (a bool is not an int here)
        return value
    if value is None or value == "":
        if required:
            errors.append(ItemError("missing", key, f"{key} is required"))
        return None
    if isinstance(value, str) and INTEGER_TEXT.fullmatch(value):  # CSV cells are text
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        errors.append(ItemError("type", key, f"{key} must be a whole number, got {show(value)}"))
        return None
    if value < 0:
        errors.append(ItemError("negative", key, f"{key} cannot be negative ({value})", {"value": value}))
        return None
    if value > 1_000_000:
        errors.append(ItemError("too_large", key, f"{key} {value} is far more than any station's voters"))
        return None
    return value


#: Times outside these are not times of a count (and would overflow on conversion between zones).
TIME_RANGE = (datetime(1900, 1, 1, tzinfo=UTC), datetime(9000, 1, 1, tzinfo=UTC))


def _time(item: Mapping[str, Any], key: str, errors: list[ItemError], *, required: bool) -> datetime | None:
    text = _text(item, key, errors, required=required)
    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        errors.append(ItemError("bad_time", key, f"{key} {text!r} is not a time like 2022-11-20T12:00:00+06:00"))
        return None
    if value.tzinfo is None:
        errors.append(ItemError("bad_time", key, f"{key} {text!r} needs a UTC offset, like +06:00"))
        return None
    try:  # year 1 at +01:00 parses but cannot be placed on a clock, nor year 9999 in Kazakhstan's zone
        in_range = TIME_RANGE[0] <= value.astimezone(UTC) <= TIME_RANGE[1]
    except OverflowError:
        in_range = False
    if not in_range:
        errors.append(ItemError("bad_time", key, f"{key} {text!r} is not a date between 1900 and 9000"))
        return None
    return value


def derive_report_id(election: str, station: str, source: str, observed_ts: float, registered: int, voted: int) -> str:
    """The idempotency key of a report sent without one: the same count sent twice is one report."""
    basis = json.dumps([election, station, source, round(observed_ts), registered, voted])
    return "r-" + hashlib.sha256(basis.encode()).hexdigest()[:24]


def check_count(
    item: Any,
    *,
    election: Election,
    stations: Mapping[str, Station],
    history: Mapping[tuple[str, str], Sequence[PriorCount]],
    now: datetime,
    observer: str,
    token_id: str = "",
    accepted_at: datetime | None = None,
) -> CheckedCount | list[ItemError]:
    """One item of a request: a CheckedCount, or every problem found with it.

    The registry is the only source of the station's `registered`, region and the election: a body may
    repeat them (a phone shows what it was told), but one that disagrees is refused, never taken. The
    record names `observer` (the token's holder) and `token_id`; the body's own `observer` is a note.
    A `report_id` the client chose is scoped to its token (`<token_id>:<report_id>` on the topic), so
    nobody can claim another's ids; one derived from the content needs no scope. `accepted_at`: the
    time the record will carry if it is accepted (the intake knows it when it asks; None leaves it unset).
    """
    if not isinstance(item, Mapping):
        return [ItemError("type", None, f"each count must be a JSON object, got {type(item).__name__}")]
    errors: list[ItemError] = []
    unknown = () if FIELDS.issuperset(item) else sorted(set(item) - FIELDS)[:MAX_UNKNOWN]
    for key in unknown:  # a few name the mistake; 100,000 would be an echo
        errors.append(
            ItemError("unknown_field", key[:MAX_TEXT], f"unknown field {show(key)}; known: {', '.join(sorted(FIELDS))}")
        )
    kind = item.get("type")
    if kind is not None and kind != "observer_count":
        errors.append(ItemError("type", "type", f"type must be 'observer_count', got {show(kind)}"))
    given_election = _text(item, "election", errors, required=False)
    if given_election is not None and given_election != election.election:
        errors.append(
            ItemError(
                "wrong_election",
                "election",
                f"this server takes counts for {election.election}, not {given_election}",
                {"expected": election.election, "got": given_election},
            )
        )
    station_id = _text(item, "station", errors, required=True)
    region = _text(item, "region", errors, required=False)
    name = _text(item, "observer", errors, required=False)
    observed = _time(item, "observed_at", errors, required=True)
    received = _time(item, "received_at", errors, required=False)
    registered = _integer(item, "registered", errors, required=False)
    voted = _integer(item, "voted", errors, required=True)
    source = item.get("source", "tally")
    if source not in SOURCES:
        errors.append(ItemError("bad_source", "source", f"source must be 'tally' or 'commission', got {show(source)}"))
    report_id = _text(item, "report_id", errors, required=False)
    if report_id is not None and not REPORT_ID.match(report_id):
        errors.append(ItemError("bad_report_id", "report_id", "report_id must be 1-100 letters, digits or . _ : -"))

    station = stations.get(station_id) if station_id else None
    if station_id and station is None:
        errors.append(
            ItemError(
                "unknown_station",
                "station",
                f"there is no station {station_id} in the registry",
                {"station": station_id},
            )
        )
    if station is not None and region is not None and _region_code(region, election.date) != station.region_code:
        errors.append(
            ItemError(
                "region_mismatch",
                "region",
                f"station {station.station} is in {station.region} ({station.region_code}), not {region}",
                {"station_region": station.region},
            )
        )
    if station is not None and registered is not None and registered != station.registered:
        errors.append(
            ItemError(
                "registered_mismatch",
                "registered",
                f"station {station.station} has {station.registered} voters on the list in the registry, "
                f"not {registered}; leave registered out, or ask your coordinator to correct the registry",
                {"registered": registered, "station_registered": station.registered},
            )
        )
    if station is not None:
        registered = station.registered
    if registered is not None and voted is not None and voted > registered:
        errors.append(
            ItemError(
                "exceeds_registered",
                "voted",
                f"voted ({voted}) is more than the {registered} voters on the station's list",
                {"voted": voted, "registered": registered},
            )
        )
    tz, opens, closes = _hours(election)
    if observed is not None:
        local = observed.astimezone(tz)
        if observed > now + CLOCK_SKEW:
            errors.append(
                ItemError(
                    "in_future",
                    "observed_at",
                    f"observed_at {local:%Y-%m-%d %H:%M} is in the future",
                    {"observed_at": local.isoformat()},
                )
            )
        elif not opens <= local <= closes:
            errors.append(
                ItemError(
                    "outside_hours",
                    "observed_at",
                    f"observed_at {local:%Y-%m-%d %H:%M} is outside polling hours "
                    f"({election.date} {election.polls_open:%H:%M}-{election.polls_close:%H:%M})",
                    {"observed_at": local.isoformat(), "opens": opens.isoformat(), "closes": closes.isoformat()},
                )
            )
    if received is not None and received > now + CLOCK_SKEW:
        errors.append(ItemError("in_future", "received_at", f"received_at {received.isoformat()} is in the future"))
    if errors or station is None or observed is None or voted is None or registered is None:
        return errors or [ItemError("invalid", None, "the count is incomplete")]

    ts = observed.timestamp()
    client_rid = report_id or derive_report_id(election.election, station.station, str(source), ts, registered, voted)
    rid = f"{token_id}:{report_id}" if report_id and token_id else client_rid
    for prior in history.get((station.station, str(source)), ()):
        if prior.report_id == rid or not _conflicts(prior, ts, voted):
            continue  # most priors agree with the count: no message is built for them
        when = datetime.fromtimestamp(prior.observed_ts, tz).strftime("%H:%M")
        params = {"earlier_voted": prior.voted, "earlier_at": prior.observed_at, "voted": voted}
        if prior.observed_ts < ts and prior.voted > voted:
            errors.append(
                ItemError(
                    "lower_than_earlier",
                    "voted",
                    f"voted ({voted}) is lower than the {source} count {prior.voted} already accepted for {when}",
                    params,
                )
            )
        elif prior.observed_ts > ts and prior.voted < voted:
            errors.append(
                ItemError(
                    "higher_than_later",
                    "voted",
                    f"voted ({voted}) is higher than the {source} count {prior.voted} "
                    f"already accepted for the later time {when}",
                    params,
                )
            )
        elif prior.observed_ts == ts and prior.voted != voted:
            errors.append(
                ItemError(
                    "conflicting_count",
                    "voted",
                    f"a different {source} count ({prior.voted}) was already accepted for {when}",
                    params,
                )
            )
    if errors:
        return errors
    record = ObserverCount(
        election=election.election,
        station=station.station,
        region=station.region,
        region_code=station.region_code,
        observed_at=observed,
        received_at=(received or now).astimezone(tz).replace(microsecond=0),
        registered=registered,
        voted=voted,
        source="tally" if source == "tally" else "commission",
        observer=observer,
        report_id=rid,
        token_id=token_id or None,
        observer_note=name if name and name != observer else None,
        accepted_at=accepted_at,
    )
    content = {
        "election": record.election,
        "station": record.station,
        "region": record.region,
        "registered": registered,
        "voted": voted,
        "source": record.source,
        "observed_ts": round(ts),
    }
    fingerprint = hashlib.sha256(_SORTED_KEYS.encode(content).encode()).hexdigest()[:32]
    return CheckedCount(station, record.source, rid, fingerprint, ts, record, client_rid)


#: What `json.dumps(obj, sort_keys=True)` builds on every call (the fingerprint's bytes), built once.
_SORTED_KEYS = json.JSONEncoder(sort_keys=True)
_last_hours: list[tuple[Election, tuple[tzinfo, datetime, datetime]]] = []


def _hours(election: Election) -> tuple[tzinfo, datetime, datetime]:
    """The election's zone, and when its polls open and close there: computed once per election
    (`Election` builds them on every access; an intake checks every count against one election)."""
    if _last_hours and _last_hours[0][0] is election:
        return _last_hours[0][1]
    hours = (election.tz, election.opens, election.closes)
    _last_hours[:] = [(election, hours)]
    return hours


def _conflicts(prior: PriorCount, ts: float, voted: int) -> bool:
    """Counts only grow over the day: an earlier count above this one, a later one below it, or another
    count at the same time, cannot all be right."""
    if prior.observed_ts < ts:
        return prior.voted > voted
    if prior.observed_ts > ts:
        return prior.voted < voted
    return prior.voted != voted


@functools.lru_cache(maxsize=4096)
def _region_code(name: str, on: date) -> str | None:
    """The code of the region a report names, or None. Remembered: phones send the same few spellings
    thousands of times an hour, and resolving one is most of a report's validation."""
    found = default_gazetteer().try_resolve(name, on)
    return None if found is None else found.code
