"""Offline detection: a day file through the same edge normalisation and tracker the agents use."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from detectors.flags import Flag
from detectors.tracker import DetectorConfig, RegionUpdate, TurnoutTracker
from ingest.normalize import normalize_release, region_names
from turnout_watch.dayfile import DayFile, load_day


@dataclass
class DetectResult:
    flags: list[Flag] = field(default_factory=list)
    updates: list[RegionUpdate] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    releases: int = 0


def detect_day(day: DayFile | str | Path, config: DetectorConfig | None = None) -> DetectResult:
    if not isinstance(day, DayFile):
        day = load_day(day)
    tracker = TurnoutTracker(day.election.election, region_names(), config)
    result = DetectResult()
    for event in day.releases():
        normalized = normalize_release(event, day.election.date)
        result.problems.extend(normalized.problems)
        if normalized.release is None:
            continue
        result.releases += 1
        processed = tracker.process(normalized.release)
        result.flags.extend(processed.flags)
        result.updates.extend(processed.updates)
    return result
