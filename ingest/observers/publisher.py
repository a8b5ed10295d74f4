"""Make each accepted record durable: acknowledged by the broker (acks=all), or fsync'd to the spool.

Modes: *direct* while the broker answers; *spooling* from the first record it does not take in time
until the spool is empty again. While spooling, new records go behind the spooled ones (not to the
broker directly), so the topic receives them in the order they were accepted.

A send that failed or timed out after it was handed to the producer is ambiguous: the broker may
have written it without answering (a paused broker answers nothing, then processes what it had
buffered). Such a record is spooled as *uncertain*, with its delivery future if still pending, and
with its *floor*: the last offset per partition the broker had acknowledged before it was sent. Before
re-sending uncertain records the drainer waits for those futures, then reads the topic after the
lowest floor to its end, and skips the report_ids it finds there, so every accepted report reaches
the topic once. Uncertain records also come from a crash: the intake's unresolved write-ahead intents
(`adopt`) and the spool's records below its sending mark. (An idempotent producer would settle this
in the broker, but tansu refuses InitProducerId.)

The end of a partition is the high watermark of a fetch response (`consumer.highwater`), never
`end_offsets()`: tansu answers ListOffsets(LATEST) too low after multi-record batches.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from aiokafka.errors import KafkaError

from ingest.observers.errors import NotDurableError, SpoolError
from ingest.observers.spool import Floor, Spool, SpoolEntry
from turnout_watch.core.errors import RecordError, TurnoutWatchError
from turnout_watch.core.records import ObserverCount, decode, encode
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import ensure_topics

log = logging.getLogger(__name__)

Stored = Literal["broker", "spool"]
DRAIN_CHUNK = 500


class DurablePublisher:
    def __init__(
        self,
        bootstrap: str,
        settings: Settings,
        topic: str,
        spool: Spool,
        on_ack: Callable[[float], None] | None = None,
    ) -> None:
        self.bootstrap, self.settings, self.topic, self.spool = bootstrap, settings, topic, spool
        self.timeout = settings.observers_publish_timeout
        self.producer: AIOKafkaProducer | None = None
        self.spooling = len(spool) > 0
        self.on_ack = on_ack  # seconds from send to broker ack (metrics)
        self._limbo: dict[int, asyncio.Future[Any]] = {}  # spool seq -> a send that may still land
        self._uncertain: dict[int, Floor] = {e.seq: e.floor for e in spool.pending() if e.floor is not None}
        self._acked: dict[int, int] = {}  # partition -> last offset the broker acknowledged to us
        self._delivered: set[int] = set()  # spool seqs acknowledged out of order
        self._wake = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
        self._stopping = False  # the drainer's loop ends on it even if a cancel is lost (below)
        self._topics_ready = False

    @property
    def broker_up(self) -> bool:
        return self.producer is not None and not self.spooling

    async def start(self) -> None:
        await self._connect()
        self._drainer = asyncio.create_task(self._drain_forever(), name="spool-drainer")

    async def _connect(self) -> bool:
        if self.producer is not None:
            return True
        producer = AIOKafkaProducer(
            bootstrap_servers=self.bootstrap,
            acks="all",
            request_timeout_ms=int(self.timeout * 1000),
            linger_ms=2,
            max_batch_size=256 * 1024,
        )
        try:
            await asyncio.wait_for(producer.start(), self.timeout + 1)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("broker %s unreachable (%s); accepted reports go to the spool", self.bootstrap, exc)
            with contextlib.suppress(Exception):
                await producer.stop()
            self.spooling = True
            return False
        except asyncio.CancelledError:  # stopped while connecting: close the half-started producer too
            with contextlib.suppress(Exception):
                await producer.stop()
            raise
        self.producer = producer
        return True

    async def stop(self) -> None:
        if self._drainer:
            self._stopping = True
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        if self.producer:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), self.timeout + 1)

    def acked_offsets(self) -> Floor:
        """The last offset per partition the broker acknowledged to us: a record sent after this lands
        after it (the floor a write-ahead intent keeps)."""
        return dict(self._acked)

    async def adopt(self, records: list[tuple[str, dict[str, Any], Floor]]) -> None:
        """Take records whose send may have landed (a crash's unresolved intents) into the spool as
        uncertain, unless the spool holds them already; the drainer checks the topic before sending."""
        spooled = {e.value.get("report_id") for e in self.spool.pending()}
        new = [(key, value, floor) for key, value, floor in records if value.get("report_id") not in spooled]
        if new:
            try:
                entries = await self.spool.append([(k, v) for k, v, _ in new], [f for _, _, f in new])
            except SpoolError as exc:
                raise NotDurableError(f"cannot spool the reports of unresolved intents: {exc}") from exc
            for entry in entries:
                assert entry.floor is not None
                self._uncertain[entry.seq] = entry.floor
        if len(self.spool):
            self.spooling = True
            self._wake.set()

    async def publish(
        self, records: list[tuple[str, ObserverCount]], encoded: list[bytes] | None = None
    ) -> list[Stored]:
        """Return only once every record is durable, saying where; NotDurableError if one is not.
        `encoded`: the records' bytes when the caller has them already (the intake's write-ahead)."""
        if not records:
            return []
        if self.spooling or self.producer is None:
            await self._to_spool(records)
            return ["spool"] * len(records)
        floor = self.acked_offsets()
        started = time.monotonic()
        futures: list[asyncio.Future[Any] | None] = []
        for index, (key, value) in enumerate(records):
            try:
                async with asyncio.timeout(self.timeout):  # no task per send, as wait_for would make
                    fut = await self.producer.send(
                        self.topic, encode(value) if encoded is None else encoded[index], key=key.encode()
                    )
                futures.append(fut)
            except (KafkaError, TimeoutError) as exc:  # never enqueued: nothing can land later
                log.warning("broker did not take a record (%s); spooling", exc or type(exc).__name__)
                futures.append(None)
        live = [f for f in futures if f is not None]
        if live:
            await asyncio.wait(live, timeout=self.timeout)
        where: list[Stored] = []
        to_spool: list[tuple[str, ObserverCount]] = []
        limbo: list[asyncio.Future[Any] | None] = []
        for (key, value), fut in zip(records, futures, strict=True):
            if fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None:
                where.append("broker")
                self._note_ack(fut.result())
                if self.on_ack:
                    self.on_ack(time.monotonic() - started)
                continue
            where.append("spool")
            to_spool.append((key, value))
            limbo.append(fut)
        if to_spool:
            self.spooling = True
            entries = await self._to_spool(to_spool, [None if fut is None else floor for fut in limbo])
            for entry, fut in zip(entries, limbo, strict=True):
                if fut is not None:  # handed to the producer: it may have landed
                    self._uncertain[entry.seq] = floor
                    if not fut.done():
                        self._limbo[entry.seq] = fut
                    elif not fut.cancelled():
                        fut.exception()  # retrieved, so asyncio does not warn
        return where

    def _note_ack(self, metadata: Any) -> None:
        partition, offset = int(metadata.partition), int(metadata.offset)
        if offset > self._acked.get(partition, -1):
            self._acked[partition] = offset

    async def _landed(self, report_ids: set[str], floors: list[Floor]) -> set[str]:
        """Which of these report_ids are on the topic after the lowest of their floors (to its end)."""
        consumer = AIOKafkaConsumer(
            bootstrap_servers=self.bootstrap, enable_auto_commit=False, group_id=None, auto_offset_reset="earliest"
        )
        await asyncio.wait_for(consumer.start(), self.timeout + 1)
        found: set[str] = set()
        try:
            partitions = [
                TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())
            ]
            if not partitions:
                await consumer.force_metadata_update()
                partitions = [
                    TopicPartition(self.topic, p) for p in sorted(consumer.partitions_for_topic(self.topic) or ())
                ]
            consumer.assign(partitions)
            for tp in partitions:
                consumer.seek(tp, min(floor.get(tp.partition, -1) for floor in floors) + 1 if floors else 0)
            deadline = asyncio.get_running_loop().time() + 10 * self.timeout
            while True:
                if asyncio.get_running_loop().time() > deadline:
                    raise SpoolError("could not read the topic back to check uncertain sends; will retry")
                batch = await consumer.getmany(*partitions, timeout_ms=200)
                for messages in batch.values():
                    for message in messages:
                        with contextlib.suppress(RecordError, ValueError, TypeError):
                            rid = decode(ObserverCount, message.value).report_id
                            if rid in report_ids:
                                found.add(rid)
                behind = False
                for tp in partitions:
                    high = consumer.highwater(tp)
                    position = await consumer.position(tp)
                    if high is None or position < high:
                        behind = True
                    elif position > high:  # a log that started again (a restarted tansu): read all of it
                        consumer.seek(tp, 0)
                        behind = True
                if not behind:
                    break
        finally:
            await consumer.stop()
        log.warning("%d of %d uncertain sends had landed; the rest are sent now", len(found), len(report_ids))
        return found

    async def _to_spool(
        self, records: list[tuple[str, ObserverCount]], floors: list[Floor | None] | None = None
    ) -> list[SpoolEntry]:
        try:
            entries = await self.spool.append([(key, record.to_dict()) for key, record in records], floors)
        except SpoolError as exc:
            raise NotDurableError(f"the broker and the spool both failed: {exc}") from exc
        self.spooling = True
        self._wake.set()
        return entries

    async def _drain_forever(self) -> None:
        # Python 3.11's wait_for loses a cancel that arrives as its awaitable completes (a record just
        # spooled sets the event; a connect attempt fails): the loop also checks `_stopping`, so stop()
        # never waits forever, and the wake-up wait uses asyncio.timeout, which loses none.
        while not self._stopping:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(0.5):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self.drain_once()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, TimeoutError, TurnoutWatchError) as exc:
                log.warning("spool drain failed, will retry: %s", exc or type(exc).__name__)
                await asyncio.sleep(0.5)
            except Exception:  # the drainer must outlive any surprise; the spool keeps the records
                log.exception("spool drain failed unexpectedly, will retry")
                await asyncio.sleep(1.0)

    async def drain_once(self) -> None:
        """Publish the spool's head in order, as far as the broker takes it."""
        if not self.spooling:
            return
        if len(self.spool) == 0 and not self._limbo:
            self.spooling = False
            return
        if not await self._connect():
            return
        if not self._topics_ready:
            # The broker may have come back empty (tansu keeps topics in memory): recreate ours first.
            await ensure_topics(self.bootstrap, self.settings, timeout=self.timeout)
            self._topics_ready = True
        assert self.producer is not None
        while len(self.spool) > 0:
            entries = self.spool.pending(DRAIN_CHUNK)
            sends: dict[int, asyncio.Future[Any]] = {}
            landed: set[str] = set()
            uncertain = [e for e in entries if e.seq in self._uncertain and e.seq not in self._delivered]
            if uncertain:
                pending = [self._limbo[e.seq] for e in uncertain if e.seq in self._limbo]
                if pending:
                    await asyncio.wait(pending, timeout=self.timeout)
                    if not all(f.done() for f in pending):
                        return  # a first send may still land: wait, keeping the order behind it
                for e in uncertain:
                    fut = self._limbo.pop(e.seq, None)
                    if fut is not None and not fut.cancelled() and fut.exception() is None:
                        self._note_ack(fut.result())
                        self._delivered.add(e.seq)
                landed = await self._landed(
                    {str(e.value.get("report_id")) for e in uncertain}, [self._uncertain[e.seq] for e in uncertain]
                )
            to_send = [e for e in entries if e.seq not in self._delivered]
            floor = self.acked_offsets()
            if to_send:  # durable before the first byte leaves: after a crash these are uncertain
                await self.spool.will_send(to_send[-1].seq + 1, floor)
            for entry in to_send:
                if entry.seq in self._uncertain and entry.value.get("report_id") in landed:
                    self._delivered.add(entry.seq)
                    continue
                sends[entry.seq] = await asyncio.wait_for(
                    self.producer.send(self.topic, encode(entry.value), key=entry.key.encode()), self.timeout
                )
            if sends:
                await asyncio.wait(list(sends.values()), timeout=self.timeout)
            for seq, fut in sends.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    self._note_ack(fut.result())
                    self._delivered.add(seq)
                else:
                    self._uncertain.setdefault(seq, floor)  # may land later: never send it twice unseen
                    if not fut.done():
                        self._limbo[seq] = fut
                    elif not fut.cancelled():
                        fut.exception()
            upto = entries[0].seq
            while upto in self._delivered:
                upto += 1
            if upto == entries[0].seq:
                self._topics_ready = False  # nothing went through: check the topics again next time
                return
            await self.spool.mark_drained(upto)  # a failure keeps `_delivered`: the retry sends none again
            for seq in range(entries[0].seq, upto):
                self._delivered.discard(seq)
                self._uncertain.pop(seq, None)
            if len(self.spool) == 0:  # the files were reset: seqs start again at 0
                self._delivered.clear()
                self._uncertain.clear()
            log.info("drained %d spooled records", upto - entries[0].seq)
        if not self._limbo:
            self.spooling = False
