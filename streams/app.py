"""The Faust app, and nothing else: built from Settings so no broker address is hard-coded.

Consumer timings are shortened (session 6 s, heartbeat 0.5 s, rebalance 6 s): with Faust's defaults a
worker on tansu took ~30 s to receive its first message, with these ~4 s (shared/NOTES.md).
Delivery is at-least-once (tansu shows aborted transactions, so no `exactly_once`); the agents'
writes are idempotent instead.

The consumer's fetch wait is ours too (`Settings.fetch_max_wait`). Faust builds its aiokafka consumer
with `fetch_max_wait_ms=1500` hard-coded and has no setting for it (faust-streaming 0.15,
`AIOKafkaConsumerThread._create_worker_consumer`). A real Kafka broker answers a waiting fetch as soon
as `fetch_min_bytes` (1) arrive, so there the wait only bounds an idle poll; tansu 0.6 holds every
fetch of a quiet partition for the whole wait, so a record published during it waits up to 1.5 s
before the worker sees it. `TurnoutApp` plugs in a transport whose consumer thread sets the wait on
the consumer Faust built, before it starts (the fetcher reads it at start), and changes nothing else.
"""

from __future__ import annotations

import aiokafka
import faust
from faust.transport.drivers import aiokafka as faust_aiokafka
from faust.types import TransportT

from turnout_watch.core.settings import Settings


class BoundedWaitConsumerThread(faust_aiokafka.AIOKafkaConsumerThread):
    """Faust's consumer thread, with the worker consumer's fetch wait taken from the app."""

    def _create_worker_consumer(self, transport: faust_aiokafka.Transport) -> aiokafka.AIOKafkaConsumer:
        consumer = super()._create_worker_consumer(transport)
        wait_ms = getattr(self.app, "fetch_max_wait_ms", None)
        if wait_ms is not None:
            # aiokafka keeps the constructor's argument here and hands it to its Fetcher in start().
            if not hasattr(consumer, "_fetch_max_wait_ms"):  # pragma: no cover - an aiokafka that moved it
                raise RuntimeError("this aiokafka keeps fetch_max_wait_ms elsewhere; see streams/app.py")
            consumer._fetch_max_wait_ms = int(wait_ms)
        return consumer


class BoundedWaitConsumer(faust_aiokafka.Consumer):
    def _new_consumer_thread(self) -> faust_aiokafka.AIOKafkaConsumerThread:
        return BoundedWaitConsumerThread(self, loop=self.loop, beacon=self.beacon)


class BoundedWaitTransport(faust_aiokafka.Transport):
    Consumer = BoundedWaitConsumer


class TurnoutApp(faust.App):
    """faust.App whose consumer waits at most `fetch_max_wait_ms` for a fetch (see the module's note)."""

    fetch_max_wait_ms: int | None = None

    def _new_transport(self) -> TransportT:
        return BoundedWaitTransport(self.conf.broker_consumer, self)


def create_app(settings: Settings, bootstrap: str) -> faust.App:
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    brokers = [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]
    app = TurnoutApp(
        settings.app_id,
        broker=brokers,
        store="memory://",
        datadir=str(settings.data_dir / "faust"),
        topic_partitions=settings.partitions,
        topic_allow_declare=False,  # ensure_topics() creates every topic with the right partitions
        topic_disable_leader=True,
        web_enabled=False,  # /metrics is ours (streams.metrics), not Faust's web view
        consumer_auto_offset_reset="earliest",
        broker_session_timeout=settings.session_timeout,
        broker_heartbeat_interval=settings.heartbeat_interval,
        broker_rebalance_timeout=settings.rebalance_timeout,
        broker_commit_interval=0.5,
        stream_wait_empty=False,
        producer_acks=-1,  # acks=all: a flag is durable before the input is acknowledged
        # the turnout records of a whole batch go as a few Kafka batches (streams/outbox.py); aiokafka
        # sends one batch per partition at a time, so 16 KiB batches would mean a round trip per ~60
        producer_max_batch_size=256 * 1024,
    )
    app.fetch_max_wait_ms = round(settings.fetch_max_wait * 1000)
    return app
