"""A broker that came back empty: notice it, say so loudly, and read the new topics from the start.

The embedded broker keeps everything in memory. When it dies and comes back (or an operator recreates
a topic), a worker that survives still holds its read and committed offsets of the old topics — say
50 — while the new topics start again at 0. Faust then skips every record whose offset is not above
the last one it read, so the next 50 records of each partition would be dropped without a word (the
issue "state survives faults" saw a day's last three releases lost that way).

Every check (`ResetWatch`) compares, per assigned partition, what the worker's consumers (Faust's, and
the counts hop's own, streams/counts_hop.py) have read or committed with
the end of the partition as a consumer can read it (`core.topics.read_ends`, not ListOffsets, which
tansu answers low). The offsets are taken first and the ends after, so the ends can only be later:
an offset past its end means the partition was wiped. The consumer's bookkeeping for it is then
dropped, as Faust does for a revoked partition, and it is read from offset 0. The trackers are kept:
the day re-published from the durable sources (`turnout-watch restore`) replaces what they hold
(every effect is keyed, streams/agents.py), so no figure moves and no flag is raised twice.
"""

from __future__ import annotations

import logging
from typing import Any

from aiokafka import TopicPartition
from faust.types import TP

from turnout_watch.core.topics import read_ends

log = logging.getLogger(__name__)

#: Faust's per-partition bookkeeping of reads and acks (faust.transport.consumer.Consumer), dropped
#: for a wiped partition exactly as `on_partitions_revoked` drops it for a revoked one.
_BOOKKEEPING = ("_gap", "_acked", "_acked_index", "_read_offset", "_committed_offset")


def _offsets(consumer: Any) -> dict[TP, int]:
    """Per assigned partition, the lowest end it may have: after the last record read or committed."""
    out: dict[TP, int] = {}
    for tp in consumer.assignment():
        read = consumer._read_offset.get(tp)
        committed = consumer._committed_offset.get(tp)
        floor = max(read + 1 if read is not None else 0, committed or 0)
        if floor > 0:
            out[tp] = floor
    return out


class ResetWatch:
    """Remembers how far each partition was read, across rebalances, and finds those that lost data.

    The memory matters: a worker whose group membership the empty broker no longer knows rejoins, and
    the rebalance resets Faust's own offsets, so after it nothing in the consumer shows the loss. An
    offset once read never goes away on a healthy topic, so a remembered one past the end is a wipe.
    """

    def __init__(self) -> None:
        self.floors: dict[TP, int] = {}

    async def find_wiped(self, consumer: Any, bootstrap: str) -> dict[TP, tuple[int, int]]:
        """Assigned partitions whose end is below what was read or committed of them: {tp: (offset, end)}."""
        return await self.find_wiped_of(set(consumer.assignment()), _offsets(consumer), bootstrap)

    async def find_wiped_of(
        self, assigned: set[TP], offsets: dict[TP, int], bootstrap: str
    ) -> dict[TP, tuple[int, int]]:
        """`find_wiped` of a consumer given by its assignment and, per partition, the lowest end it may
        have (after the last record read or committed): the counts hop's own aiokafka consumer."""
        for tp, floor in offsets.items():
            self.floors[tp] = max(floor, self.floors.get(tp, 0))
        floors = {tp: floor for tp, floor in self.floors.items() if tp in assigned}
        if not floors:
            return {}
        ends = await read_ends(bootstrap, [TopicPartition(tp.topic, tp.partition) for tp in floors])
        wiped = {}
        for tp, floor in floors.items():
            end = ends[TopicPartition(tp.topic, tp.partition)]
            if end < floor:
                wiped[tp] = (floor, end)
                self.floors[tp] = 0
        return wiped


def log_wiped(wiped: dict[TP, tuple[int, int]]) -> None:
    """Say loudly which partitions lost their data."""
    for tp, (floor, end) in sorted(wiped.items()):
        log.error(
            "partition %s[%d] ends at %d but this worker had read to %d: the broker lost its data or the topic "
            "was recreated. Reading it again from the start; re-publish the day with `turnout-watch restore`.",
            tp.topic,
            tp.partition,
            end,
            floor,
        )


async def start_over(consumer: Any, wiped: dict[TP, tuple[int, int]]) -> None:
    """Forget what Faust's consumer read of the wiped partitions and read them again from offset 0."""
    log_wiped(wiped)
    for tp in sorted(wiped):
        for name in _BOOKKEEPING:
            getattr(consumer, name).pop(tp, None)
        await consumer.seek(tp, 0)
