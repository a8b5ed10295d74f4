"""Past election days as expected turnout curves (`detectors.curves`), learned from day files.

Every day file in the history folder (by default the shipped `data/elections/`, plus any day a user
adds there) contributes its per-region curves, except the election being watched: a day never
learns from itself, so replaying a shipped day is an honest test. Regions that were split or
renamed borrow the curves of their successors or predecessors through the gazetteer's history.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime
from pathlib import Path

import numpy as np

from detectors.curves import ExpectedCurves, PastDay, learn_curves
from turnout_watch.core.dayfile import DayFile, load_day
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.normalize import normalize_release

log = logging.getLogger(__name__)


def past_day(day: DayFile) -> PastDay:
    """A day file's official curves by local hour of day (national included, under `KZ`).

    Each region's hours are its own local hours (its zone on the election date, `Election.polls`);
    the national curve keeps the clock the releases were stated in.
    """
    releases = []
    for event in day.releases():
        normalized = normalize_release(event, day.election.date)
        if normalized.release is not None:
            releases.append(normalized.release)
    releases.sort(key=lambda r: r.as_of)
    tz = day.election.tz
    hours = tuple(_hour(r.as_of.astimezone(tz)) for r in releases)
    codes = sorted({code for r in releases for code in r.turnout})
    turnout = {code: tuple(r.turnout.get(code, np.nan) for r in releases) for code in codes}
    polls = day.election.polls()
    local: dict[str, tuple[float, ...]] = {}
    for code in codes:
        zone = polls[code][1].tzinfo if code in polls else None
        if zone is not None:
            own = tuple(_hour(r.as_of.astimezone(zone)) for r in releases)
            if own != hours:
                local[code] = own
    return PastDay(day.election.election, hours, turnout, local)


def _hour(when: datetime) -> float:
    return when.hour + when.minute / 60


def borrow_map() -> dict[str, tuple[str, ...]]:
    """For each unit, whose curves stand in when it has none: successors first, then predecessors."""
    return {r.code: tuple(r.successors) + tuple(r.predecessors) for r in default_gazetteer()}


@functools.cache
def _days(folder: Path) -> tuple[PastDay, ...]:
    days = []
    for path in sorted([*folder.glob("*.jsonl"), *folder.glob("*.jsonl.gz")]):
        try:
            days.append(past_day(load_day(path)))
        except TurnoutWatchError as exc:
            log.warning("history: skipping %s: %s", path, exc)
    return tuple(days)


def load_curves(folder: Path | None, exclude: str) -> ExpectedCurves | None:
    """Curves from every day in `folder` but election `exclude`; None when there is no such day."""
    if folder is None or not folder.is_dir():
        return None
    days = [day for day in _days(folder.resolve()) if day.election != exclude]
    return learn_curves(days, borrow_map()) if days else None
