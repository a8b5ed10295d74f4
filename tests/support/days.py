"""Hand-built election headers for tests that need a day's clocks but no releases."""

from __future__ import annotations

from typing import Any

from turnout_watch.core.dayfile import Election, parse_election


def header(on: str, **extra: Any) -> dict[str, Any]:
    """A day-file header for `on` (YYYY-MM-DD): capital clock, polls 07:00-20:00 local, no regions listed."""
    return {
        "type": "election",
        "election": "e",
        "date": on,
        "timezone": "Asia/Almaty",
        "polls_open": "07:00",
        "polls_close": "20:00",
        "regions": [],
    } | extra


def election_on(on: str, **extra: Any) -> Election:
    return parse_election(header(on, **extra))
