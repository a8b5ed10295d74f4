"""The edge: CEC releases as the source spelled them -> releases keyed by canonical region codes.

Past this module nothing sees a spelling. A name the gazetteer does not know, or one that did not
exist on the election date, is reported with what it could have meant, and the rest of the release
is kept: one bad row must not hide twenty good ones from the watch room.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from turnout_watch.core.dayfile import CecRelease, Election
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.gazetteer import NATIONAL, Gazetteer, default_gazetteer
from turnout_watch.core.records import Release


@dataclass(frozen=True)
class Normalized:
    release: Release | None  # None when no figure could be placed
    problems: list[str] = field(default_factory=list)


def normalize_release(
    event: CecRelease,
    election_date: date,
    gazetteer: Gazetteer | None = None,
    *,
    election: Election | None = None,
    revision: int = 0,
) -> Normalized:
    """Resolve every name; with the day's `election` header, attach the context detectors need."""
    gazetteer = gazetteer or default_gazetteer()
    revision = revision or int(event.raw.get("revision") or 0)
    turnout: dict[str, float] = {}
    spelled: dict[str, str] = {}
    conflicted: set[str] = set()
    problems: list[str] = []
    where = f"release as of {event.as_of.isoformat()}"
    for name, pct in event.turnout_pct.items():
        try:
            code = gazetteer.resolve(name, on=election_date).code
        except TurnoutWatchError as exc:
            problems.append(f"{where}: {exc}; its figure {pct} was not used")
            continue
        if code in turnout and turnout[code] != pct:
            problems.append(
                f"{where}: {name!r} and {spelled[code]!r} are both {code} but differ ({pct} vs "
                f"{turnout[code]}); neither was used"
            )
            conflicted.add(code)
        turnout.setdefault(code, pct)
        spelled.setdefault(code, name)
    for code in conflicted:
        del turnout[code]
    if not turnout:
        return Normalized(None, problems or [f"{where}: no region could be placed"])
    context = election_context(election, gazetteer) if election else {}
    release = Release(event.election, event.as_of, event.published_at, turnout, revision=revision, **context)
    return Normalized(release, problems)


def election_context(election: Election, gazetteer: Gazetteer | None = None) -> dict[str, Any]:
    """Time zone, polling hours (the day's and each region's) and registered voters by region code.

    `polls_open`/`polls_close` are the national unit's, on the clock releases are stated in; the
    `*_by_region` maps hold every region's own, from its zone on the election date (`Election.polls`).
    """
    gazetteer = gazetteer or default_gazetteer()
    registered: dict[str, int] = {}
    for name, count in election.registered().items():
        registered[gazetteer.resolve(name, on=election.date).code] = count
    total = election.raw.get("registered_total")
    if isinstance(total, int) and total > 0:
        registered[NATIONAL] = total
    polls = election.polls(gazetteer)
    return {
        "timezone": election.timezone,
        "polls_open": election.opens,
        "polls_close": election.closes,
        "polls_open_by_region": {code: opens for code, (opens, _) in polls.items()},
        "polls_close_by_region": {code: closes for code, (_, closes) in polls.items()},
        "registered": registered,
    }


def region_names(gazetteer: Gazetteer | None = None) -> dict[str, str]:
    """Code -> display name, for readable flags."""
    return {region.code: region.name for region in (gazetteer or default_gazetteer())}
