"""The national figure against its regions' registered-weighted mean."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest

from detectors.config import DetectorConfig
from detectors.rules.national import NationalInconsistency, weighted_national
from detectors.types import Batch
from turnout_watch.core.records import Release

TZ = timezone(timedelta(hours=6))
CFG = DetectorConfig()
NOON = datetime(2023, 3, 19, 12, tzinfo=TZ)


def batch(values: dict[str, float], registered: dict[str, int], seen: dict[str, float] | None = None) -> Batch:
    release = Release("e", NOON, NOON, values, registered=registered)
    return Batch.of(release, seen, dict.fromkeys(seen or {}, NOON.timestamp()), names={"KZ": "Kazakhstan"})


def test_weighted_national_leaves_out_regions_without_a_figure_or_weight() -> None:
    mean, coverage = weighted_national(
        np.array([50.0, 70.0, np.nan, 90.0]), np.array([100.0, 300.0, 100.0, np.nan]), 600.0
    )
    assert mean == pytest.approx(65.0) and coverage == pytest.approx(400 / 600)
    assert np.isnan(weighted_national(np.array([np.nan]), np.array([1.0]), 1.0)[0])


def test_a_national_figure_off_its_regions_is_flagged() -> None:
    # (50 * 100 + 70 * 300) / 400 = 65; the nation says 65.7 (warning) or 67.5 (critical)
    registered = {"KZ-10": 100, "KZ-11": 300}
    [warning] = NationalInconsistency().flags(batch({"KZ-10": 50.0, "KZ-11": 70.0, "KZ": 65.7}, registered), CFG)
    assert (warning.region, warning.region_code, warning.detector, warning.severity) == (
        "Kazakhstan",
        "KZ",
        "national_inconsistency",
        "warning",
    )
    assert (warning.value, warning.expected) == (65.7, 65.0)
    assert warning.message == (
        "the national figure 65.70% differs by +0.70 points from its regions' registered-weighted mean 65.00%"
    )
    assert warning.evidence == {"gap_points": 0.7, "coverage": 1.0}
    [critical] = NationalInconsistency().flags(batch({"KZ-10": 50.0, "KZ-11": 70.0, "KZ": 62.5}, registered), CFG)
    assert critical.severity == "critical" and critical.evidence["gap_points"] == -2.5


def test_no_flag_within_tolerance_without_weights_or_coverage_or_a_fresh_national_figure() -> None:
    rule, registered = NationalInconsistency(), {"KZ-10": 100, "KZ-11": 300}
    assert rule.flags(batch({"KZ-10": 50.0, "KZ-11": 70.0, "KZ": 65.4}, registered), CFG) == []
    assert rule.flags(batch({"KZ-10": 50.0, "KZ-11": 70.0, "KZ": 68.0}, {}), CFG) == []
    # KZ-15 (100 of 500 registered) has not reported: 80 % coverage is below 95 %
    assert rule.flags(batch({"KZ-10": 50.0, "KZ-11": 70.0, "KZ": 68.0}, registered | {"KZ-15": 100}), CFG) == []
    assert rule.flags(batch({"KZ-10": 50.0, "KZ-11": 70.0, "KZ": 68.0}, registered, {"KZ": 68.0}), CFG) == []
