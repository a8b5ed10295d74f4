"""Turn a tabulated CEC turnout CSV (as in shared/data) into a replayable day file, numbers exact.

The CSVs hold one row per (release, region): `as_of_local, released_local, region, turnout_pct,
voters_received_ballots`. Region names are kept exactly as the source spelled them; the gazetteer
resolves them when the day is replayed, so a conversion never hides a spelling problem.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from turnout_watch.core.dayfile import write_day
from turnout_watch.core.errors import DayFileError
from turnout_watch.core.gazetteer import default_gazetteer


@dataclass(frozen=True)
class CsvDay:
    """What a CSV does not say about its election, supplied by the caller (see `SHIPPED_DAYS`)."""

    election: str
    name: str
    date: date
    turnout_csv: str
    registered_csv: str | None = None
    registered_total: int | None = None
    timezone: str = "Asia/Almaty"
    polls_open: str = "07:00"
    polls_close: str = "20:00"
    notes: str = ""


SHIPPED_DAYS = (
    CsvDay(
        election="kz-2022-11-20-presidential",
        name="Early presidential election",
        date=date(2022, 11, 20),
        turnout_csv="kz-2022-11-20-presidential-turnout.csv",
        registered_csv="kz-2023-03-19-majilis-registered.csv",
        registered_total=11_953_465,
        notes="Per-region registered voters are the 19 Mar 2023 figures (approximate for 2022); "
        "registered_total is the 2022 national figure.",
    ),
    CsvDay(
        election="kz-2023-03-19-majilis",
        name="Majilis (parliament) election",
        date=date(2023, 3, 19),
        turnout_csv="kz-2023-03-19-majilis-turnout.csv",
        registered_csv="kz-2023-03-19-majilis-registered.csv",
        registered_total=12_035_578,
    ),
)


def _number(text: str) -> float | int:
    """Parse a CSV number without float noise: '72.20' -> 72.2, '1710381' -> 1710381."""
    value = Decimal(text.strip())
    return int(value) if value == value.to_integral_value() and "." not in text else float(value)


def _local(day: date, hhmm: str, tz: ZoneInfo) -> str:
    return datetime.combine(day, time.fromisoformat(hhmm.strip()), tzinfo=tz).isoformat()


def read_registered(path: Path) -> tuple[list[dict[str, Any]], int | None]:
    """Region rows (as spelled) and the national total, from a `region,registered_voters,...` CSV."""
    gazetteer = default_gazetteer()
    regions: list[dict[str, Any]] = []
    total = None
    with path.open(encoding="utf-8", newline="") as fh:
        for row in csv.DictReader(fh):
            registered = int(row["registered_voters"])
            if gazetteer.resolve(row["region"]).is_national:
                total = registered
            else:
                regions.append({"region": row["region"], "registered": registered})
    return regions, total


def release_events(spec: CsvDay, path: Path) -> Iterator[dict[str, Any]]:
    """One `cec_release` per (as_of, released) pair, regions in the CSV's order."""
    tz = ZoneInfo(spec.timezone)
    releases: dict[tuple[str, str], dict[str, Any]] = {}
    with path.open(encoding="utf-8", newline="") as fh:
        for number, row in enumerate(csv.DictReader(fh), start=2):
            try:
                key = (row["as_of_local"], row["released_local"])
                release = releases.setdefault(
                    key,
                    {
                        "type": "cec_release",
                        "election": spec.election,
                        "as_of": _local(spec.date, key[0], tz),
                        "published_at": _local(spec.date, key[1], tz),
                        "turnout_pct": {},
                    },
                )
                release["turnout_pct"][row["region"]] = _number(row["turnout_pct"])
                if (row.get("voters_received_ballots") or "").strip():
                    release.setdefault("voters", {})[row["region"]] = _number(row["voters_received_ballots"])
            except (KeyError, ValueError, ArithmeticError) as exc:
                raise DayFileError(f"{path}:{number}: cannot read row {row}: {exc}") from exc
    yield from sorted(releases.values(), key=lambda r: (r["published_at"], r["as_of"]))


def convert(spec: CsvDay, data_dir: Path, out: Path) -> Path:
    """Write `out` (a day file) from the CSVs of `spec` found in `data_dir`."""
    header: dict[str, Any] = {
        "type": "election",
        "election": spec.election,
        "name": spec.name,
        "date": spec.date.isoformat(),
        "timezone": spec.timezone,
        "polls_open": spec.polls_open,
        "polls_close": spec.polls_close,
        "regions": [],
    }
    if spec.registered_csv:
        regions, total = read_registered(data_dir / spec.registered_csv)
        header["regions"] = regions
        if spec.registered_total or total:
            header["registered_total"] = spec.registered_total or total
    if spec.notes:
        header["notes"] = spec.notes
    header["source_files"] = [name for name in (spec.turnout_csv, spec.registered_csv) if name]
    write_day(out, header, release_events(spec, data_dir / spec.turnout_csv))
    return out
