"""Thin agents: decode a batch, call the pure tracker/detectors, publish flags and updates, set metrics.

Batches come from `stream.take_events` (one Python call per batch, not per event). Everything a batch
publishes is awaited until the broker acknowledged it; only then does Faust ack the input events, so a
crash replays the batch (at-least-once) and the tracker's per-region `as_of` check makes that harmless.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, cast

import faust
import numpy as np
from faust.types import TP, EventT

from detectors.history import load_curves
from detectors.station_ledger import StationChecker, StationLedger
from detectors.tracker import ProcessResult, RegionUpdate, Release, TurnoutTracker
from streams.annotations import Annotator
from streams.metrics import ElectionFigures, PipelineMetrics
from streams.ownership import PartitionOwnership
from turnout_watch.core.errors import RecordError
from turnout_watch.core.records import D, Encodable, ObserverAggregate, ObserverCount, decode, encode
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames

log = logging.getLogger(__name__)


@dataclass
class OwnedElection:
    """An election the worker holds: its tracker, and the figures its series show (streams/metrics.py)."""

    tracker: TurnoutTracker
    figures: ElectionFigures


@dataclass
class AgentState:
    """What the agents and the worker share: topics, metrics, and the elections the worker holds.

    Each election's tracker and figures live together in `elections`, and `/metrics` reads the figures
    from there when scraped: when a rebalance moves an election away, `forget` drops the entry and the
    election's series are gone with it (streams/ownership.py).
    """

    app: faust.App
    topics: TopicNames
    settings: Settings
    metrics: PipelineMetrics
    names: dict[str, str]
    bootstrap: str = ""  # for rebuilding an election's tracker from its partition (streams/ownership.py)
    annotator: Annotator | None = None  # Grafana annotations of releases and critical flags, when configured

    def __post_init__(self) -> None:
        self.elections: dict[str, OwnedElection] = {}
        self.ownership = PartitionOwnership(self, self.topics, self.settings.app_id, self.bootstrap)
        self.metrics.read_elections_from(lambda: [held.figures for held in self.elections.values()])

    async def send(self, topic: str, key: str, value: Encodable | Mapping[str, Any]) -> Awaitable[Any]:
        """Hand a record to the producer; the returned future resolves once the broker has it.

        Goes straight to Faust's producer: `Topic.send` costs several times more per record, and an
        agent publishing ~20 per-region records per release spends most of its time there.
        """
        return await self.app.producer.send(topic, key.encode(), encode(value), None, None, None)

    def tracker(self, election: str) -> TurnoutTracker:
        held = self.elections.get(election)
        if held is None:
            curves = load_curves(self.settings.history_dir, exclude=election)
            tracker = TurnoutTracker(election, self.names, curves=curves)
            held = self.elections[election] = OwnedElection(tracker, ElectionFigures(election))
        return held.tracker

    def report(
        self,
        election: str,
        result: ProcessResult,
        release: Release | None,
        *,
        raised: float | None = None,
        count: bool = True,
    ) -> None:
        """Count a record's flags and set the election's figures from its result, all but the updates
        (`report_updates`, once per batch). `raised`: when its flags were raised (default: now)."""
        if count:
            self.metrics.count_flags(result.flags)
        held = self.elections.get(election)
        if held is None:  # dropped while the batch ran: a rebalance gave it to another worker
            return
        if release is not None:
            held.figures.record_polls(
                release.polls_open, release.polls_close, release.polls_open_by_region, release.polls_close_by_region
            )
        held.figures.record_flags(result.flags, time.time() if raised is None else raised)
        held.figures.record_estimates(result.estimates)

    def report_updates(self, updates: Iterable[RegionUpdate]) -> None:
        """A batch's region updates into their elections' figures (only each region's last one shows)."""
        by_election: dict[str, list[RegionUpdate]] = {}
        for update in updates:
            by_election.setdefault(update.election, []).append(update)
        for election, batch in by_election.items():
            held = self.elections.get(election)
            if held is not None:
                held.figures.record_updates(batch)

    def forget(self, election: str) -> int:
        """Drop the election's tracker and figures (its series go with them); return how many series."""
        held = self.elections.pop(election, None)
        return 0 if held is None else sum(1 for _ in held.figures.samples())

    def process_record(self, topic: str, value: bytes) -> tuple[str, ProcessResult, Release | None]:
        """A record of the releases or observer-aggregates topic, as published, through its election's tracker.

        Raises RecordError (a ValueError) if the record breaks its contract.
        """
        if topic == self.topics.releases:
            release = decode(Release, value)
            return release.election, self.tracker(release.election).process(release), release
        aggregate = decode(ObserverAggregate, value)
        deltas = {(aggregate.election, aggregate.region_code, aggregate.bucket): np.array(aggregate.stats)}
        return aggregate.election, self.tracker(aggregate.election).add_observed(deltas), None


def _decode(
    events: Sequence[EventT[bytes]], stream: str, metrics: PipelineMetrics, kind: type[D]
) -> list[tuple[EventT[bytes], D]]:
    """The events' values as `kind` records; those that break the contract are counted and skipped."""
    decoded = []
    for event in events:
        try:
            decoded.append((event, decode(kind, event.value)))
        except RecordError as exc:
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


def _observe_latency(metrics: PipelineMetrics, stream: str, events: Sequence[EventT[bytes]]) -> None:
    now = time.time()
    histogram = metrics.latency.labels(stream)
    for event in events:
        if event.message.timestamp:
            histogram.observe(max(0.0, now - event.message.timestamp))
    metrics.events.labels(stream).inc(len(events))


def _batches(stream: faust.StreamT[bytes], settings: Settings) -> AsyncIterator[Sequence[EventT[bytes]]]:
    """The stream in batches. `take_events` is on faust's `Stream`, which every agent is given, but not
    on the `StreamT` that faust's stubs type an agent's argument with."""
    return cast("faust.Stream[bytes]", stream).take_events(settings.batch_size, within=settings.batch_within)


def register_agents(state: AgentState) -> None:
    app, settings, metrics, topics = state.app, state.settings, state.metrics, state.topics
    # Releases and observer aggregates are both keyed by election: one agent, same partitions.
    election_topics = app.topic(
        topics.releases, topics.observer_aggregates, key_serializer="raw", value_serializer="raw"
    )
    counts_topic = app.topic(topics.observer_counts, key_serializer="raw", value_serializer="raw")
    ledger, checker = StationLedger(), StationChecker(state.names)

    ownership = state.ownership

    async def publish(result: ProcessResult, pending: list[Awaitable[Any]]) -> None:
        for flag in result.flags:
            pending.append(await state.send(topics.flags, flag.election, flag.to_dict()))
        for update in result.updates:
            pending.append(await state.send(topics.turnout, update.region_code, update.to_dict()))

    # mode's SignalHandlerT rejects every handler, even one of exactly its own signature (mode-streaming 0.7)
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: faust.App, assigned: set[TP], **kwargs: Any) -> None:
        await ownership.on_assigned(assigned)

    @app.agent(election_topics, name="detect-releases")
    async def detect_releases(stream: faust.StreamT[bytes]) -> None:
        async for events in _batches(stream, settings):
            await ownership.wait_ready()  # a rebalance gave us partitions: their trackers are being rebuilt
            pending: list[Awaitable[Any]] = []
            updates: list[RegionUpdate] = []
            releases = [e for e in events if e.message.topic == topics.releases]
            for event in events:
                try:
                    election, result, release = state.process_record(event.message.topic, event.value)
                except (KeyError, TypeError, ValueError) as exc:  # RecordError is a ValueError
                    metrics.malformed.labels("releases").inc()
                    log.warning("skipping a record of %s that breaks the contract: %s", event.message.topic, exc)
                    continue
                ownership.note(election, event.message.partition)
                await publish(result, pending)
                if not ownership.owns(election):  # revoked while this batch ran: the new owner has it
                    continue
                state.report(election, result, release)
                if release is not None and state.annotator is not None and result.updates:  # not for a redelivery
                    state.annotator.release(release, result.flags)
                updates.extend(result.updates)
            state.report_updates(ownership.owned_only(updates))
            await asyncio.gather(*pending)  # broker-acknowledged before Faust acks the input batch
            _observe_latency(metrics, "releases", releases)

    @app.agent(counts_topic, name="observer-counts")
    async def observer_counts(stream: faust.StreamT[bytes]) -> None:
        """Keep each station's latest counts; send region statistics on, flag protocols above tallies."""
        async for events in _batches(stream, settings):
            counts = [count for _event, count in _decode(events, "observer_counts", metrics, ObserverCount)]
            update = ledger.add(counts)
            metrics.record_counts({(c.election, c.region_code) for c in counts})
            pending: list[Awaitable[Any]] = []
            for (election, region, bucket), delta in update.deltas.items():
                aggregate = ObserverAggregate(election, region, bucket, tuple(delta.tolist()))
                pending.append(await state.send(topics.observer_aggregates, election, aggregate))
            station_flags = checker.check(update.comparisons, _zone(settings))
            await publish(ProcessResult(flags=station_flags), pending)
            metrics.record_station_flags(station_flags)
            await asyncio.gather(*pending)
            _observe_latency(metrics, "observer_counts", events)


def _zone(settings: Settings) -> Any:
    """Station flags' times are shown in the deployment's zone (Kazakhstan: Asia/Almaty)."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.timezone)
