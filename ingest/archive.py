"""The raw archive: every release page the scraper fetched, byte for byte, with sha256, URL and time.

Layout of an archive directory:

    election.json   the day file's election header and how the source's pages were read
    index.jsonl     one line per fetched release page, in fetch order: fetched_at, url, status,
                    sha256, bytes, lang, outcome (published / revision / partial / duplicate /
                    failed:<reason>), as_of, revision
    raw/<sha256>    the response body (content-addressed: identical bytes are stored once)

`load_archive` turns it back into a `DayFile` by re-parsing the raw bytes, so a day can be replayed
(`turnout-watch replay ARCHIVE_DIR`) and a parser fix re-applied to what the site really served.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from pathlib import Path
from typing import Any

from ingest.pages import read_release_page
from ingest.parse import ParsedRelease
from ingest.sources import Source, parse_source
from turnout_watch.core.dayfile import DayFile, dump_json_line, parse_election, parse_event
from turnout_watch.core.errors import DayFileError

PUBLISHED = ("published", "revision", "partial")


def release_event(
    election: str,
    parsed: ParsedRelease,
    published_at: datetime,
    *,
    url: str,
    sha256: str,
    revision: int = 0,
) -> dict[str, Any]:
    """A `cec_release` line of the day format, keyed by the source's own spellings.

    Optional fields: `revision` (1, 2, ... when the numbers of an as-of changed after publication) and
    `missing` (codes of regions in force that the release did not give, when published partial).
    """
    assert parsed.as_of is not None
    event: dict[str, Any] = {
        "type": "cec_release",
        "election": election,
        "as_of": parsed.as_of.isoformat(),
        "published_at": published_at.isoformat(),
        "turnout_pct": parsed.spelled(),
        "source": url,
        "raw_sha256": sha256,
    }
    if revision:
        event["revision"] = revision
    if parsed.missing:
        event["missing"] = parsed.missing
    return event


class Archive:
    """Append-only writer; safe to reopen (a restarted scraper appends to the same index)."""

    def __init__(self, path: Path | str, header: dict[str, Any], source: Source) -> None:
        self.path = Path(path)
        (self.path / "raw").mkdir(parents=True, exist_ok=True)
        meta = self.path / "election.json"
        if not meta.exists():
            meta.write_text(json.dumps({"election": header, "source": source.to_dict()}, ensure_ascii=False, indent=1))
        self.index = self.path / "index.jsonl"

    def store(self, body: bytes, **entry: Any) -> str:
        """Write the raw bytes (once per content) and an index line; returns the sha256."""
        sha = hashlib.sha256(body).hexdigest()
        raw = self.path / "raw" / sha
        if not raw.exists():
            tmp = raw.with_suffix(".tmp")
            tmp.write_bytes(body)
            tmp.replace(raw)
        self.append({**entry, "sha256": sha, "bytes": len(body)})
        return sha

    def append(self, entry: dict[str, Any]) -> None:
        with self.index.open("a", encoding="utf-8") as fh:
            fh.write(dump_json_line(entry) + "\n")

    def entries(self) -> list[dict[str, Any]]:
        return _read(self.path)


def is_archive(path: Path | str) -> bool:
    return Path(path).is_dir() and (Path(path) / "election.json").is_file()


def load_archive(path: Path | str) -> DayFile:
    """Rebuild the day from raw bytes: every page the scraper published, re-parsed, in fetch order."""
    root = Path(path)
    try:
        meta = json.loads((root / "election.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise DayFileError(f"{root}: not a scraper archive (election.json unreadable: {exc})") from exc
    election = parse_election(meta["election"], f"{root}/election.json")
    source_meta = meta.get("source", {})
    source = parse_source(
        {
            **source_meta,
            "user_agent": "",
            "list": [],
            "release": {
                "body_selector": source_meta.get("body_selector", "body"),
                "published_selector": source_meta.get("published_selector", "time[datetime]"),
            },
        },
        f"{root}/election.json",
    )
    events = []
    for number, entry in enumerate(_read(root), start=1):
        if entry.get("outcome") not in PUBLISHED:
            continue
        where = f"{root}/index.jsonl:{number}"
        raw = root / "raw" / entry["sha256"]
        try:
            body = raw.read_bytes()
        except OSError as exc:
            raise DayFileError(f"{where}: raw page missing: {exc}") from exc
        if hashlib.sha256(body).hexdigest() != entry["sha256"]:
            raise DayFileError(f"{where}: {raw} does not match its sha256; the archive is damaged")
        page = read_release_page(body, source, election.date)
        if page.parsed.as_of is None or not page.parsed.figures():
            raise DayFileError(f"{where}: the archived page no longer parses to a release")
        published = page.published_at or datetime.fromisoformat(entry["fetched_at"])
        obj = release_event(
            election.election,
            page.parsed,
            published,
            url=entry["url"],
            sha256=entry["sha256"],
            revision=int(entry.get("revision") or 0),
        )
        events.append(parse_event(obj, where))
    return DayFile(election, tuple(events), root)


def _read(root: Path) -> list[dict[str, Any]]:
    index = root / "index.jsonl"
    if not index.exists():
        return []
    return [json.loads(line) for line in index.read_text(encoding="utf-8").splitlines() if line.strip()]


def election_header(
    election: str, on: date, *, timezone: str, polls_open: str = "07:00", polls_close: str = "20:00", name: str = ""
) -> dict[str, Any]:
    """A day-file header for a scraped day (regions: every unit in force that day)."""
    from turnout_watch.core.gazetteer import default_gazetteer

    regions = [{"region": r.name} for r in default_gazetteer().regions_on(on)]
    return {
        "type": "election",
        "election": election,
        "name": name,
        "date": on.isoformat(),
        "timezone": timezone,
        "polls_open": polls_open,
        "polls_close": polls_close,
        "regions": regions,
    }
