"""Offline detection: a day file through the same edge normalisation and tracker the agents use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detectors.history import load_curves
from detectors.tracker import DetectorConfig, ObservedEstimate, RegionUpdate, TurnoutTracker
from turnout_watch.core.dayfile import CecRelease, DayFile, UnplacedCount, load_day
from turnout_watch.core.normalize import normalize_release, region_names
from turnout_watch.core.records import Flag, ObserverCount


@dataclass
class DetectResult:
    flags: list[Flag] = field(default_factory=list)
    updates: list[RegionUpdate] = field(default_factory=list)
    estimates: list[ObservedEstimate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    releases: int = 0
    observer_counts: int = 0


def detect_day(
    day: DayFile | str | Path, config: DetectorConfig | None = None, history_dir: Path | None = None
) -> DetectResult:
    """Every event of the day in the order the watch room learned of it.

    Releases go through one tracker (curves learned from the other days in `history_dir`); runs of
    observer counts go to the same tracker in one batch, as the agents take them.
    """
    if not isinstance(day, DayFile):
        day = load_day(day)
    names = region_names()
    curves = load_curves(history_dir, exclude=day.election.election)
    tracker = TurnoutTracker(day.election.election, names, config, curves, zone=day.election.tz)
    result = DetectResult()
    pending: list[ObserverCount | UnplacedCount] = []

    def flush() -> None:
        counts = _counts(pending, result.problems)
        pending.clear()
        if counts:
            result.observer_counts += len(counts)
            observed = tracker.add_counts(counts)
            result.flags.extend(observed.flags)
            result.estimates.extend(observed.estimates)

    for event in day.events:
        if isinstance(event, ObserverCount | UnplacedCount):
            pending.append(event)
            continue
        flush()
        assert isinstance(event, CecRelease)
        normalized = normalize_release(event, day.election.date, election=day.election)
        result.problems.extend(normalized.problems)
        if normalized.release is None:
            continue
        result.releases += 1
        processed = tracker.process(normalized.release)
        result.flags.extend(processed.flags)
        result.updates.extend(processed.updates)
        result.estimates.extend(processed.estimates)
    flush()
    return result


def _counts(events: list[ObserverCount | UnplacedCount], problems: list[str]) -> list[ObserverCount]:
    """The counts the day file could place; those it could not are reported once per spelling, not used."""
    out: list[ObserverCount] = []
    reported: set[str] = set()
    for event in events:
        if isinstance(event, ObserverCount):
            out.append(event)
        elif event.region not in reported:
            reported.add(event.region)
            problems.append(f"observer counts: {event.problem}; those counts were not used")
    return out
