"""A broker that came back empty, without a broker: a stand-in for Faust's consumer and for `read_ends`.

What a partition's end is on a real tansu broker (`core.topics.read_ends`) is covered with the broker
by tests/streams/test_faults.py; here the ends are given, and the real `ResetWatch`/`start_over` decide.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import pytest
from aiokafka import TopicPartition
from faust.types import TP

from streams import broker_reset
from streams.broker_reset import ResetWatch, start_over

RELEASES, COUNTS = TP("releases", 0), TP("station-counts", 0)
OTHER = TP("releases", 1)


@dataclass
class FakeConsumer:
    """The parts of Faust's consumer the check reads and resets: assignment, per-partition bookkeeping, seek."""

    assigned: set[TP]
    _read_offset: dict[TP, int | None] = field(default_factory=dict)
    _committed_offset: dict[TP, int | None] = field(default_factory=dict)
    _gap: dict[TP, list[int]] = field(default_factory=dict)
    _acked: dict[TP, list[int]] = field(default_factory=dict)
    _acked_index: dict[TP, set[int]] = field(default_factory=dict)
    seeks: list[tuple[TP, int]] = field(default_factory=list)

    def assignment(self) -> set[TP]:
        return self.assigned

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp, offset))


@dataclass
class Ends:
    """What `read_ends` answers (a test sets each partition's end), and which partitions it was asked about."""

    answers: dict[TopicPartition, int] = field(default_factory=dict)
    asked: list[list[TopicPartition]] = field(default_factory=list)

    def __setitem__(self, tp: TP, offset: int) -> None:
        self.answers[TopicPartition(tp.topic, tp.partition)] = offset


@pytest.fixture
def ends(monkeypatch: pytest.MonkeyPatch) -> Ends:
    given = Ends()

    async def read_ends(bootstrap: str, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
        assert bootstrap == "broker:9092"
        given.asked.append(list(partitions))
        return {tp: given.answers[tp] for tp in partitions}

    monkeypatch.setattr(broker_reset, "read_ends", read_ends)
    return given


async def test_offsets_past_the_end_mean_the_partition_was_wiped(ends: Ends) -> None:
    """Read up to offset 49 (so 50 records) and committed 50, but the partition now ends at 3."""
    consumer = FakeConsumer({RELEASES, COUNTS}, {RELEASES: 49, COUNTS: 9}, {RELEASES: 50, COUNTS: 10})
    ends[RELEASES] = 3
    ends[COUNTS] = 10  # exactly what was read: nothing new, nothing lost
    assert await ResetWatch().find_wiped(consumer, "broker:9092") == {RELEASES: (50, 3)}


async def test_offsets_within_the_partition_are_not_a_reset(ends: Ends) -> None:
    consumer = FakeConsumer({RELEASES, COUNTS}, {RELEASES: 49, COUNTS: None}, {RELEASES: 40, COUNTS: 5})
    ends[RELEASES] = 60  # more records came since
    ends[COUNTS] = 5
    assert await ResetWatch().find_wiped(consumer, "broker:9092") == {}


async def test_a_committed_offset_alone_counts(ends: Ends) -> None:
    """Nothing read since the worker started, but the group had committed 20: an end of 5 is a wipe."""
    consumer = FakeConsumer({COUNTS}, {}, {COUNTS: 20})
    ends[COUNTS] = 5
    assert await ResetWatch().find_wiped(consumer, "broker:9092") == {COUNTS: (20, 5)}
    # the first record read (offset 0) of a partition that now holds none
    consumer = FakeConsumer({RELEASES}, {RELEASES: 0}, {})
    ends[RELEASES] = 0
    assert await ResetWatch().find_wiped(consumer, "broker:9092") == {RELEASES: (1, 0)}


async def test_partitions_never_read_are_not_asked_about(ends: Ends) -> None:
    consumer = FakeConsumer({RELEASES, OTHER}, {RELEASES: None}, {OTHER: 0})
    assert await ResetWatch().find_wiped(consumer, "broker:9092") == {}
    assert ends.asked == []
    consumer = FakeConsumer({RELEASES, OTHER}, {RELEASES: 4}, {OTHER: 0})
    ends[RELEASES] = 5
    assert await ResetWatch().find_wiped(consumer, "broker:9092") == {}
    assert ends.asked == [[TopicPartition("releases", 0)]]


async def test_start_over_forgets_the_wiped_partitions_and_reads_them_from_zero(
    caplog: pytest.LogCaptureFixture,
) -> None:
    consumer = FakeConsumer({RELEASES, COUNTS}, {RELEASES: 49, COUNTS: 9}, {RELEASES: 50, COUNTS: 10})
    for book in (consumer._gap, consumer._acked):
        book.update({RELEASES: [48, 49], COUNTS: [9]})
    consumer._acked_index.update({RELEASES: {48, 49}, COUNTS: {9}})
    with caplog.at_level(logging.ERROR, logger="streams.broker_reset"):
        await start_over(consumer, {RELEASES: (50, 3)})
    assert consumer.seeks == [(RELEASES, 0)]
    names = ("_read_offset", "_committed_offset", "_gap", "_acked", "_acked_index")
    kept = {name: set(getattr(consumer, name)) for name in names}
    assert kept == {name: {COUNTS} for name in names}  # the other partition keeps its place
    assert "releases[0] ends at 3 but this worker had read to 50" in caplog.text
    assert "turnout-watch restore" in caplog.text


async def test_after_starting_over_the_partition_is_no_longer_wiped(ends: Ends) -> None:
    watch = ResetWatch()
    consumer = FakeConsumer({RELEASES}, {RELEASES: 49}, {RELEASES: 50})
    ends[RELEASES] = 3
    wiped = await watch.find_wiped(consumer, "broker:9092")
    assert wiped == {RELEASES: (50, 3)}
    await start_over(consumer, wiped)
    assert await watch.find_wiped(consumer, "broker:9092") == {}  # reported once, not at every check
    consumer._read_offset[RELEASES] = 4  # the new topic's records are read again from 0
    ends[RELEASES] = 5
    assert await watch.find_wiped(consumer, "broker:9092") == {}


async def test_a_wipe_is_found_after_a_rebalance_reset_the_consumer_s_offsets(ends: Ends) -> None:
    """The empty broker forgot the group: the worker rejoins and Faust's offsets of the partition are
    gone. What the watch saw read before still shows the loss."""
    watch = ResetWatch()
    consumer = FakeConsumer({RELEASES, COUNTS}, {RELEASES: 49, COUNTS: 9}, {RELEASES: 50, COUNTS: 10})
    ends[RELEASES], ends[COUNTS] = 50, 10
    assert await watch.find_wiped(consumer, "broker:9092") == {}  # healthy: remembered, nothing to say
    rejoined = FakeConsumer({RELEASES, COUNTS})  # the rebalance: nothing read, nothing committed
    ends[RELEASES], ends[COUNTS] = 2, 0
    assert await watch.find_wiped(rejoined, "broker:9092") == {RELEASES: (50, 2), COUNTS: (10, 0)}


async def test_only_assigned_partitions_are_checked(ends: Ends) -> None:
    """A partition that moved to another worker is that worker's business, until it comes back."""
    watch = ResetWatch()
    ends[RELEASES], ends[OTHER] = 50, 30
    assert await watch.find_wiped(FakeConsumer({RELEASES, OTHER}, {RELEASES: 49, OTHER: 29}), "broker:9092") == {}
    ends[OTHER] = 0  # wiped while another worker held it
    assert await watch.find_wiped(FakeConsumer({RELEASES}, {RELEASES: 49}), "broker:9092") == {}
    assert ends.asked[-1] == [TopicPartition("releases", 0)]
    assert await watch.find_wiped(FakeConsumer({RELEASES, OTHER}), "broker:9092") == {OTHER: (30, 0)}
