"""Make each accepted record durable: acknowledged by the broker (acks=all), or fsync'd to the spool.

Modes: *direct* while the broker answers; *spooling* from the first record it does not take in time
until the spool is empty again. While spooling, new records go behind the spooled ones (not to the
broker directly), so the topic receives them in the order they were accepted.

A record whose send timed out may still be delivered later by the producer (aiokafka keeps retrying
a batch for a leader it cannot reach). Such a record is spooled *and* its delivery future kept: the
drainer waits for that future and skips the record if it was delivered after all, so it reaches the
topic once.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Callable
from typing import Any, Literal

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from ingest.observers.errors import NotDurableError, SpoolError
from ingest.observers.spool import Spool, SpoolEntry
from streams.topics import ensure_topics
from turnout_watch.errors import TurnoutWatchError
from turnout_watch.settings import Settings

log = logging.getLogger(__name__)

Stored = Literal["broker", "spool"]
DRAIN_CHUNK = 500


def encode(value: dict[str, Any]) -> bytes:
    return json.dumps(value, ensure_ascii=False).encode()


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
        self._delivered: set[int] = set()  # spool seqs acknowledged out of order
        self._wake = asyncio.Event()
        self._drainer: asyncio.Task[None] | None = None
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
        self.producer = producer
        return True

    async def stop(self) -> None:
        if self._drainer:
            self._drainer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._drainer
        if self.producer:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(self.producer.stop(), self.timeout + 1)

    async def publish(self, records: list[tuple[str, dict[str, Any]]]) -> list[Stored]:
        """Return only once every record is durable, saying where; NotDurableError if one is not."""
        if not records:
            return []
        if self.spooling or self.producer is None:
            await self._to_spool(records)
            return ["spool"] * len(records)
        started = time.monotonic()
        futures: list[asyncio.Future[Any] | None] = []
        for key, value in records:
            try:
                fut = await asyncio.wait_for(
                    self.producer.send(self.topic, encode(value), key=key.encode()), self.timeout
                )
                futures.append(fut)
            except (KafkaError, TimeoutError) as exc:  # never enqueued: nothing can land later
                log.warning("broker did not take a record (%s); spooling", exc or type(exc).__name__)
                futures.append(None)
        live = [f for f in futures if f is not None]
        if live:
            await asyncio.wait(live, timeout=self.timeout)
        where: list[Stored] = []
        to_spool: list[tuple[str, dict[str, Any]]] = []
        limbo: list[asyncio.Future[Any] | None] = []
        for (key, value), fut in zip(records, futures, strict=True):
            if fut is not None and fut.done() and not fut.cancelled() and fut.exception() is None:
                where.append("broker")
                if self.on_ack:
                    self.on_ack(time.monotonic() - started)
                continue
            if fut is not None and fut.done():
                fut.exception()  # retrieved: failed for good, it will not land
                fut = None
            where.append("spool")
            to_spool.append((key, value))
            limbo.append(fut)
        if to_spool:
            self.spooling = True
            entries = await self._to_spool(to_spool)
            for entry, fut in zip(entries, limbo, strict=True):
                if fut is not None:
                    self._limbo[entry.seq] = fut
        return where

    async def _to_spool(self, records: list[tuple[str, dict[str, Any]]]) -> list[SpoolEntry]:
        try:
            entries = await self.spool.append(records)
        except SpoolError as exc:
            raise NotDurableError(f"the broker and the spool both failed: {exc}") from exc
        self.spooling = True
        self._wake.set()
        return entries

    async def _drain_forever(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), 0.5)
            self._wake.clear()
            try:
                await self.drain_once()
            except asyncio.CancelledError:
                raise
            except (KafkaError, OSError, TurnoutWatchError) as exc:
                log.warning("spool drain failed, will retry: %s", exc)
                await asyncio.sleep(0.5)

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
            for entry in entries:
                if entry.seq in self._delivered:
                    continue
                earlier = self._limbo.get(entry.seq)
                if earlier is not None:
                    await asyncio.wait([earlier], timeout=self.timeout)
                    if not earlier.done():
                        break  # its first send may still land: wait, and keep the order behind it
                    del self._limbo[entry.seq]
                    if not earlier.cancelled() and earlier.exception() is None:
                        self._delivered.add(entry.seq)
                        continue
                sends[entry.seq] = await asyncio.wait_for(
                    self.producer.send(self.topic, encode(entry.value), key=entry.key.encode()), self.timeout
                )
            if sends:
                await asyncio.wait(list(sends.values()), timeout=self.timeout)
            for seq, fut in sends.items():
                if fut.done() and not fut.cancelled() and fut.exception() is None:
                    self._delivered.add(seq)
                elif not fut.done():
                    self._limbo[seq] = fut  # may land later: never send it twice
            upto = entries[0].seq
            while upto in self._delivered:
                self._delivered.discard(upto)
                upto += 1
            if upto == entries[0].seq:
                self._topics_ready = False  # nothing went through: check the topics again next time
                return
            await self.spool.mark_drained(upto)
            log.info("drained %d spooled records", upto - entries[0].seq)
        if not self._limbo:
            self.spooling = False
