"""Thin agents: decode a batch, call the pure tracker/detectors, publish flags and updates, set metrics.

Batches come from `stream.take_events` (one Python call per batch, not per event). Everything a batch
publishes is awaited until the broker acknowledged it; only then does Faust ack the input events, so a
crash replays the batch (at-least-once). Replaying is harmless because every effect replaces:

* a release is judged once per region by its `as_of` (the tracker), an observer count replaces its
  station's earlier count of the hour (the tracker's station ledger), so the figures are those of one
  clean pass;
* a flag is published once per key (`Flag.key`): the election's figures remember every key published,
  and a worker taking the election over reads them back from the flags topic (streams/ownership.py).

A record that cannot be used — not JSON, a field of the wrong type, a non-finite number, a region the
gazetteer does not know — goes to the dead-letter topic with the reason, one at a time; the rest of
its batch goes on.

The counts hop (observer counts re-keyed by election onto station-counts) is not an agent: it runs on
aiokafka's own batched consumer in its own consumer group (streams/counts_hop.py), and uses this
module's `AgentState` (dead letters, the producer, metrics) and `give_up`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, NoReturn, cast

import faust
from faust.types import TP, EventT

from detectors.history import load_curves
from detectors.tracker import ProcessResult, RegionUpdate, Release, TurnoutTracker, prepare_releases
from streams.annotations import Annotator
from streams.broker_reset import ResetWatch, start_over
from streams.codec import release as release_of
from streams.codec import station_counts, update_value
from streams.metrics import ElectionFigures, PipelineMetrics
from streams.outbox import Outbox
from streams.ownership import PartitionOwnership
from turnout_watch.core.errors import RecordError
from turnout_watch.core.gazetteer import NATIONAL
from turnout_watch.core.records import (
    DeadLetter,
    Encodable,
    Flag,
    ObserverCount,
    StationCounts,
    decode,
    encode,
)
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames

log = logging.getLogger(__name__)
#: Most counts in one station-counts record (a record stays well under the broker's 1 MB limit).
ROWS_PER_RECORD = 2000


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
        producer = self.app.producer
        # Faust's aiokafka driver keeps its aiokafka producer behind `_ensure_producer` (no public getter)
        self.outbox = Outbox(lambda: producer._ensure_producer(), producer.partitioner)  # type: ignore[attr-defined]

    async def send(self, topic: str, key: str, value: Encodable | Mapping[str, Any]) -> Awaitable[Any]:
        """Hand a record to the producer; the returned future resolves once the broker has it.

        Goes straight to Faust's producer: `Topic.send` costs several times more per record, and an
        agent publishing ~20 per-region records per release spends most of its time there.
        """
        return await self.app.producer.send(topic, key.encode(), encode(value), None, None, None)

    def held(self, election: str) -> OwnedElection:
        held = self.elections.get(election)
        if held is None:
            curves = load_curves(self.settings.history_dir, exclude=election)
            tracker = TurnoutTracker(election, self.names, curves=curves, zone=_zone(self.settings))
            held = self.elections[election] = OwnedElection(tracker, ElectionFigures(election))
        return held

    def tracker(self, election: str) -> TurnoutTracker:
        return self.held(election).tracker

    async def send_bytes(self, topic: str, key: str, value: bytes) -> Awaitable[Any]:
        """`send` of a value already encoded."""
        return await self.app.producer.send(topic, key.encode(), value, None, None, None)

    async def dead_letter(self, event: EventT[bytes], stream: str, reason: str) -> Awaitable[Any]:
        """Count, log and publish a record an agent cannot use; the future resolves when it is stored."""
        m = event.message
        return await self.dead_letter_at(m.topic, m.partition, m.offset, m.key, event.value, stream, reason)

    async def dead_letter_at(
        self, topic: str, partition: int, offset: int, key: bytes | None, value: bytes | None, stream: str, reason: str
    ) -> Awaitable[Any]:
        """`dead_letter` of a record given by where it was (the counts hop reads with aiokafka, not Faust)."""
        self.metrics.malformed.labels(stream).inc()
        log.warning("dead-lettering %s[%s]@%s: %s", topic, partition, offset, reason[:500])
        letter = DeadLetter.of(topic, partition, offset, key, value, reason)
        return await self.send(self.topics.dead_letter, topic, letter)

    async def publish_flags(self, election: str, flags: Sequence[Flag], pending: list[Awaitable[Any]]) -> list[Flag]:
        """Publish the flags not published before (by key); return them.

        The election's figures count them at once (the watch room sees them with the batch); if the
        broker does not take them, `withdraw` un-counts them and the redelivered batch raises them again.
        """
        held = self.elections.get(election)
        new = list(flags) if held is None else held.figures.admit_flags(flags, time.time())
        for flag in new:
            pending.append(await self.send(self.topics.flags, flag.election, flag.to_dict()))
        return new

    def withdraw(self, flags: Iterable[Flag]) -> None:
        for flag in flags:
            held = self.elections.get(flag.election)
            if held is not None:
                held.figures.withdraw_flags([flag])

    def report(self, election: str, result: ProcessResult, release: Release | None, *, at: float | None = None) -> None:
        """Set the election's figures from a record's result, all but its flags (`publish_flags`, or
        `record_published` in a rebuild) and updates (`report_updates`, once per batch). `at`: when
        the record reached the pipeline (default: now)."""
        held = self.elections.get(election)
        if held is None:  # dropped while the batch ran: a rebalance gave it to another worker
            return
        if release is not None:
            held.figures.record_polls(
                release.polls_open, release.polls_close, release.polls_open_by_region, release.polls_close_by_region
            )
        held.figures.record_estimates(result.estimates)
        if result.counted_regions:
            held.figures.record_counts(result.counted_regions, time.time() if at is None else at)

    def record_published(self, flag: Flag, raised: float) -> None:
        """A flag read back from the flags topic: published before, so counted and never published again."""
        # the election's history may all be uncommitted (its first owner died before a commit): hold it
        # anyway, or the redelivered batch would publish these flags again
        self.held(flag.election).figures.admit_flags([flag], raised)

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
        """A record of the releases or station-counts topic, as published, through its election's tracker.

        Raises RecordError (a ValueError) if the record breaks its contract, before any state changed.
        """
        election, record = self.decode_record(topic, value)
        return election, *self.process_decoded(election, record)

    def decode_record(self, topic: str, value: bytes) -> tuple[str, Release | StationCounts]:
        """The release or station counts a record holds; RecordError if it breaks its contract."""
        if topic == self.topics.releases:
            fast = release_of(value) if isinstance(value, bytes) else None
            release = fast or decode(Release, value)  # fast path, else the core's verdict
            self._check_election(release.election)
            unknown = sorted(code for code in release.turnout if code not in self.names and code != NATIONAL)
            if unknown:
                raise RecordError(f"release: region codes the gazetteer does not know: {', '.join(unknown[:5])}")
            return release.election, release
        counts = station_counts(value) or decode(StationCounts, value)  # fast path, else the core's verdict
        self._check_election(counts.election)
        unknown = sorted({row.region_code for row in counts.rows if row.region_code not in self.names})
        if unknown:
            raise RecordError(f"station counts: region codes the gazetteer does not know: {', '.join(unknown[:5])}")
        return counts.election, counts

    def process_decoded(self, election: str, record: Release | StationCounts) -> tuple[ProcessResult, Release | None]:
        """A decoded record through its election's tracker."""
        if isinstance(record, Release):
            return self.tracker(election).process(record), record
        return self.tracker(election).add_counts(record.rows), None

    def process_batch(
        self, records: Sequence[tuple[str, Release | StationCounts]]
    ) -> list[tuple[ProcessResult, Release | None] | Exception]:
        """Decoded records through their trackers, in order for each election; each one's result or error.

        The releases are taken in rounds, the first record of each election, then the second, ...: a
        round's releases have one tracker each, so their evidence is computed together
        (`prepare_releases`); each record still meets its tracker exactly as `process_decoded` alone.
        """
        rounds: list[list[int]] = []
        seen: dict[str, int] = {}
        for i, (election, _) in enumerate(records):
            k = seen[election] = seen.get(election, -1) + 1
            if k == len(rounds):
                rounds.append([])
            rounds[k].append(i)
        out: list[tuple[ProcessResult, Release | None] | Exception] = [ValueError("not processed")] * len(records)
        for members in rounds:
            work = []
            for i in members:
                election, record = records[i]
                if isinstance(record, Release):
                    with contextlib.suppress(Exception):  # `process_decoded` meets it again, sets the record aside
                        work.append((self.tracker(election), record))
            if len(work) > 1:
                try:
                    prepare_releases(work)
                except Exception:  # each release is staged again, and judged alone, by `process`
                    log.exception("staging %d releases together failed", len(work))
            for i in members:
                try:
                    out[i] = self.process_decoded(*records[i])
                except Exception as exc:
                    out[i] = exc
        return out

    def check_count(self, count: ObserverCount) -> None:
        """An observer count the pipeline can place: an election id and a region code the gazetteer knows."""
        self._check_election(count.election)
        if count.region_code not in self.names:
            raise RecordError(f"observer count: region code {count.region_code!r} is not one the gazetteer knows")

    @staticmethod
    def election_ok(election: str) -> bool:
        return 0 < len(election) <= 200 and election.isprintable()

    @staticmethod
    def _check_election(election: str) -> None:
        if not election or len(election) > 200 or not election.isprintable():
            raise RecordError(f"election id must be printable text of 1-200 characters, got {election[:60]!r}")


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
    # Releases and station counts are both keyed by election: one agent, same partitions.
    election_topics = app.topic(topics.releases, topics.station_counts, key_serializer="raw", value_serializer="raw")
    ownership = state.ownership

    # mode's SignalHandlerT rejects every handler, even one of exactly its own signature (mode-streaming 0.7)
    @app.on_partitions_assigned.connect  # type: ignore[arg-type]
    async def on_assigned(sender: faust.App, assigned: set[TP], **kwargs: Any) -> None:
        await ownership.on_assigned(assigned)

    resets = ResetWatch()

    @app.timer(settings.reset_check_interval)  # type: ignore[untyped-decorator]  # faust's timer is unannotated
    async def check_broker() -> None:
        """A broker that came back empty (streams/broker_reset.py): read the new topics from the start."""
        try:
            wiped = await resets.find_wiped(app.consumer, state.bootstrap)
        except Exception as exc:  # the broker is away: the next check will tell
            log.debug("broker check failed: %s", exc)
            return
        if wiped:
            metrics.broker_resets.inc()
            state.outbox.forget_partitions()
            await start_over(app.consumer, wiped)

    @app.agent(election_topics, name="detect-releases")
    async def detect_releases(stream: faust.StreamT[bytes]) -> None:
        async for events in _batches(stream, settings):
            try:
                await take_batch(events)
            except Exception as exc:
                # Faust acks a batch's events however the agent leaves them, and the trackers have taken
                # part of it: only a restart (rebuilding from the committed offsets) gives one clean pass
                give_up(exc)

    async def take_batch(events: Sequence[EventT[bytes]]) -> None:
        """One batch of releases and station counts through their elections' trackers."""
        await ownership.wait_ready()  # a rebalance gave us partitions: their trackers are being rebuilt
        pending: list[Awaitable[Any]] = []
        published: list[Flag] = []
        updates: list[RegionUpdate] = []
        releases = [e for e in events if e.message.topic == topics.releases]
        decoded: list[tuple[str, Release | StationCounts] | Exception] = []
        for event in events:
            try:
                decoded.append(state.decode_record(event.message.topic, event.value))
            except Exception as exc:
                decoded.append(exc)
        # the batch's records through their trackers first (releases in rounds, their evidence computed
        # together: AgentState.process_batch); then each record's effects, in the batch's order
        good = [record for record in decoded if not isinstance(record, Exception)]
        processed = iter(state.process_batch(good))
        outcomes = [record if isinstance(record, Exception) else next(processed) for record in decoded]
        for event, record, outcome in zip(events, decoded, outcomes, strict=True):
            stream_name = "releases" if event.message.topic == topics.releases else "station_counts"
            if isinstance(outcome, RecordError):  # a ValueError: the record breaks its contract
                pending.append(await state.dead_letter(event, stream_name, str(outcome)))
                continue
            if isinstance(outcome, Exception):  # a bug must not lose the batch: this record is set aside, loudly
                where = (event.message.topic, event.message.partition, event.message.offset)
                log.error("failed on %s[%s]@%s", *where, exc_info=outcome)
                reason = f"internal error: {type(outcome).__name__}: {outcome}"
                pending.append(await state.dead_letter(event, stream_name, reason))
                continue
            assert not isinstance(record, Exception)
            election = record[0]
            result, release = outcome
            ownership.note(election, event.message.partition)
            if not ownership.owns(election):  # revoked while this batch ran: the new owner has it
                state.forget(election)  # and a tracker this record just re-created must not linger
                continue
            published += await state.publish_flags(election, result.flags, pending)
            for update in result.updates:
                await state.outbox.add(topics.turnout, update.region_code.encode(), update_value(update))
            state.report(election, result, release)
            if release is not None and state.annotator is not None and result.updates:  # not for a redelivery
                state.annotator.release(release, [f for f in result.flags if f in published])
            updates.extend(result.updates)
        state.report_updates(ownership.owned_only(updates))
        pending += await state.outbox.flush()
        try:
            await asyncio.gather(*pending)  # broker-acknowledged before Faust acks the input batch
        except Exception as exc:  # the broker did not take them within the producer's timeout
            state.withdraw(published)
            give_up(exc)
        _observe_latency(metrics, "releases", releases)


def give_up(exc: Exception) -> NoReturn:
    """A batch's output was not stored: end the process rather than let Faust go on past the batch.

    The trackers have already taken the batch, and Faust would not deliver it again to this process
    (it may even commit past it when an agent fails). A new process rebuilds from the committed offsets
    and takes the batch again: exactly the numbers of one clean pass. `turnout-watch up` (or systemd,
    or docker's restart policy) starts it again.
    """
    log.critical("the broker did not store a batch's output (%s); exiting so a restart takes the batch again", exc)
    logging.shutdown()
    os._exit(75)  # EX_TEMPFAIL


def _zone(settings: Settings) -> Any:
    """Station flags' times are shown in the deployment's zone (Kazakhstan: Asia/Almaty)."""
    from zoneinfo import ZoneInfo

    return ZoneInfo(settings.timezone)
