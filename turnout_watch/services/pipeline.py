"""Run the pipeline on one machine: broker (embedded or external), topics, Faust worker processes.

Used by `turnout-watch replay` and by the integration tests. Workers are separate processes, exactly
as in production (docker-compose runs several), so a replay exercises the real consumer group.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from pydantic import SecretStr

from turnout_watch.core.errors import BrokerError, TurnoutWatchError
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames, consumer_groups, ensure_topics, read_ends
from turnout_watch.services.broker import EmbeddedBroker, _die_with_parent, free_port, launch_broker, terminate

log = logging.getLogger(__name__)


@dataclass
class WorkerProcess:
    process: subprocess.Popen[bytes]
    metrics_url: str
    log_path: Path

    def stop(self, timeout: float = 10.0) -> None:
        terminate(self.process, timeout)

    def log_tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        return ""


@dataclass
class LocalPipeline:
    """Broker + topics + workers. `await start()`, then `stop()` (also via `async with`)."""

    settings: Settings
    workers: int = 1
    broker: EmbeddedBroker | None = None
    bootstrap: str = ""
    topics: TopicNames | None = None
    worker_processes: list[WorkerProcess] = field(default_factory=list)

    async def __aenter__(self) -> LocalPipeline:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        self.stop()

    async def start(self) -> None:
        self.settings.data_dir.mkdir(parents=True, exist_ok=True)
        if self.settings.broker:
            self.bootstrap = self.settings.broker
        else:
            self.broker = await asyncio.to_thread(launch_broker, log_path=self.settings.data_dir / "broker.log")
            self.bootstrap = self.broker.bootstrap
        self.topics = await ensure_topics(self.bootstrap, self.settings)
        for index in range(self.workers):
            self.worker_processes.append(self.spawn_worker(index))

    def spawn_worker(self, index: int) -> WorkerProcess:
        port = self.settings.metrics_port if (index == 0 and self.settings.metrics_port) else free_port()
        log_path = self.settings.data_dir / f"worker-{index}.log"
        env = {
            **os.environ,
            "TURNOUT_WATCH_METRICS_PORT": str(port),
            "TURNOUT_WATCH_BROKER": self.bootstrap,
            "TURNOUT_WATCH_DATA_DIR": str(self.settings.data_dir / f"worker-{index}"),
        }
        for name, value in self.settings.model_dump(exclude={"broker", "metrics_port", "data_dir"}).items():
            if value is None and Settings.model_fields[name].default is None:
                continue  # unset stays unset (the string "None" would be read back as a value)
            if isinstance(value, SecretStr):
                value = value.get_secret_value()
            env[f"TURNOUT_WATCH_{name.upper()}"] = str(value)
        env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
        with open(log_path, "wb") as out:
            process = subprocess.Popen(
                [sys.executable, "-m", "turnout_watch.cli", "worker"],
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
                preexec_fn=_die_with_parent,
            )
        url = f"http://{self.settings.metrics_host}:{port}/metrics"
        return WorkerProcess(process, url, log_path)

    def stop(self) -> None:
        for worker in self.worker_processes:
            worker.stop()
        if self.broker:
            self.broker.stop()

    def kill_worker(self, index: int) -> WorkerProcess:
        """SIGKILL one worker, as a crash would (no leave-group, no last commit), and stop watching it:
        the group notices after `session_timeout` and gives its partitions to the others."""
        worker = self.worker_processes.pop(index)
        worker.process.kill()
        worker.process.wait()
        return worker

    def check_workers(self) -> None:
        for index, worker in enumerate(self.worker_processes):
            if worker.process.poll() is not None:
                raise TurnoutWatchError(
                    f"worker {index} exited with status {worker.process.returncode}; last lines of "
                    f"{worker.log_path}:\n{worker.log_tail()}"
                )

    async def consumer_lag(self, topics: Iterable[str]) -> int:
        """Messages on `topics` the workers have not yet committed (0 = fully processed), each topic's
        offsets as committed by the consumer group that reads it (`core.topics.consumer_groups`)."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, enable_auto_commit=False)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        await consumer.start()
        await admin.start()
        try:
            partitions = [TopicPartition(t, p) for t in topics for p in (consumer.partitions_for_topic(t) or ())]
            if not partitions:
                await consumer.topics()
                partitions = [TopicPartition(t, p) for t in topics for p in consumer.partitions_for_topic(t) or ()]
            ends = await read_ends(self.bootstrap, partitions)  # not end_offsets(): tansu answers it low
            groups = consumer_groups(self.settings)
            by_group: dict[str, list[TopicPartition]] = {}
            for tp in partitions:
                by_group.setdefault(groups.get(tp.topic, self.settings.app_id), []).append(tp)
            committed: dict[TopicPartition, Any] = {}
            for group, tps in by_group.items():  # each topic as committed by the group that reads it
                committed.update(await admin.list_consumer_group_offsets(group, partitions=tps))
            lag = 0
            for tp, end in ends.items():
                meta = committed.get(tp)
                done = meta.offset if meta is not None and meta.offset >= 0 else 0
                # committed past the end: the broker lost its data (a wipe), which is not "drained"
                lag += abs(end - done)
            return lag
        finally:
            await consumer.stop()
            await admin.close()

    async def wait_drained(self, topics: Iterable[str], timeout: float = 60.0, poll: float = 0.2) -> float:
        """Wait until the workers committed everything on `topics`; return the seconds waited."""
        started = time.monotonic()
        topics = list(topics)
        lag = -1
        while time.monotonic() - started < timeout:
            self.check_workers()
            lag = await self.consumer_lag(topics)
            if lag == 0:
                return time.monotonic() - started
            await asyncio.sleep(poll)
        hint = "" if self.worker_processes else f"; is a worker with app_id {self.settings.app_id!r} running?"
        raise BrokerError(f"the workers did not catch up within {timeout:.0f} s ({lag} messages behind){hint}")

    async def wait_pipeline_drained(self, timeout: float = 60.0, poll: float = 0.2) -> float:
        """Wait until every stage is committed: inputs first, then what the agents derived from them.

        Observer counts are re-keyed by election onto a second topic that the release agent reads. The
        counts hop (its own consumer group) commits its input only after those records are acknowledged,
        so once the first stage is drained every one is on its topic, and the second wait sees its true end.
        """
        assert self.topics is not None, "start the pipeline first"
        inputs = [self.topics.releases, self.topics.observer_counts]
        first = await self.wait_drained(inputs, timeout=timeout, poll=poll)
        return first + await self.wait_drained(
            [*inputs, self.topics.station_counts], timeout=max(timeout - first, poll), poll=poll
        )
