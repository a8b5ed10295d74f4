"""The counts hop: observer counts (keyed by station) re-keyed per election, on aiokafka's batched consumer.

Faust's per-message machinery (its fetcher, `Conductor.on_message`, the stream's drainer, a future per
event) cost ~70 % of the worker on this hop, where the hop's own work is a `json` decode and a dict
append per count. So this stateless hop is not a Faust agent: it reads `observer-counts` with
aiokafka's own consumer, in batches (`getmany`), in its own consumer group `<app_id>-counts`
(`core.topics.counts_group`) — aiokafka's group protocol, so several workers share the partitions and
a dead worker's partitions go to the others, as for Faust's group. (It cannot join Faust's group: a
broker refuses members of one group that subscribe to different topics.) It runs inside the worker
process as a mode Service, beside Faust's app, and publishes with the app's producer.

At-least-once, batch by batch: decode each count (`streams.codec.count_row`, else the core codec's
verdict: a bad record is dead-lettered with its reason, as the agents do), publish one `StationCounts`
per election (at most `ROWS_PER_RECORD` rows a record), wait until the broker acknowledged every one,
and only then commit the batch's offsets. If the broker does not take them the process exits
(`agents.give_up`) and a restart reads the batch again from the committed offsets. A redelivered count
changes nothing: the election's tracker keeps each station's latest count of the hour.

The broker-wipe check (streams/broker_reset.py) covers this consumer too: what it read or committed,
against the partitions' true ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from bisect import bisect_left
from collections import Counter
from collections.abc import Awaitable, Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError
from faust.types import TP
from mode import Service

from streams.agents import ROWS_PER_RECORD, AgentState, give_up
from streams.broker_reset import ResetWatch, log_wiped
from streams.codec import count_row, encode_rows
from turnout_watch.core.errors import RecordError
from turnout_watch.core.records import ObserverCount, StationRow, decode
from turnout_watch.core.topics import counts_group

log = logging.getLogger(__name__)
STREAM = "observer_counts"  # the label of its events, latency and malformed series


class CountsHop(Service):
    """observer-counts -> station-counts for the worker's lifetime (see the module's note)."""

    def __init__(self, state: AgentState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.shared = state
        self.consumer: AIOKafkaConsumer | None = None
        self.read: dict[TP, int] = {}  # per partition, the offset after the last record read
        self.resets = ResetWatch()
        self.running: asyncio.Future[None] | None = None
        self.settling: asyncio.Task[None] | None = None  # the last batch: its acknowledgements, then its commit
        self.app_joined = asyncio.Event()
        # mode's SignalHandlerT rejects every handler, even one of exactly its own signature (mode-streaming 0.7)
        state.app.on_partitions_assigned.connect(self._on_app_assigned)  # type: ignore[arg-type]

    def stopping(self) -> bool:
        """This service or the app is stopping (the worker stops the app, and its producer, first)."""
        return bool(self.should_stop or self.shared.app.should_stop)

    async def _on_app_assigned(self, sender: Any, assigned: Any, **kwargs: Any) -> None:
        self.app_joined.set()

    def _new_consumer(self) -> AIOKafkaConsumer:
        settings = self.shared.settings
        servers = [server.strip() for server in self.shared.bootstrap.split(",") if server.strip()]
        return AIOKafkaConsumer(
            self.shared.topics.observer_counts,
            bootstrap_servers=servers,
            group_id=counts_group(settings),
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            fetch_max_wait_ms=round(settings.fetch_max_wait * 1000),
            max_poll_records=settings.batch_size,
            session_timeout_ms=round(settings.session_timeout * 1000),
            heartbeat_interval_ms=round(settings.heartbeat_interval * 1000),
            rebalance_timeout_ms=round(settings.rebalance_timeout * 1000),
        )

    async def on_start(self) -> None:
        self.consumer = self._new_consumer()
        await self.consumer.start()
        self.running = self.add_future(self._run())

    async def on_stop(self) -> None:
        # The loop first, then the last batch's commit (what is not committed is read again by the
        # partition's next owner), then the consumer, which leaves the group so the others take over at once.
        if self.running is not None and not self.running.done():
            self.running.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self.running
        if self.settling is not None:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await asyncio.wait_for(self.settling, timeout=5.0)
        if self.consumer is not None:
            await self.consumer.stop()

    async def _run(self) -> None:
        consumer, settings = self.consumer, self.shared.settings
        assert consumer is not None
        # Services start before the app. Forward once the app joined its group (its first assignment,
        # ~4 s on tansu): the worker's two hops start together, and the producer is up.
        await self.app_joined.wait()
        await self.shared.app.maybe_start_producer()
        interval = settings.reset_check_interval
        next_check = time.monotonic() + interval
        wait_ms = max(10, min(1000, round(interval * 1000)))
        while not self.stopping():
            try:
                batch = await consumer.getmany(timeout_ms=wait_ms, max_records=settings.batch_size)
            except KafkaError as exc:  # nothing was taken from the batch: the next poll reads it
                log.warning("counts hop: fetch failed: %s", exc)
                await asyncio.sleep(0.5)
                continue
            if batch:
                try:
                    pending = await self.forward(batch)
                except Exception as exc:  # anything but a bad record: a restart reads the batch again
                    if self.stopping():  # the app's producer stopped first: the next owner reads the batch
                        return
                    log.exception("counts hop: a batch failed")
                    give_up(exc)
                # While the broker acknowledges this batch, the next one is decoded; batches settle in order.
                if self.settling is not None:
                    await asyncio.shield(self.settling)  # a stop cancels the loop, not the commit
                self.settling = asyncio.create_task(self._settle(consumer, batch, pending))
            if time.monotonic() >= next_check:
                if self.settling is not None:
                    await asyncio.shield(self.settling)  # committed before the check reads what was read and committed
                    self.settling = None
                next_check = time.monotonic() + interval
                await self._check_broker(consumer)

    async def _settle(
        self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, Sequence[Any]], pending: list[Awaitable[Any]]
    ) -> None:
        """Wait until the broker acknowledged everything a batch published, then commit the batch."""
        try:
            await asyncio.gather(*pending)
        except Exception as exc:  # the broker did not take them within the producer's timeout
            if self.stopping():  # not committed: the partition's next owner reads the batch again
                return
            give_up(exc)
        stamps = [record.timestamp for records in batch.values() for record in records]
        self.shared.metrics.events.labels(STREAM).inc(len(stamps))
        observe_latencies(self.shared.metrics.latency.labels(STREAM), time.time(), stamps)
        await self._commit(consumer, batch)

    async def forward(self, batch: dict[TopicPartition, Sequence[Any]]) -> list[Awaitable[Any]]:
        """Hand one batch's counts to the producer, re-keyed onto their elections' partitions, and the
        counts that cannot be used to the dead-letter topic with their reasons; return the futures of
        the broker's acknowledgements."""
        state, names = self.shared, self.shared.names
        pending: list[Awaitable[Any]] = []
        rows: dict[str, list[StationRow]] = {}
        for tp, records in batch.items():
            if records:
                self.read[TP(tp.topic, tp.partition)] = records[-1].offset + 1
            for record in records:
                value = record.value
                got = count_row(value) if isinstance(value, bytes) else None
                if got is None or got[1].region_code not in names or not state.election_ok(got[0]):
                    try:  # the core codec's verdict, and the reason a bad count is dead-lettered with
                        count = decode(ObserverCount, value)
                        state.check_count(count)
                        got = count.election, StationRow.of(count)
                    except RecordError as exc:
                        pending.append(await self._dead_letter(record, str(exc)))
                        continue
                    except Exception as exc:  # a bug must not lose the batch: this record is set aside, loudly
                        log.exception("failed on %s[%s]@%s", record.topic, record.partition, record.offset)
                        pending.append(await self._dead_letter(record, f"internal error: {type(exc).__name__}: {exc}"))
                        continue
                rows.setdefault(got[0], []).append(got[1])
        station_counts = state.topics.station_counts
        for election, election_rows in rows.items():
            for start in range(0, len(election_rows), ROWS_PER_RECORD):
                chunk = encode_rows(election, election_rows[start : start + ROWS_PER_RECORD])
                pending.append(await state.send_bytes(station_counts, election, chunk))
        return pending

    async def _dead_letter(self, record: Any, reason: str) -> Awaitable[Any]:
        where = (record.topic, record.partition, record.offset, record.key, record.value)
        return await self.shared.dead_letter_at(*where, STREAM, reason)

    async def _commit(self, consumer: AIOKafkaConsumer, batch: dict[TopicPartition, Sequence[Any]]) -> None:
        offsets = {tp: records[-1].offset + 1 for tp, records in batch.items() if records}
        try:
            await consumer.commit(offsets)
        except KafkaError as exc:
            # A rebalance took a partition while the batch ran (its new owner reads the batch again from
            # the last commit), or the broker is away (the next batch's commit covers this one). Either
            # way every count is on station-counts already, and a count read twice changes nothing.
            log.warning("counts hop: commit of %d partitions failed: %s", len(offsets), exc)

    async def _check_broker(self, consumer: AIOKafkaConsumer) -> None:
        """A broker that came back empty (streams/broker_reset.py): read the wiped partitions from 0."""
        assigned = {TP(tp.topic, tp.partition) for tp in consumer.assignment()}
        offsets = {tp: offset for tp, offset in self.read.items() if tp in assigned}
        try:
            wiped = await self.resets.find_wiped_of(assigned, offsets, self.shared.bootstrap)
        except Exception as exc:  # the broker is away: the next check will tell
            log.debug("counts hop: broker check failed: %s", exc)
            return
        if wiped:
            self.shared.metrics.broker_resets.inc()
            log_wiped(wiped)
            for tp in wiped:
                self.read.pop(tp, None)
                consumer.seek(TopicPartition(tp.topic, tp.partition), 0)


def observe_latencies(histogram: Any, now: float, stamps: Sequence[int]) -> None:
    """`histogram.observe(now - stamp / 1000)` for each record's timestamp (ms; 0: none), with one
    increment per bucket rather than a locked increment per bucket per record (a twentieth of the
    hop's time). Uses the histogram's own bounds and values; observes one by one if they moved."""
    latencies = [max(0.0, now - stamp / 1000) for stamp in stamps if stamp]
    if not latencies:
        return
    bounds, buckets, total = (getattr(histogram, name, None) for name in ("_upper_bounds", "_buckets", "_sum"))
    if bounds is None or buckets is None or total is None:  # pragma: no cover - a prometheus_client that moved them
        for latency in latencies:
            histogram.observe(latency)
        return
    per_bucket = Counter(bisect_left(bounds, latency) for latency in latencies)  # the first bound >= latency
    for index, n in per_bucket.items():
        buckets[index].inc(n)
    total.inc(sum(latencies))
