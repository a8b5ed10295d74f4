"""The station registry: import a CSV of polling stations with a validation report, look stations up.

CSV columns (header row required, any order): `station` (or `id`), `region` (any spelling the
gazetteer knows, or an ISO code), `registered` (voters on the list), optional `address`, `lat`, `lon`.
Good rows are imported (a known station id is updated), bad rows are reported by line with the reason
and left out, so one typo does not block ten thousand stations, and nothing wrong enters silently.
"""

from __future__ import annotations

import csv
import io
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

from ingest.observers.errors import RegistryError
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.gazetteer import Gazetteer, default_gazetteer

#: Kazakhstan's extent with a margin: coordinates outside are a swapped or mistyped pair.
LAT_RANGE = (40.0, 56.0)
LON_RANGE = (46.0, 88.0)
MAX_REGISTERED = 10_000  # the largest KZ stations have about 3,000 voters; 10,000 is certainly a typo


@dataclass(frozen=True)
class Station:
    station: str
    region: str
    region_code: str
    registered: int
    address: str | None = None
    lat: float | None = None
    lon: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "station": self.station,
            "region": self.region,
            "region_code": self.region_code,
            "registered": self.registered,
            "address": self.address,
            "lat": self.lat,
            "lon": self.lon,
        }


@dataclass
class ImportReport:
    """What an import did: rows read, imported (new / updated), and every rejected row with why."""

    rows: int = 0
    new: int = 0
    updated: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    stations: list[Station] = field(default_factory=list)

    @property
    def imported(self) -> int:
        return self.new + self.updated

    def format(self) -> str:
        lines = [
            f"{self.rows} rows: {self.imported} imported ({self.new} new, {self.updated} updated), "
            f"{len(self.rejected)} rejected"
        ]
        lines += [f"  line {line}: {reason}" for line, reason in self.rejected]
        return "\n".join(lines)


def _optional_float(row: Mapping[str, str], key: str) -> float | None:
    text = (row.get(key) or "").strip()
    return float(text) if text else None


def parse_stations(text: str, on: date | None = None, gazetteer: Gazetteer | None = None) -> ImportReport:
    """Check every row of a stations CSV; valid rows land in `report.stations`, others in `rejected`."""
    gazetteer = gazetteer or default_gazetteer()
    report = ImportReport()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    columns = {c.strip().lower() for c in reader.fieldnames or ()}
    id_column = "station" if "station" in columns else "id"
    missing = [c for c in (id_column, "region", "registered") if c not in columns]
    if missing:
        raise RegistryError(
            "the stations CSV needs a header with station (or id), region and registered; "
            f"missing: {', '.join(missing)}"
        )
    seen: dict[str, int] = {}
    for raw in reader:
        report.rows += 1
        line = reader.line_num
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
        station_id = row.get(id_column, "")
        problems: list[str] = []
        if not station_id:
            problems.append("no station id")
        elif station_id in seen:
            problems.append(f"station {station_id} is already on line {seen[station_id]}")
        region_name = row.get("region", "")
        code = ""
        try:
            code = (
                gazetteer.get(region_name)
                if region_name.upper().startswith("KZ-")
                else gazetteer.resolve(region_name, on)
            ).code
        except TurnoutWatchError as exc:
            problems.append(str(exc) if region_name else "no region")
        registered = 0
        try:
            registered = int(row.get("registered", ""))
            if registered <= 0 or registered > MAX_REGISTERED:
                problems.append(f"registered voters {registered} is outside 1..{MAX_REGISTERED}")
        except ValueError:
            problems.append(f"registered voters {row.get('registered', '')!r} is not a whole number")
        lat = lon = None
        try:
            lat, lon = _optional_float(row, "lat"), _optional_float(row, "lon")
            if (lat is None) != (lon is None):
                problems.append("give both lat and lon, or neither")
            elif (
                lat is not None
                and lon is not None
                and not (LAT_RANGE[0] <= lat <= LAT_RANGE[1] and LON_RANGE[0] <= lon <= LON_RANGE[1])
            ):
                problems.append(f"coordinates {lat}, {lon} are outside Kazakhstan (swapped?)")
        except ValueError:
            problems.append(f"coordinates {row.get('lat')!r}, {row.get('lon')!r} are not numbers")
        if problems:
            report.rejected.append((line, f"station {station_id or '?'}: " + "; ".join(problems)))
            continue
        seen[station_id] = line
        report.stations.append(Station(station_id, region_name, code, registered, row.get("address") or None, lat, lon))
    return report


def save_stations(conn: sqlite3.Connection, stations: Iterable[Station], report: ImportReport | None = None) -> None:
    """Insert or update stations in one transaction (counting new and updated in `report`)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    try:
        with conn:
            conn.execute("BEGIN IMMEDIATE")
            for s in stations:
                exists = conn.execute("SELECT 1 FROM stations WHERE station = ?", (s.station,)).fetchone()
                conn.execute(
                    "INSERT INTO stations (station, region, region_code, registered, address, lat, lon, updated_at) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(station) DO UPDATE SET region=excluded.region, "
                    "region_code=excluded.region_code, registered=excluded.registered, address=excluded.address, "
                    "lat=excluded.lat, lon=excluded.lon, updated_at=excluded.updated_at",
                    (s.station, s.region, s.region_code, s.registered, s.address, s.lat, s.lon, now),
                )
                if report is not None:
                    if exists:
                        report.updated += 1
                    else:
                        report.new += 1
    except sqlite3.Error as exc:
        raise RegistryError(f"cannot save stations: {exc}") from exc


def import_stations(
    conn: sqlite3.Connection, path: Path, on: date | None = None, *, dry_run: bool = False
) -> ImportReport:
    """`turnout-watch stations import FILE`: check the CSV, save the good rows, report the rest."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise RegistryError(f"cannot read stations file {path}: {exc}") from exc
    report = parse_stations(text, on)
    if dry_run:
        report.new = len(report.stations)
    else:
        save_stations(conn, report.stations, report)
    return report


def load_stations(conn: sqlite3.Connection) -> dict[str, Station]:
    rows = conn.execute("SELECT station, region, region_code, registered, address, lat, lon FROM stations")
    return {r[0]: Station(*r) for r in rows}


def write_stations_csv(path: Path, stations: Iterable[Station]) -> None:
    """The inverse of the import (the simulator writes its stations so they can be imported)."""
    with path.open("w", encoding="utf-8", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(["station", "region", "registered", "address", "lat", "lon"])
        for s in stations:
            writer.writerow([s.station, s.region, s.registered, s.address or "", s.lat or "", s.lon or ""])
