"""Offline detection: a day file through the same edge normalisation and tracker the agents use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detectors.flags import Flag
from detectors.tracker import DetectorConfig, RegionUpdate, TurnoutTracker
from ingest.normalize import normalize_release, region_names
from turnout_watch.dayfile import DayFile, load_day
from turnout_watch.history import load_curves


@dataclass
class DetectResult:
    flags: list[Flag] = field(default_factory=list)
    updates: list[RegionUpdate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    releases: int = 0


def detect_day(
    day: DayFile | str | Path, config: DetectorConfig | None = None, history_dir: Path | None = None
) -> DetectResult:
    """Every release of the day through one tracker; curves learned from `history_dir` (other days)."""
    if not isinstance(day, DayFile):
        day = load_day(day)
    curves = load_curves(history_dir, exclude=day.election.election)
    tracker = TurnoutTracker(day.election.election, region_names(), config, curves)
    result = DetectResult()
    for event in day.releases():
        normalized = normalize_release(event, day.election.date, election=day.election)
        result.problems.extend(normalized.problems)
        if normalized.release is None:
            continue
        result.releases += 1
        processed = tracker.process(normalized.release)
        result.flags.extend(processed.flags)
        result.updates.extend(processed.updates)
    return result
