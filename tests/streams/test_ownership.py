"""Partition ownership without a broker: what a worker drops and rebuilds when a rebalance moves elections.

The partition history and flags that a worker reads from Kafka are handed in (`OfflineOwnership._history`
and `_flags`); the rest is the real `PartitionOwnership`, against a recording `Owner` or the real
`AgentState`.
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
from turnout_watch.core.records import Flag, RegionUpdate, Release, StationCounts, StationRow, encode
from turnout_watch.core.settings import SHIPPED_ELECTIONS, load_settings
from turnout_watch.core.topics import TopicNames

TOPICS = TopicNames("raw", "releases", "turnout", "counts", "flags", "station-counts", "dead-letter")


@dataclass
class Record:
    """The fields of aiokafka's ConsumerRecord that a rebuild reads."""

    value: bytes
    partition: int
    timestamp: int  # milliseconds, as Kafka stamps a record


@dataclass
class RecordingOwner:
    """An `Owner` that runs nothing: each record's value names its election and what it returns."""

    reported: list[tuple[str, float | None]] = field(default_factory=list)
    updates: list[list[RegionUpdate]] = field(default_factory=list)
    forgotten: list[str] = field(default_factory=list)
    processed: list[str] = field(default_factory=list)
    published: list[tuple[str, float]] = field(default_factory=list)

    def process_record(self, topic: str, value: bytes) -> tuple[str, ProcessResult, Release | None]:
        obj = json.loads(value)  # ValueError for a malformed record, as the real one raises
        self.processed.append(obj["name"])
        update = RegionUpdate(obj["election"], "KZ-61", "", 1.0, 0.0, 1.0, 1.0, 0.0)
        return obj["election"], ProcessResult(updates=[update]), None

    def report(self, election: str, result: ProcessResult, release: Release | None, *, at: float | None = None) -> None:
        self.reported.append((election, at))

    def record_published(self, flag: Flag, raised: float) -> None:
        self.published.append((flag.key, raised))

    def report_updates(self, updates: Iterable[RegionUpdate]) -> None:
        self.updates.append(list(updates))

    def forget(self, election: str) -> int:
        self.forgotten.append(election)
        return 1


class OfflineOwnership(PartitionOwnership):
    """The real ownership, with each partition's history given instead of read from the broker."""

    def __init__(
        self,
        owner: Any,
        history: dict[int, list[tuple[str, Any]]] | None = None,
        flags: dict[int, list[Record]] | None = None,
    ) -> None:
        super().__init__(owner, TOPICS, "group", "127.0.0.1:9")
        self.history = history or {}
        self.flags = flags or {}
        self.asked: list[set[int]] = []
        self.gate = asyncio.Event()
        self.gate.set()

    async def _history(self, partitions: set[int]) -> list[tuple[str, Any]]:
        self.asked.append(set(partitions))
        await self.gate.wait()
        return [record for p in sorted(partitions) for record in self.history.get(p, [])]

    async def _flags(self, partitions: set[int]) -> list[Any]:
        return [record for p in sorted(partitions) for record in self.flags.get(p, [])]


def assignment(*partitions: int) -> set[TP]:
    """What faust hands `on_partitions_assigned`: both topics the release agent reads, and others."""
    return {TP(t, p) for p in partitions for t in (TOPICS.releases, TOPICS.station_counts, TOPICS.observer_counts)}


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
    # each record's figures at the time it reached Kafka (its "last observer count" time)
    assert owner.reported == [("a", 1.0), ("b", 1.5), ("a", 2.0)]
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


def flag_record(flag: Flag, partition: int, ms: int) -> Record:
    return Record(encode(flag.to_dict()), partition, ms)


def a_flag(election: str, as_of: str = "2022-11-20T12:00:00+06:00") -> Flag:
    return Flag(election, "Turkistan Region", "KZ-61", as_of, "cross_sectional_jump", "critical", 64.2, 27.0, "m")


async def test_the_partition_s_flags_are_read_back_as_published() -> None:
    """Every flag on a gained partition is handed to the owner with its record's time (so it is counted
    and never published again); a malformed one is skipped."""
    owner = RecordingOwner()
    history = {0: [record("a-first", "a", 0, 1000)], 1: [record("c-first", "c", 1, 1000)]}
    flags = {
        0: [flag_record(a_flag("a"), 0, 3000), Record(b'{"election": "a"}', 0, 3100)],
        1: [flag_record(a_flag("c"), 1, 3200)],
    }
    ownership = OfflineOwnership(owner, history, flags)
    await ownership.on_assigned(assignment(0, 1))
    await asyncio.wait_for(ownership.wait_ready(), 5)
    assert owner.published == [(a_flag("a").key, 3.0), (a_flag("c").key, 3.2)]
    # partition 1 moves away while partition 2 comes in: its flags are read, not those of "c" again
    ownership.flags[2] = [flag_record(a_flag("c", "2022-11-20T14:00:00+06:00"), 2, 4000)]
    await ownership.on_assigned(assignment(0, 2))
    await asyncio.wait_for(ownership.wait_ready(), 5)
    assert owner.forgotten == ["c"]
    assert owner.published[2:] == [(a_flag("c", "2022-11-20T14:00:00+06:00").key, 4.0)]
    assert ownership.asked == [{0, 1}, {2}]


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


def observed_rows(release: Release, stations: int = 12) -> tuple[StationRow, ...]:
    """Tallies of `stations` stations of Turkistan, ten minutes before the release's hour, near its figure."""
    taken = release.as_of.timestamp() - 600
    share = release.turnout.get("KZ-61", 50.0) / 100
    return tuple(
        StationRow(
            f"61-{i:04d}", "KZ-61", "tally", taken, 5 * 3600.0, taken + 60, 1000, round(1000 * share) - 20 + 4 * i
        )
        for i in range(stations)
    )


async def test_the_new_owner_shows_what_the_old_one_showed(tmp_path: Path) -> None:
    """The 2022 day (and observer counts of Turkistan) through one worker's agent state, then rebuilt on
    another from the partition's records and flags: the same figures (turnout, deltas that need the
    previous release, the observers' estimate, the flags' hours) and the same count of flags."""
    releases = day_2022()
    election = releases[0].election
    before = agent_state(tmp_path / "old")
    history: list[tuple[str, Record]] = []
    flags: list[Record] = []
    for release in releases:
        ms = int(release.published_at.timestamp() * 1000)
        for topic, value in (
            (TOPICS.releases, encode(release)),
            (TOPICS.station_counts, encode(StationCounts(election, observed_rows(release)))),
        ):
            _, result, decoded = before.process_record(topic, value)
            for flag in before.elections[election].figures.admit_flags(result.flags, ms / 1000):  # published
                flags.append(flag_record(flag, 3, ms))
            before.report(election, result, decoded, at=ms / 1000)
            before.report_updates(result.updates)
            history.append((topic, Record(value, 3, ms)))
            ms += 1
    after = agent_state(tmp_path / "new")
    # the two topics' records come in any order: their times sort them
    ownership = OfflineOwnership(after, {3: list(reversed(history))}, {3: flags})
    after.ownership = ownership
    await ownership.on_assigned(assignment(3))
    await asyncio.wait_for(ownership.wait_ready(), 10)
    assert ownership.partition_of == {election: 3}
    for family in (
        "turnout_watch_region_turnout_percent",
        "turnout_watch_region_delta_points",
        "turnout_watch_region_as_of_timestamp_seconds",
        "turnout_watch_region_observed_turnout_percent",
        "turnout_watch_region_observed_stations",
        "turnout_watch_region_last_observer_count_timestamp_seconds",
        "turnout_watch_region_last_flag_timestamp_seconds",
        "turnout_watch_region_last_flag_as_of_timestamp_seconds",
        "turnout_watch_election_polls_timestamp_seconds",
        "turnout_watch_election_flags",
    ):
        assert series(after, family) == series(before, family), family
        assert series(after, family), family
    assert len(series(after, "turnout_watch_region_turnout_percent")) == 21
    jump = (election, "cross_sectional_jump", "critical")
    assert series(after, "turnout_watch_election_flags")[jump] >= 1
    # the new owner's tracker raises no flag the old one published: the next release is judged as by one
    tracker_after, tracker_before = after.tracker(election), before.tracker(election)
    assert tracker_after.last_value == tracker_before.last_value
    assert tracker_after.stations.latest == tracker_before.stations.latest
