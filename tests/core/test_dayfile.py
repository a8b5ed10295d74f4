"""The shipped day files hold exactly the numbers of the CEC tables in shared/data."""

from __future__ import annotations

import csv
import gzip
import json
from datetime import datetime
from pathlib import Path

import pytest

from ingest.csv_import import SHIPPED_DAYS, convert
from tests.support.paths import ELECTIONS, shared_data
from turnout_watch.core.dayfile import load_day, parse_event
from turnout_watch.core.errors import DayFileError


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize("spec", SHIPPED_DAYS, ids=lambda s: s.election)
def test_shipped_day_matches_its_csv(spec) -> None:
    day = load_day(ELECTIONS / f"{spec.election}.jsonl")
    assert day.election.election == spec.election
    assert day.election.date == spec.date
    assert day.election.timezone == "Asia/Almaty"
    by_as_of = {r.as_of.strftime("%H:%M"): r for r in day.releases()}
    rows = read_csv(shared_data() / spec.turnout_csv)
    assert sum(len(r.turnout_pct) for r in day.releases()) == len(rows)
    for row in rows:
        release = by_as_of[row["as_of_local"]]
        assert release.turnout_pct[row["region"]] == float(row["turnout_pct"]), row
        assert release.published_at.strftime("%H:%M") == row["released_local"]
        assert release.as_of.utcoffset().total_seconds() == 6 * 3600  # Astana time before March 2024
        if row["voters_received_ballots"]:
            assert release.raw["voters"][row["region"]] == int(row["voters_received_ballots"])
    registered = {r["region"]: int(r["registered_voters"]) for r in read_csv(shared_data() / spec.registered_csv)}
    assert day.election.registered() == {k: v for k, v in registered.items() if k != "Kazakhstan"}
    published = [r.published_at for r in day.releases()]
    assert published == sorted(published) and len(published) == 7


def test_conversion_is_reproducible(tmp_path: Path) -> None:
    for spec in SHIPPED_DAYS:
        out = convert(spec, shared_data(), tmp_path / f"{spec.election}.jsonl")
        assert out.read_text(encoding="utf-8") == (ELECTIONS / out.name).read_text(encoding="utf-8")


def test_gzipped_day_reads_the_same(tmp_path: Path) -> None:
    source = ELECTIONS / "kz-2022-11-20-presidential.jsonl"
    packed = tmp_path / "day.jsonl.gz"
    packed.write_bytes(gzip.compress(source.read_bytes()))
    assert load_day(packed).releases() == load_day(source).releases()


def _day(tmp_path: Path, *lines: object) -> Path:
    path = tmp_path / "day.jsonl"
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines), encoding="utf-8")
    return path


HEADER = {
    "type": "election",
    "election": "e",
    "date": "2022-11-20",
    "timezone": "Asia/Almaty",
    "polls_open": "07:00",
    "polls_close": "20:00",
    "regions": [],
}


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("{not json", "day.jsonl:2: not valid JSON"),
        (
            {
                "type": "cec_release",
                "election": "e",
                "as_of": "2022-11-20T10:00:00",
                "published_at": "2022-11-20T10:05:00+06:00",
                "turnout_pct": {"Astana": 1},
            },
            "needs a UTC offset",
        ),
        (
            {
                "type": "cec_release",
                "election": "e",
                "as_of": "2022-11-20T10:00:00+06:00",
                "published_at": "2022-11-20T10:05:00+06:00",
                "turnout_pct": {"Astana": "12,5"},
            },
            "not a number",
        ),
        (
            {
                "type": "cec_release",
                "election": "other",
                "as_of": "2022-11-20T10:00:00+06:00",
                "published_at": "2022-11-20T10:05:00+06:00",
                "turnout_pct": {"Astana": 1},
            },
            "is for election 'other'",
        ),
        (
            {
                "type": "observer_count",
                "election": "e",
                "station": "1",
                "region": "Astana",
                "observer": "o",
                "observed_at": "2022-11-20T12:00:00+06:00",
                "received_at": "2022-11-20T12:01:00+06:00",
                "registered": 100,
                "voted": 5,
                "source": "guess",
            },
            "'tally' or 'commission'",
        ),
        ({"type": "weather"}, "unknown event type 'weather'"),
    ],
)
def test_bad_lines_name_file_line_and_problem(tmp_path: Path, line: object, message: str) -> None:
    with pytest.raises(DayFileError, match=message.replace("(", r"\(")) as info:
        load_day(_day(tmp_path, HEADER, line))
    assert "day.jsonl:2" in str(info.value)


def test_first_line_must_be_the_election(tmp_path: Path) -> None:
    with pytest.raises(DayFileError, match="first line must have type 'election'"):
        load_day(_day(tmp_path, {"type": "cec_release"}))


def test_observer_count_parses() -> None:
    event = parse_event(
        {
            "type": "observer_count",
            "election": "e",
            "station": "75-0203",
            "region": "Almaty",
            "observer": "obs-0042",
            "observed_at": "2022-11-20T12:00:00+06:00",
            "received_at": "2022-11-20T12:03:10+06:00",
            "registered": 2374,
            "voted": 812,
            "source": "tally",
        }
    )
    assert event.event_time == datetime.fromisoformat("2022-11-20T12:03:10+06:00")
