"""The Faust app, and nothing else: built from Settings so no broker address is hard-coded.

Consumer timings are shortened (session 6 s, heartbeat 0.5 s, rebalance 6 s): with Faust's defaults a
worker on tansu took ~30 s to receive its first message, with these ~4 s (shared/NOTES.md).
Delivery is at-least-once (tansu shows aborted transactions, so no `exactly_once`); the agents'
writes are idempotent instead.
"""

from __future__ import annotations

import faust

from turnout_watch.core.settings import Settings


def create_app(settings: Settings, bootstrap: str) -> faust.App:
    (settings.data_dir / "faust").mkdir(parents=True, exist_ok=True)
    brokers = [f"kafka://{server.strip()}" for server in bootstrap.split(",") if server.strip()]
    return faust.App(
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
    )
