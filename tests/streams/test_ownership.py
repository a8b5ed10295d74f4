"""Partition ownership without a broker: what a worker drops and rebuilds when a rebalance moves elections.

The partition history that a worker reads from Kafka is handed in (`OfflineOwnership._history`); the
rest is the real `PartitionOwnership`, against a recording `Owner` or the real `AgentState`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from faust.types import TP
from prometheus_client import CollectorRegistry

from detectors.tracker import ProcessResult
from streams.agents import AgentState
from streams.app import create_app
from streams.metrics import PipelineMetrics
from streams.ownership import PartitionOwnership
from tests.support.paths import DAY_2022
from turnout_watch.core.dayfile import load_day
from turnout_watch.core.normalize import normalize_release, region_names
from turnout_watch.core.records import RegionUpdate, Release, encode
from turnout_watch.core.settings import SHIPPED_ELECTIONS, load_settings
from turnout_watch.core.topics import TopicNames

TOPICS = TopicNames("raw", "releases", "turnout", "counts", "flags", "aggregates")


@dataclass
class Record:
    """The fields of aiokafka's ConsumerRecord that a rebuild reads."""

    value: bytes
    partition: int
    timestamp: int  # milliseconds, as Kafka stamps a record


@dataclass
class RecordingOwner:
    """An `Owner` that runs nothing: each record's value names its election and what it returns."""

    reported: list[tuple[str, float | None, bool]] = field(default_factory=list)
    updates: list[list[RegionUpdate]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)

    def process_record(self, topic: str, value: bytes) -> tuple[str, ProcessResult, Release | None]:
        obj = json.loads(value)  # ValueError for a malformed record, as the real one raises
        self.processed.append(obj["name"])
        update = RegionUpdate(obj["election"], "KZ-61", "", 1.0, 0.0, 1.0, 1.0, 0.0)
        return obj["election"], ProcessResult(updates=[update]), None

    def report(
        self,
        election: str,
        result: ProcessResult,
        release: Release | None,
        *,
        raised: float | None = None,
        count: bool = True,
    ) -> None:
        self.reported.append((election, raised, count))

    def report_updates(self, updates: Iterable[RegionUpdate]) -> None:
        self.updates.append(list(updates))

    def forget(self, election: str) -> int:
        self.forgotten.append(election)
        return 1


class OfflineOwnership(PartitionOwnership):
    """The real ownership, with each partition's history given instead of read from the broker."""

    def __init__(self, owner: Any, history: dict[int, list[tuple[str, Any]]] | None = None) -> None:
        super().__init__(owner, TOPICS, "group", "127.0.0.1:9")
        self.history = history or {}
        self.asked: list[set[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def _history(self, partitions: set[int]) -> list[tuple[str, Any]]:
        self.asked.append(set(partitions))
        await self.gate.wait()
        return [record for p in sorted(partitions) for record in self.history.get(p, [])]


def assignment(*partitions: int) -> set[TP]:
    """What faust hands `on_partitions_assigned`: both election-keyed topics, and others."""
    return {TP(t, p) for p in partitions for t in (TOPICS.releases, TOPICS.observer_aggregates, TOPICS.flags)}


def record(name: str, election: str, partition: int, ms: int) -> tuple[str, Record]:
    value = json.dumps({"name": name, "election": election}).encode()
    return TOPICS.releases, Record(value, partition, ms)


async def test_until_the_first_assignment_every_election_counts_as_ours() -> None:
    ownership = OfflineOwnership(RecordingOwner())
    ownership.note("a", 0)
    assert ownership.owns("a") and ownership.owns("never-seen")
    await ownership.on_assigned(assignment(1))
    await ownership.wait_ready()
    assert ownership.owns("b")  # a partition not yet seen: its first record will tell
    ownership.note("b", 0)
    ownership.note("c", 1)
    assert not ownership.owns("b") and ownership.owns("c")
    updates = [RegionUpdate(e, "KZ-61", "", 1.0, 0.0, 1.0, 1.0, 0.0) for e in ("b", "c")]
    assert [u.election for u in ownership.owned_only(updates)] == ["c"]


async def test_elections_on_partitions_that_moved_away_are_forgotten() -> None:
    owner = RecordingOwner()
    ownership = OfflineOwnership(owner)
    await ownership.on_assigned(assignment(0, 1, 2))
    await ownership.wait_ready()
    for election, partition in (("a", 0), ("b", 1), ("c", 2)):
        ownership.note(election, partition)
    await ownership.on_assigned(assignment(1))  # another worker joined and took partitions 0 and 2
    await ownership.wait_ready()
    assert sorted(owner.forgotten) == ["a", "c"]
    assert ownership.partition_of == {"b": 1}
    assert ownership.owned == {1}
    assert ownership.asked == [{0, 1, 2}]  # nothing gained the second time: no history read


async def test_gained_partitions_are_rebuilt_before_the_agent_goes_on() -> None:
    owner = RecordingOwner()
    history = {
        0: [record("a-second", "a", 0, 2000), record("a-first", "a", 0, 1000)],
        1: [record("b-first", "b", 1, 1500), (TOPICS.releases, Record(b"not json", 1, 1200))],
    }
    ownership = OfflineOwnership(owner, history)
    ownership.gate.clear()
    await ownership.on_assigned(assignment(0, 1))
    with pytest.raises(TimeoutError):  # the agent waits while the history is read
        await asyncio.wait_for(ownership.wait_ready(), 0.1)
    ownership.gate.set()
    await asyncio.wait_for(ownership.wait_ready(), 5)
    # in the order the records reached Kafka, across both topics and partitions; the malformed one skipped
    assert owner.processed == ["a-first", "b-first", "a-second"]
    # flags keep their record's time and are not counted again (the previous owner counted them)
    assert owner.reported == [("a", 1.0, False), ("b", 1.5, False), ("a", 2.0, False)]
    assert [[u.election for u in batch] for batch in owner.updates] == [["a", "b", "a"]]  # one batch
    assert ownership.partition_of == {"a": 0, "b": 1}
    assert ownership.rebuilt_records == 4


async def test_a_record_of_a_partition_no_longer_ours_is_not_reported() -> None:
    owner = RecordingOwner()
    ownership = OfflineOwnership(owner)
    await ownership.on_assigned(assignment(1))
    await ownership.wait_ready()
    ownership.restore([record("a", "a", 0, 1000), record("b", "b", 1, 2000)])
    assert owner.processed == ["a", "b"]  # the tracker still sees it (its partition is noted)
    assert [r[0] for r in owner.reported] == ["b"]
    assert [[u.election for u in batch] for batch in owner.updates] == [["b"]]


async def test_a_failed_rebuild_does_not_hold_the_agent(caplog: pytest.LogCaptureFixture) -> None:
    class Broken(OfflineOwnership):
        async def _history(self, partitions: set[int]) -> list[tuple[str, Any]]:
            raise ConnectionError("broker gone")

    ownership = Broken(RecordingOwner())
    with caplog.at_level(logging.ERROR, logger="streams.ownership"):
        await ownership.on_assigned(assignment(0))
        await asyncio.wait_for(ownership.wait_ready(), 5)
    assert "they start empty" in caplog.text
    assert ownership.rebuilt_records == 0


def day_2022() -> list[Release]:
    day = load_day(DAY_2022)
    releases = [normalize_release(e, day.election.date, election=day.election).release for e in day.releases()]
    return [r for r in releases if r is not None]


def agent_state(tmp_path: Path) -> AgentState:
    settings = load_settings(data_dir=tmp_path, history_dir=SHIPPED_ELECTIONS)
    app = create_app(settings, "127.0.0.1:9")  # never started: no broker
    return AgentState(app, TOPICS, settings, PipelineMetrics(CollectorRegistry()), region_names())


def series(state: AgentState, family: str) -> dict[tuple[str, ...], float]:
    out = {}
    for metric in state.metrics.registry.collect():
        if metric.name == family:
            for s in metric.samples:
                out[tuple(s.labels.values())] = s.value
    return out


async def test_the_new_owner_shows_what_the_old_one_showed(tmp_path: Path) -> None:
    """The 2022 day through one worker's agent state, then rebuilt on another from the partition's
    records: the same figures (turnout, deltas that need the previous release, the flags' hours)."""
    releases = day_2022()
    before = agent_state(tmp_path / "old")
    for release in releases:
        election, result, _ = before.process_record(TOPICS.releases, encode(release))
        before.report(election, result, release, raised=release.published_at.timestamp())
        before.report_updates(result.updates)
    after = agent_state(tmp_path / "new")
    ownership = OfflineOwnership(
        after,
        {
            3: [
                (TOPICS.releases, Record(encode(r), 3, int(r.published_at.timestamp() * 1000)))
                for r in reversed(releases)  # the two topics' records come in any order: time sorts them
            ]
        },
    )
    after.ownership = ownership
    await ownership.on_assigned(assignment(3))
    await asyncio.wait_for(ownership.wait_ready(), 10)
    election = releases[0].election
    assert ownership.partition_of == {election: 3}
    for family in (
        "turnout_watch_region_turnout_percent",
        "turnout_watch_region_delta_points",
        "turnout_watch_region_as_of_timestamp_seconds",
        "turnout_watch_region_last_flag_timestamp_seconds",
        "turnout_watch_region_last_flag_as_of_timestamp_seconds",
        "turnout_watch_election_polls_timestamp_seconds",
    ):
        assert series(after, family) == series(before, family), family
        assert series(after, family), family
    assert len(series(after, "turnout_watch_region_turnout_percent")) == 21
    assert (
        after.metrics.registry.get_sample_value(
            "turnout_watch_flags_total", {"detector": "cross_sectional_jump", "severity": "critical"}
        )
        == 0
    )  # counted by the worker that raised it
