"""The evidence of many releases computed together (detectors/stacked.py) is each release's own, to the bit."""

from __future__ import annotations

import numpy as np

from detectors.config import DetectorConfig
from detectors.history import load_curves
from detectors.robust import RobustScores
from detectors.rules import jumps
from detectors.stacked import prepare
from detectors.tracker import TurnoutTracker, prepare_releases
from detectors.types import Batch
from turnout_watch.core.dayfile import CecRelease, load_day
from turnout_watch.core.normalize import normalize_release, region_names
from turnout_watch.core.records import Release
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.sim.synth import write_days


def _same(a: object, b: object) -> bool:
    if isinstance(a, RobustScores | jumps.CurveModel) and type(a) is type(b):
        return all(_same(getattr(a, f), getattr(b, f)) for f in a.__dataclass_fields__)
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return a.dtype == b.dtype and a.tobytes() == b.tobytes()  # NaN, -0.0 and all: the same bits
    return repr(a) == repr(b)


def _releases(tmp_path: object) -> list[list[Release]]:
    days = []
    for path in write_days(tmp_path / "days", 24, 4, seed=11):  # type: ignore[operator]
        day = load_day(path)
        releases = []
        for event in day.events:
            if isinstance(event, CecRelease):
                normalized = normalize_release(event, day.election.date, election=day.election)
                if normalized.release is not None:
                    releases.append(normalized.release)
        days.append(releases)
    return days


def test_stacked_evidence_is_each_release_s_own(tmp_path: object) -> None:
    config, names = DetectorConfig(), region_names()
    days = _releases(tmp_path)
    trackers = [
        TurnoutTracker(r[0].election, names, config, load_curves(SHIPPED_ELECTIONS, exclude=r[0].election))
        for r in days
    ]
    functions = (jumps.jump_scores, jumps.pace_change_scores, jumps.curve_model, jumps.curve_jump_scores)
    compared = 0
    for k in range(max(len(r) for r in days)):
        work = [(t, r[k]) for t, r in zip(trackers, days, strict=True) if k < len(r)]
        batches = [t.stage(release) for t, release in work]
        prepare(batches, config)
        for (t, release), b in zip(work, batches, strict=True):
            alone = Batch.of(
                release,
                t.last_value,
                t.last_time,
                latest_as_of=t.latest_as_of,
                names=t.names,
                curves=t.curves,
                since=t.since,
                pace=t.pace,
            )
            assert jumps.phases(b) == jumps.phases(alone)
            for function in functions:
                assert _same(function(b, config), function(alone, config)), (function.__name__, release.as_of)
                compared += 1
            t.process(release)
    assert compared > 500


def test_trackers_flag_the_same_with_their_releases_prepared_together(tmp_path: object) -> None:
    names = region_names()
    days = _releases(tmp_path)

    def run(together: bool) -> list[str]:
        trackers = [
            TurnoutTracker(r[0].election, names, curves=load_curves(SHIPPED_ELECTIONS, exclude=r[0].election))
            for r in days
        ]
        out = []
        for k in range(max(len(r) for r in days)):
            work = [(t, r[k]) for t, r in zip(trackers, days, strict=True) if k < len(r)]
            if together:
                prepare_releases(work)
            for t, release in work:
                result = t.process(release)
                out += [repr(f) for f in result.flags] + [repr(u) for u in result.updates]
        return out

    alone, together = run(False), run(True)
    assert together == alone and len(alone) > 1000
