"""Which elections a worker owns, so each election's region series come from exactly one worker.

The releases, station-counts and flags topics are keyed by election (same partition count, same key:
an election's records of all three sit on partitions of the same number): an election lives on one partition
and Kafka gives each partition to one worker of the group. When a rebalance moves a partition (a worker
joined, left or died), two things follow:

* the worker that lost it drops the election's tracker and figures (`Owner.forget`), so its series
  leave the worker's `/metrics`, or Prometheus would keep scraping its last values beside the new
  owner's and a panel would show two lines for one region;
* the worker that gained it rebuilds the election's tracker from the partition's history up to the
  group's committed offset (a day is a few dozen releases and its observer counts) before its agent
  takes the first new record. Without that, the new owner would start from an empty tracker: no
  previous figure, so no delta, no rate, no observers' estimate and none of the detectors that compare
  with the previous release. The rebuild also sets the figures, so an election whose releases all came
  before the takeover is still on the dashboard. Then it reads the partition's flags *to the end*:
  every flag published, also by an owner that died after publishing and before committing, so the
  redelivered batch raises it again and it is not published again (`Flag.key`), and the flag counts
  are those of the topic, not of one process.

The worker remembers the partition each election's records came from (`note`); Faust's
`on_partitions_assigned` signal brings the new assignment (Faust rebalances eagerly: every rebalance
ends with the complete assignment, so lost = before - now, gained = now - before). Of the agents it
needs only the four calls of `Owner`, and imports nothing from them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from typing import Any, Protocol, TypeVar

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP

from detectors.tracker import ObservedEstimate, ProcessResult
from turnout_watch.core.errors import RecordError
from turnout_watch.core.records import Flag, RegionUpdate, Release, decode
from turnout_watch.core.topics import TopicNames, read_ends

log = logging.getLogger(__name__)
T = TypeVar("T", RegionUpdate, ObservedEstimate, Flag)
#: A day's partition is a few hundred records (well under a second); past this the broker is in trouble
#: and the agent goes on with empty trackers rather than stall (the log says so).
REBUILD_TIMEOUT = 60.0


class Owner(Protocol):
    """What ownership needs of the worker's agents (`streams.agents.AgentState`), and no more."""

    def process_record(self, topic: str, value: bytes) -> tuple[str, ProcessResult, Release | None]:
        """A record of the releases or station-counts topic, as published, through its election's
        tracker; RecordError (a ValueError) if it breaks the contract."""
        ...

    def report(self, election: str, result: ProcessResult, release: Release | None, *, at: float | None = None) -> None:
        """Set the election's figures from a record's result, all but its flags and updates."""
        ...

    def record_published(self, flag: Flag, raised: float) -> None:
        """A flag read back from the flags topic: counted, and never published again."""
        ...

    def report_updates(self, updates: Iterable[RegionUpdate]) -> None:
        """Set the figures of a batch's region updates (only each region's last one counts)."""
        ...

    def forget(self, election: str) -> int:
        """Drop the election's tracker and figures, so its series; return how many series went."""
        ...


class PartitionOwnership:
    def __init__(self, owner: Owner, topics: TopicNames, group: str, bootstrap: str) -> None:
        self.owner, self.topics, self.group, self.bootstrap = owner, topics, group, bootstrap
        self.partition_of: dict[str, int] = {}
        self.owned: set[int] | None = None  # None until the first assignment: everything counts as ours
        self._pending: set[int] = set()
        self._ready = asyncio.Event()
        self._ready.set()
        self._task: asyncio.Task[None] | None = None
        self.rebuilt_records = 0  # for the log and tests

    def note(self, election: str, partition: int) -> None:
        self.partition_of[election] = partition

    def owns(self, election: str) -> bool:
        if self.owned is None:
            return True
        partition = self.partition_of.get(election)
        return partition is None or partition in self.owned

    def owned_only(self, items: Iterable[T]) -> list[T]:
        return [item for item in items if self.owns(item.election)]

    async def wait_ready(self) -> None:
        """The agent waits here before each batch while a rebuild is under way."""
        await self._ready.wait()

    async def on_assigned(self, assigned: Iterable[TP]) -> None:
        """Faust's `on_partitions_assigned`: drop what moved away, rebuild what moved here."""
        now = {tp.partition for tp in assigned if tp.topic == self.topics.releases}
        before = self.owned
        self.owned = now
        for election, partition in list(self.partition_of.items()):
            if partition not in now:
                removed = self.owner.forget(election)
                del self.partition_of[election]
                log.info("partition %d moved away: dropped election %s (%d series)", partition, election, removed)
        gained = now - before if before is not None else now
        self._pending = (self._pending & now) | gained
        if self._pending and (self._task is None or self._task.done()):
            self._ready.clear()
            self._task = asyncio.create_task(self._rebuild(), name="rebuild-trackers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _rebuild(self) -> None:
        try:
            while self._pending:
                partitions, self._pending = set(self._pending), set()
                try:
                    await asyncio.wait_for(self._rebuild_partitions(partitions), REBUILD_TIMEOUT)
                except asyncio.CancelledError:
                    raise
                except Exception:  # never leave the agent waiting: log, and go on without history
                    log.exception("rebuilding trackers of partitions %s failed; they start empty", sorted(partitions))
        finally:
            self._ready.set()

    async def _rebuild_partitions(self, partitions: set[int]) -> None:
        records = await self._history(partitions)
        if records:
            self.restore(records)
            self.rebuilt_records += len(records)
        flags = await self._flags(partitions)
        for record in flags:
            try:
                flag = decode(Flag, record.value)
            except RecordError:
                continue
            self.note(flag.election, record.partition)  # flags are keyed by election too: same partition
            if self.owns(flag.election):
                self.owner.record_published(flag, record.timestamp / 1000)
        log.info(
            "rebuilt trackers of partitions %s from %d records and %d flags",
            sorted(partitions),
            len(records),
            len(flags),
        )

    async def _history(self, partitions: set[int]) -> list[tuple[str, Any]]:
        """(topic, aiokafka ConsumerRecord) of the partitions up to the group's committed offsets."""
        topics = self.topics
        tps = [TopicPartition(t, p) for p in sorted(partitions) for t in (topics.releases, topics.station_counts)]
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await admin.start()
        try:
            committed = await admin.list_consumer_group_offsets(self.group, partitions=tps)
        finally:
            await admin.close()
        upto = {tp: meta.offset for tp, meta in committed.items() if meta is not None and meta.offset > 0}
        return await self._read(upto)

    async def _flags(self, partitions: set[int]) -> list[Any]:
        """Every flag on the partitions now (to the end a consumer can read, not to a committed offset)."""
        tps = [TopicPartition(self.topics.flags, p) for p in sorted(partitions)]
        ends = await read_ends(self.bootstrap, tps)
        return [record for _topic, record in await self._read({tp: end for tp, end in ends.items() if end > 0})]

    async def _read(self, upto: dict[TopicPartition, int]) -> list[tuple[str, Any]]:
        """(topic, record) of each partition from its start up to (not including) `upto[tp]`."""
        if not upto:
            return []
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        await consumer.start()
        records: list[tuple[str, Any]] = []
        try:
            consumer.assign(list(upto))
            await consumer.seek_to_beginning(*upto)
            remaining = set(upto)
            while remaining:
                batch = await consumer.getmany(*remaining, timeout_ms=500)
                for tp, recs in batch.items():
                    records.extend((tp.topic, r) for r in recs if r.offset < upto[tp])
                for tp in list(remaining):
                    if await consumer.position(tp) >= upto[tp]:
                        remaining.discard(tp)
        finally:
            await consumer.stop()
        return records

    def restore(self, records: list[tuple[str, Any]]) -> None:
        """Run a partition's history through the trackers and set the figures of the elections we own.

        Flags the history raises again are not counted here: the flags topic says which were published.
        """
        # The agent took both topics as they arrived; the records' own timestamps give that order back.
        records.sort(key=lambda item: item[1].timestamp)
        updates: list[RegionUpdate] = []
        for topic, record in records:
            try:
                election, result, release = self.owner.process_record(topic, record.value)
            except Exception:
                continue
            self.note(election, record.partition)
            if not self.owns(election):
                continue
            self.owner.report(election, result, release, at=record.timestamp / 1000)
            updates.extend(result.updates)
        self.owner.report_updates(self.owned_only(updates))
