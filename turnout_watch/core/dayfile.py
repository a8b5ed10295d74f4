"""Read and write the election-day and flags files of `shared/spec/day-format.md`.

Other tools share these files, so reading is strict about what the contract requires (clear errors
naming file and line) and lenient about optional fields it does not know (kept in `raw`, or in an
observer count's `extra`). An `observer_count` event becomes the `ObserverCount` record of
`core.records`, its region resolved here, once, through the gazetteer (on the election's date when the
whole file is read); a count whose region cannot be placed is read as an `UnplacedCount`.
"""

from __future__ import annotations

import functools
import gzip
import json
from collections.abc import Generator, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time
from pathlib import Path
from typing import IO, Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from turnout_watch.core.errors import DayFileError, RecordError, TurnoutWatchError
from turnout_watch.core.gazetteer import NATIONAL, Gazetteer, default_gazetteer
from turnout_watch.core.records import ObserverCount

EventType = Literal["cec_release", "observer_count"]


@dataclass(frozen=True)
class Election:
    """The first line of a day file: which election, when polls open and close, which regions."""

    election: str
    name: str
    date: date
    timezone: str
    polls_open: time
    polls_close: time
    regions: tuple[Mapping[str, Any], ...]
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @property
    def opens(self) -> datetime:
        """When polls open, in the election's zone."""
        return datetime.combine(self.date, self.polls_open, self.tz)

    @property
    def closes(self) -> datetime:
        """When polls close, in the election's zone."""
        return datetime.combine(self.date, self.polls_close, self.tz)

    def polls(self, gazetteer: Gazetteer | None = None) -> dict[str, tuple[datetime, datetime]]:
        """When polls open and close in each region (by code): instants on the region's own clock.

        `polls_open`/`polls_close` are local hours: in every unit in force on the election date they are
        read in that unit's IANA zone (gazetteer), on the election date, so a region an hour behind the
        capital closes an hour later in capital time. A region's own `polls_open`, `polls_close` or
        `date` in `regions[]` overrides the day's (extended hours, a region voting on another day). The
        national unit keeps the election's `timezone`: the clock the commission states releases in.
        """
        gazetteer = gazetteer or default_gazetteer()
        out: dict[str, tuple[datetime, datetime]] = {NATIONAL: (self.opens, self.closes)}
        for region in gazetteer.regions_on(self.date):
            zone = region.zone
            out[region.code] = (
                datetime.combine(self.date, self.polls_open, zone),
                datetime.combine(self.date, self.polls_close, zone),
            )
        for entry in self.regions:
            if not any(key in entry for key in ("polls_open", "polls_close", "date")):
                continue
            region = gazetteer.resolve(str(entry["region"]), on=self.date)
            day = date.fromisoformat(entry["date"]) if entry.get("date") else self.date
            opens = time.fromisoformat(entry["polls_open"]) if entry.get("polls_open") else self.polls_open
            closes = time.fromisoformat(entry["polls_close"]) if entry.get("polls_close") else self.polls_close
            zone = self.tz if region.is_national else region.zone
            out[region.code] = (datetime.combine(day, opens, zone), datetime.combine(day, closes, zone))
        return out

    def registered(self) -> dict[str, int]:
        """Registered voters per region as the file spells the region (only those given)."""
        return {r["region"]: int(r["registered"]) for r in self.regions if r.get("registered") is not None}


@dataclass(frozen=True)
class CecRelease:
    """One CEC turnout release; keys are region names as the source spelled them."""

    election: str
    as_of: datetime
    published_at: datetime
    turnout_pct: Mapping[str, float]
    raw: Mapping[str, Any] = field(repr=False)

    @property
    def event_time(self) -> datetime:
        return self.published_at


@dataclass(frozen=True)
class UnplacedCount:
    """An `observer_count` event whose region the gazetteer cannot place (on the election's date).

    Still an event of the day (replay keeps its pace); the stages report `problem` and use nothing of it.
    """

    election: str
    station: str
    region: str
    received_at: datetime
    problem: str  # the gazetteer's reason, naming the closest known spellings

    @property
    def event_time(self) -> datetime:
        return self.received_at


Event = CecRelease | ObserverCount | UnplacedCount


@dataclass(frozen=True)
class DayFile:
    election: Election
    events: tuple[Event, ...]
    path: Path | None = None

    def releases(self) -> list[CecRelease]:
        return [e for e in self.events if isinstance(e, CecRelease)]

    def observer_counts(self) -> list[ObserverCount]:
        return [e for e in self.events if isinstance(e, ObserverCount)]


def _open(path: Path, mode: str) -> IO[str]:
    if path.suffix == ".gz":
        return gzip.open(path, mode + "t", encoding="utf-8")  # type: ignore[return-value]
    return open(path, mode, encoding="utf-8")


class _Line:
    """Field access for one JSON object that names file and line in every error."""

    def __init__(self, obj: Any, where: str) -> None:
        if not isinstance(obj, dict):
            raise DayFileError(f"{where}: expected a JSON object, got {type(obj).__name__}")
        self.obj: dict[str, Any] = obj
        self.where = where

    def req(self, key: str) -> Any:
        if key not in self.obj or self.obj[key] is None:
            raise DayFileError(f"{self.where}: missing required field {key!r}")
        return self.obj[key]

    def text(self, key: str) -> str:
        value = self.req(key)
        if not isinstance(value, str) or not value.strip():
            raise DayFileError(f"{self.where}: field {key!r} must be a non-empty string, got {value!r}")
        return value

    def when(self, key: str) -> datetime:
        value = self.text(key)
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise DayFileError(f"{self.where}: field {key!r} is not an ISO 8601 time: {value!r}") from exc
        if parsed.tzinfo is None:
            raise DayFileError(f"{self.where}: field {key!r} needs a UTC offset: {value!r}")
        return parsed

    def integer(self, key: str) -> int:
        value = self.req(key)
        if isinstance(value, bool) or not isinstance(value, int):
            raise DayFileError(f"{self.where}: field {key!r} must be an integer, got {value!r}")
        return value


def parse_election(obj: Any, where: str = "<election>") -> Election:
    line = _Line(obj, where)
    if line.obj.get("type") != "election":
        raise DayFileError(f"{where}: the first line must have type 'election', got {line.obj.get('type')!r}")
    tz = line.text("timezone")
    try:
        ZoneInfo(tz)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise DayFileError(f"{where}: unknown time zone {tz!r}") from exc
    try:
        day = date.fromisoformat(line.text("date"))
        opens = time.fromisoformat(line.text("polls_open"))
        closes = time.fromisoformat(line.text("polls_close"))
    except ValueError as exc:
        raise DayFileError(f"{where}: bad date or polling hours: {exc}") from exc
    regions = line.obj.get("regions") or []
    if not isinstance(regions, list) or not all(isinstance(r, dict) and "region" in r for r in regions):
        raise DayFileError(f"{where}: 'regions' must be a list of objects with a 'region' name")
    for entry in regions:  # a region's own polling hours or day (optional): local times, like the day's
        try:
            for key in ("polls_open", "polls_close"):
                if entry.get(key) is not None:
                    time.fromisoformat(str(entry[key]))
            if entry.get("date") is not None:
                date.fromisoformat(str(entry["date"]))
        except ValueError as exc:
            raise DayFileError(f"{where}: bad polling hours or date for region {entry['region']!r}: {exc}") from exc
    return Election(
        election=line.text("election"),
        name=str(line.obj.get("name", "")),
        date=day,
        timezone=tz,
        polls_open=opens,
        polls_close=closes,
        regions=tuple(regions),
        raw=line.obj,
    )


@functools.lru_cache(maxsize=4096)
def _place(region: str, on: date | None) -> tuple[str | None, str]:
    """The code of the region a count names, or None and why not."""
    try:
        return default_gazetteer().resolve(region, on=on).code, ""
    except TurnoutWatchError as exc:
        return None, str(exc)


def parse_event(obj: Any, where: str = "<event>", on: date | None = None) -> Event:
    """One event line; an observer count's region is resolved for the election's date `on`, if given."""
    line = _Line(obj, where)
    kind = line.obj.get("type")
    if kind == "cec_release":
        values = line.req("turnout_pct")
        if not isinstance(values, dict) or not values:
            raise DayFileError(f"{where}: 'turnout_pct' must be a non-empty object of region -> percent")
        for name, pct in values.items():
            if isinstance(pct, bool) or not isinstance(pct, int | float):
                raise DayFileError(f"{where}: turnout for {name!r} is not a number: {pct!r}")
        return CecRelease(
            election=line.text("election"),
            as_of=line.when("as_of"),
            published_at=line.when("published_at"),
            turnout_pct={k: float(v) for k, v in values.items()},
            raw=line.obj,
        )
    if kind == "observer_count":
        source = line.text("source")
        if source not in ("tally", "commission"):
            raise DayFileError(f"{where}: 'source' must be 'tally' or 'commission', got {source!r}")
        # The contract's checks first, each error naming file and line; then the record from the line.
        election, station, region = line.text("election"), line.text("station"), line.text("region")
        line.when("observed_at")
        received_at = line.when("received_at")
        line.integer("registered")
        line.integer("voted")
        code, problem = _place(region, on)
        if code is None:
            return UnplacedCount(election, station, region, received_at, problem)
        try:
            return ObserverCount.from_dict({**line.obj, "region_code": code})
        except RecordError as exc:  # an optional field the record names, mistyped (e.g. accepted_at)
            raise DayFileError(f"{where}: {exc}") from exc
    raise DayFileError(f"{where}: unknown event type {kind!r} (expected 'cec_release' or 'observer_count')")


def _json_lines(path: Path) -> Generator[tuple[int, Any], None, None]:
    with _open(path, "r") as fh:
        for number, text in enumerate(fh, start=1):
            if not text.strip():
                continue
            try:
                yield number, json.loads(text)
            except json.JSONDecodeError as exc:
                raise DayFileError(f"{path}:{number}: not valid JSON: {exc.msg}") from exc


def _election_line(path: Path) -> tuple[Election, Generator[tuple[int, Any], None, None]]:
    """The election on the first line of a day file, and the lines after it."""
    if not path.is_file():
        raise DayFileError(f"day file not found: {path}")
    lines = _json_lines(path)
    first = next(lines, None)
    if first is None:
        raise DayFileError(f"{path}: empty day file (the first line must describe the election)")
    return parse_election(first[1], f"{path}:{first[0]}"), lines


def read_election(path: str | Path) -> Election:
    """Only the election a day file describes (services that take its events from elsewhere)."""
    election, lines = _election_line(Path(path))
    lines.close()
    return election


def load_day(path: str | Path) -> DayFile:
    """Read a whole day file; every error names `file:line` and what is wrong."""
    path = Path(path)
    election, lines = _election_line(path)
    events = []
    for number, obj in lines:
        event = parse_event(obj, f"{path}:{number}", on=election.date)
        if event.election != election.election:
            raise DayFileError(
                f"{path}:{number}: event is for election {event.election!r}, the file is {election.election!r}"
            )
        events.append(event)
    return DayFile(election, tuple(events), path)


def dump_json_line(obj: Mapping[str, Any]) -> str:
    return json.dumps(obj, ensure_ascii=False, separators=(", ", ": "))


def write_day(path: str | Path, election: Mapping[str, Any], events: Iterable[Mapping[str, Any]]) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _open(path, "w") as fh:
        fh.write(dump_json_line(election) + "\n")
        for event in events:
            fh.write(dump_json_line(event) + "\n")


def write_flags(target: IO[str], flags: Iterable[Mapping[str, Any]]) -> int:
    count = 0
    for flag in flags:
        target.write(dump_json_line(flag) + "\n")
        count += 1
    return count


def load_flags(path: str | Path) -> list[dict[str, Any]]:
    return [obj for _, obj in _json_lines(Path(path))]
