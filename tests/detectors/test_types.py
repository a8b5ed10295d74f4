"""The batch every release rule reads: what is fresh, revised, and how far each region moved."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone

import numpy as np

from detectors.config import DetectorConfig
from detectors.types import Batch, Scope, shared
from turnout_watch.core.records import Release

TZ = timezone(timedelta(hours=6))
TEN, NOON = datetime(2022, 11, 20, 10, tzinfo=TZ), datetime(2022, 11, 20, 12, tzinfo=TZ)


def test_batch_aligns_the_release_with_what_was_known_before() -> None:
    release = Release("e", NOON, NOON, {"KZ-10": 25.0, "KZ-11": 30.0, "KZ-15": 40.0, "KZ-19": 9.0, "KZ": 27.0})
    last_value = {"KZ-10": 20.0, "KZ-15": 41.0, "KZ-19": 8.0}
    last_time = {"KZ-10": TEN.timestamp(), "KZ-15": NOON.timestamp(), "KZ-19": NOON.timestamp()}
    b = Batch.of(release, last_value, last_time)
    assert b.codes == ["KZ-10", "KZ-11", "KZ-15", "KZ-19", "KZ"]
    assert b.fresh.tolist() == [True, True, False, False, True]  # never seen counts as fresh
    assert b.revised.tolist() == [False, False, True, True, False]  # same hour, another figure
    assert b.national.tolist() == [False, False, False, False, True]
    assert b.delta[0] == 5.0 and b.hours[0] == 2.0
    assert np.isnan(b.delta[1]) and np.isnan(b.hours[1])
    assert (b.election, b.as_of, b.now) == ("e", "2022-11-20T12:00:00+06:00", NOON.timestamp())
    assert (b.latest_as_of, b.duplicate, b.curves) == (-math.inf, False, None)


def test_the_same_figure_again_is_neither_fresh_nor_revised() -> None:
    b = Batch.of(Release("e", NOON, NOON, {"KZ-10": 25.0}), {"KZ-10": 25.0}, {"KZ-10": NOON.timestamp()})
    assert not b.fresh[0] and not b.revised[0]


def test_local_time_is_read_in_the_release_zone() -> None:
    release = Release("e", NOON.astimezone(UTC), NOON, {"KZ-10": 1.0}, timezone="Asia/Qyzylorda")
    b = Batch.of(release)
    assert f"{b.local(TEN.timestamp()):%H:%M}" == "09:00"  # Qyzylorda keeps UTC+5


def test_scope_flag_rounds_value_and_expected_and_names_the_region() -> None:
    scope = Scope("e", "2022-11-20T12:00:00+06:00", {"KZ-61": "Turkistan Region"})
    flag = scope.flag("KZ-61", "out_of_range", "critical", 101.234567, 100.000049, "m", {"bound": 100.0})
    assert (flag.region, flag.region_code, flag.as_of) == ("Turkistan Region", "KZ-61", "2022-11-20T12:00:00+06:00")
    assert (flag.value, flag.expected) == (101.2346, 100.0)
    assert scope.flag("KZ-99", "x", "info", 1.0, None, "m", {}).expected is None
    assert scope.name("KZ-99") == "KZ-99"


def test_shared_evidence_is_computed_once_per_batch_and_config() -> None:
    calls: list[float] = []

    @shared
    def evidence(b: Batch, config: DetectorConfig) -> float:
        calls.append(config.jump_z_warning)
        return float(b.value.sum())

    release = Release("e", NOON, NOON, {"KZ-10": 25.0, "KZ-11": 30.0})
    b, other = Batch.of(release), Batch.of(release)
    assert evidence(b, DetectorConfig()) == evidence(b, DetectorConfig()) == 55.0
    evidence(b, DetectorConfig(jump_z_warning=4.0))
    evidence(other, DetectorConfig())
    assert calls == [3.0, 4.0, 3.0]
