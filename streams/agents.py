"""Thin agents: decode a batch, call the pure tracker/detectors, publish flags and updates, set metrics.

Batches come from `stream.take_events` (one Python call per batch, not per event). Everything a batch
publishes is awaited until the broker acknowledged it; only then does Faust ack the input events, so a
crash replays the batch (at-least-once) and the tracker's per-region `as_of` check makes that harmless.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass
from typing import Any

import faust
import numpy as np
from faust.types import EventT

from detectors.history import load_curves
from detectors.station_ledger import Count, StationChecker, StationLedger
from detectors.tracker import ProcessResult, RegionUpdate, Release, TurnoutTracker
from streams.annotations import Annotator
from streams.metrics import PipelineMetrics
from streams.ownership import PartitionOwnership
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames, encode_record

log = logging.getLogger(__name__)


@dataclass
class Pipeline:
    """Handles the agents and the worker share: topics, metrics, per-election trackers."""

    app: faust.App
    topics: TopicNames
    settings: Settings
    metrics: PipelineMetrics
    names: dict[str, str]
    bootstrap: str = ""  # for rebuilding an election's tracker from its partition (streams/ownership.py)
    annotator: Annotator | None = None  # Grafana annotations of releases and critical flags, when configured

    def __post_init__(self) -> None:
        self.trackers: dict[str, TurnoutTracker] = {}
        self.ownership = PartitionOwnership(self)

    async def send(self, topic: str, key: str, value: dict[str, Any]) -> Awaitable[Any]:
        """Hand a record to the producer; the returned future resolves once the broker has it.

        Goes straight to Faust's producer: `Topic.send` costs several times more per record, and an
        agent publishing ~20 per-region records per release spends most of its time there.
        """
        return await self.app.producer.send(topic, key.encode(), encode_record(value), None, None, None)

    def tracker(self, election: str) -> TurnoutTracker:
        if election not in self.trackers:
            curves = load_curves(self.settings.history_dir, exclude=election)
            self.trackers[election] = TurnoutTracker(election, self.names, curves=curves)
        return self.trackers[election]

    def process_record(self, topic: str, obj: Any) -> tuple[str, ProcessResult, Release | None]:
        """A decoded record of the releases or observer-aggregates topic through its election's tracker."""
        if topic == self.topics.releases:
            release = Release.from_dict(obj)
            return release.election, self.tracker(release.election).process(release), release
        deltas = {(obj["election"], obj["region_code"], float(obj["bucket"])): np.array(obj["stats"])}
        return obj["election"], self.tracker(obj["election"]).add_observed(deltas), None


def _decode(events: Sequence[EventT], stream: str, metrics: PipelineMetrics) -> list[tuple[EventT, Any]]:
    decoded = []
    for event in events:
        try:
            decoded.append((event, json.loads(event.value)))
        except (TypeError, ValueError) as exc:
            metrics.malformed.labels(stream).inc()
            log.warning(
                "skipping malformed %s record at %s[%s]@%s: %s",
                stream,
                event.message.topic,
                event.message.partition,
                event.message.offset,
                exc,
            )
    return decoded


def _observe_latency(metrics: PipelineMetrics, stream: str, events: Sequence[EventT]) -> None:
    now = time.time()
    histogram = metrics.latency.labels(stream)
    for event in events:
        if event.message.timestamp:
            histogram.observe(max(0.0, now - event.message.timestamp))
    metrics.events.labels(stream).inc(len(events))


def register_agents(pipeline: Pipeline) -> None:
    app, settings, metrics, topics = pipeline.app, pipeline.settings, pipeline.metrics, pipeline.topics
    # Releases and observer aggregates are both keyed by election: one agent, same partitions.
    election_topics = app.topic(
        topics.releases, topics.observer_aggregates, key_serializer="raw", value_serializer="raw"
    )
    counts_topic = app.topic(topics.observer_counts, key_serializer="raw", value_serializer="raw")
    ledger, checker = StationLedger(), StationChecker(pipeline.names)

    ownership = pipeline.ownership

    async def publish(result: ProcessResult, pending: list[Awaitable[Any]]) -> None:
        for flag in result.flags:
            pending.append(await pipeline.send(topics.flags, flag.election, flag.to_dict()))
        for update in result.updates:
            pending.append(await pipeline.send(topics.turnout, update.region_code, update.to_dict()))

    @app.on_partitions_assigned.connect
    async def on_assigned(sender: Any, assigned: Any, **kwargs: Any) -> None:
        await ownership.on_assigned(assigned)

    @app.agent(election_topics, name="detect-releases")
    async def detect_releases(stream: faust.StreamT[bytes]) -> None:
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within):
            await ownership.wait_ready()  # a rebalance gave us partitions: their trackers are being rebuilt
            pending: list[Awaitable[Any]] = []
            updates: list[RegionUpdate] = []
            releases = [e for e in events if e.message.topic == topics.releases]
            for event, obj in _decode(events, "releases", metrics):
                try:
                    election, result, release = pipeline.process_record(event.message.topic, obj)
                except (KeyError, TypeError, ValueError) as exc:
                    metrics.malformed.labels("releases").inc()
                    log.warning("skipping a record of %s that breaks the contract: %s", event.message.topic, exc)
                    continue
                ownership.note(election, event.message.partition)
                await publish(result, pending)
                if not ownership.owns(election):  # revoked while this batch ran: the new owner has it
                    continue
                if release is not None:
                    metrics.record_polls(release.election, release.polls_open, release.polls_close)
                    if pipeline.annotator is not None and result.updates:  # not for a redelivered release
                        pipeline.annotator.release(release, result.flags)
                metrics.record_flags(result.flags)
                metrics.record_estimates(result.estimates)
                updates.extend(result.updates)
            metrics.record_updates(ownership.owned_only(updates))
            await asyncio.gather(*pending)  # broker-acknowledged before Faust acks the input batch
            _observe_latency(metrics, "releases", releases)

    @app.agent(counts_topic, name="observer-counts")
    async def observer_counts(stream: faust.StreamT[bytes]) -> None:
        """Keep each station's latest counts; send region statistics on, flag protocols above tallies."""
        async for events in stream.take_events(settings.batch_size, within=settings.batch_within):
            counts = []
            for _event, obj in _decode(events, "observer_counts", metrics):
                try:
                    counts.append(Count.from_dict(obj))
                except (KeyError, TypeError, ValueError) as exc:
                    metrics.malformed.labels("observer_counts").inc()
                    log.warning("skipping an observer count that breaks the contract: %s", exc)
            update = ledger.add(counts)
            metrics.record_counts({(c.election, c.region) for c in counts})
            pending: list[Awaitable[Any]] = []
            for (election, region, bucket), delta in update.deltas.items():
                value = {"election": election, "region_code": region, "bucket": bucket, "stats": delta.tolist()}
                pending.append(await pipeline.send(topics.observer_aggregates, election, value))
            station_flags = checker.check(update.comparisons, _zone(settings))
            await publish(ProcessResult(flags=station_flags), pending)
            metrics.record_flags(station_flags)
            await asyncio.gather(*pending)
            _observe_latency(metrics, "observer_counts", events)


def _zone(settings: Settings) -> Any:
    """Station flags' times are shown in the deployment's zone (Kazakhstan: Asia/Almaty)."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.timezone)
