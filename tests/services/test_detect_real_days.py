"""Real days assembled from re-published CEC releases (the parser corpus): they load, they hold exactly the
corpus's hand-checked figures, and `detect` gives the flags docs/real-days.md lists for them.

They live in tests/fixtures/real-days/, not data/elections/: shipped days are the history every day's
expected curves are learned from, and these partial days would change the shipped days' own flags.
"""

from __future__ import annotations

import json
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pytest

from detectors.rules.closing import growth_after_close
from tests.support.paths import DAY_2022, FIXTURES, ROOT
from turnout_watch.core.dayfile import load_day
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.services.detect import detect_day

REAL_DAYS = FIXTURES / "real-days"
DAY_2021 = REAL_DAYS / "kz-2021-01-10-majilis.jsonl"
DAY_2026 = REAL_DAYS / "kz-2026-03-15-referendum.jsonl"
#: On UTC+5 until March 2024: polls closed at 21:00 capital time.
WEST = {"KZ-15", "KZ-23", "KZ-27", "KZ-43", "KZ-47"}
#: (day, release hours, units in force, flags as docs/real-days.md lists them: none on either day)
DAYS: list[tuple[Path, list[str], int, list[tuple[str, str, str, str]]]] = [
    (DAY_2021, ["10:00", "12:00", "14:00", "16:00", "20:00", "22:00"], 17, []),
    (DAY_2026, ["12:00", "16:00", "18:00", "20:00"], 20, []),
]


def codes(turnout: dict[str, float]) -> dict[str, float]:
    gazetteer = default_gazetteer()
    return {gazetteer.resolve(name).code: value for name, value in turnout.items()}


@pytest.mark.parametrize(("path", "hours", "units", "_"), DAYS, ids=lambda v: getattr(v, "stem", None))
def test_an_assembled_day_loads_says_so_and_holds_the_corpus_figures(
    path: Path, hours: list[str], units: int, _: object
) -> None:
    day = load_day(path)
    header = day.election.raw
    assert header["notes"].startswith("ASSEMBLED from re-published CEC releases")
    assert day.election.timezone == "Asia/Almaty" and (str(day.election.polls_open), str(day.election.polls_close)) == (
        "07:00:00",
        "20:00:00",
    )
    assert len(day.election.regions) == units
    releases = day.releases()
    assert [r.as_of.strftime("%H:%M") for r in releases] == hours
    copies = [json.loads((ROOT / copy).read_text(encoding="utf-8")) for copy in header["assembled_from"]]
    assert len(copies) == len(releases)
    for release, copy in zip(releases, copies, strict=True):
        assert copy["election_date"] == day.election.date.isoformat()
        assert release.raw["source"] == copy["url"]
        figures = codes(dict(release.turnout_pct))
        national = figures.pop("KZ", None)
        assert national in (copy["national"], None)
        expected = dict(copy["figures"])
        if release.as_of.hour == 10 and day.election.date.year == 2021:
            # inform.kz's 17.7 for West Kazakhstan; the Russian copy of the briefing (and the national) say 12.7
            assert expected.pop("KZ-27") == 17.7 and figures.pop("KZ-27") == 12.7
        assert figures == expected


@pytest.mark.parametrize(("path", "_", "__", "flags"), DAYS, ids=lambda v: getattr(v, "stem", None))
def test_an_assembled_day_gives_the_documented_flags(path: Path, _: object, __: object, flags: list[object]) -> None:
    result = detect_day(path, history_dir=SHIPPED_ELECTIONS)
    assert [(f.as_of[11:16], f.region_code, f.detector, f.severity) for f in result.flags] == flags


def test_2021_the_west_voted_until_21_capital_time_and_is_not_flagged_at_22() -> None:
    """The day the issue quotes: every UTC+5 region closed an hour after the capital."""
    day = load_day(DAY_2021)
    capital = timezone(timedelta(hours=6))
    closes = {code: close for code, (_, close) in day.election.polls(default_gazetteer()).items()}
    assert {code for code, close in closes.items() if close == datetime(2021, 1, 10, 21, tzinfo=capital)} == WEST
    by_hour = {r.as_of.strftime("%H:%M"): codes(dict(r.turnout_pct)) for r in day.releases()}
    rises = np.array([by_hour["22:00"][code] - by_hour["20:00"][code] for code in sorted(WEST)])
    # +0.9..+1.2 between the 20:00 and 22:00 releases: past capital-time 20:00, each is over the 0.5 allowance
    # (the flags the code before issue 11 raised), but it holds the region's last hour of voting
    assert growth_after_close(rises, 0.5, typical=0.0).all()
    assert not [f for f in detect_day(day, history_dir=SHIPPED_ELECTIONS).flags if f.region_code in WEST]


def test_as_history_the_assembled_days_would_change_the_shipped_days_flags(tmp_path: Path) -> None:
    """Why they are fixtures and not shipped: learned curves would put two new critical flags on 2022."""
    for path in [*SHIPPED_ELECTIONS.glob("*.jsonl"), DAY_2021, DAY_2026]:
        shutil.copy(path, tmp_path / path.name)
    shipped = {
        (f.region_code, f.detector, f.severity) for f in detect_day(DAY_2022, history_dir=SHIPPED_ELECTIONS).flags
    }
    widened = {(f.region_code, f.detector, f.severity) for f in detect_day(DAY_2022, history_dir=tmp_path).flags}
    assert widened - shipped == {
        ("KZ-19", "expected_curve_jump", "critical"),
        ("KZ-33", "expected_curve_jump", "critical"),
    }
