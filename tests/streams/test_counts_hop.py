"""The counts hop without a broker: a batch as aiokafka's `getmany` gives it, through `CountsHop.forward`.

What needs the broker (its own consumer group, commits after the acknowledgements, a SIGKILL between
the two, a wiped broker, poison records among good ones) is covered end to end by
tests/streams/test_faults.py and tests/streams/test_scale_out.py.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from aiokafka import TopicPartition
from faust.types import TP
from prometheus_client import CollectorRegistry, Histogram

from streams.app import create_app
from streams.counts_hop import CountsHop, observe_latencies
from streams.metrics import PipelineMetrics
from tests.streams.test_agents import NAMES, RecordingState
from turnout_watch.core.records import DeadLetter, ObserverCount, StationCounts, StationRow, decode, encode
from turnout_watch.core.settings import load_settings
from turnout_watch.core.topics import TopicNames

TZ = timezone(timedelta(hours=6))


@dataclass
class Recording(RecordingState):
    """`send_bytes` recorded too (the hop publishes its station-counts records already encoded)."""

    raw: list[tuple[str, str, bytes]] = field(default_factory=list)

    async def send_bytes(self, topic: str, key: str, value: bytes) -> Awaitable[Any]:
        self.raw.append((topic, key, value))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done


@pytest.fixture
def hop(tmp_path: Path) -> CountsHop:
    settings = load_settings(data_dir=tmp_path, history_dir=tmp_path / "no-history")
    app = create_app(settings, "127.0.0.1:9")  # never started: nothing listens there
    state = Recording(app, TopicNames.from_settings(settings), settings, PipelineMetrics(CollectorRegistry()), NAMES)
    return CountsHop(state)


def count(station: str, election: str = "e", region_code: str = "KZ-10", voted: int = 500) -> ObserverCount:
    observed = datetime(2022, 11, 20, 11, 50, tzinfo=TZ)
    return ObserverCount(
        election=election,
        station=station,
        region="Abai Region",
        region_code=region_code,
        observed_at=observed,
        received_at=observed + timedelta(minutes=2),
        registered=1000,
        voted=voted,
        source="tally",
    )


def record(topic: str, partition: int, offset: int, value: bytes) -> Any:
    return SimpleNamespace(
        topic=topic, partition=partition, offset=offset, key=b"s", value=value, timestamp=1_700_000_000_000
    )


async def test_a_batch_is_re_keyed_per_election_and_bad_counts_are_dead_lettered(hop: CountsHop) -> None:
    state: Any = hop.shared
    topic = state.topics.observer_counts
    good = [count("s1"), count("s2", election="f"), count("s3", voted=600)]
    batch = {
        TopicPartition(topic, 0): [
            record(topic, 0, 7, encode(good[0])),
            record(topic, 0, 8, b"not json"),
            record(topic, 0, 9, encode(good[1])),
        ],
        TopicPartition(topic, 2): [
            record(topic, 2, 3, encode(count("s4", region_code="KZ-99"))),
            record(topic, 2, 4, encode(good[2])),
        ],
    }
    pending = await hop.forward(batch)
    await asyncio.gather(*pending)
    assert len(pending) == 4  # two elections' records and two dead letters, all awaited before the commit
    published = {key: decode(StationCounts, value) for _topic, key, value in state.raw}
    assert {t for t, _k, _v in state.raw} == {state.topics.station_counts}
    assert published == {
        "e": StationCounts("e", (StationRow.of(good[0]), StationRow.of(good[2]))),
        "f": StationCounts("f", (StationRow.of(good[1]),)),
    }
    letters = [decode(DeadLetter, json.dumps(payload)) for payload in state.on(state.topics.dead_letter)]
    assert [(letter.partition, letter.offset) for letter in letters] == [(0, 8), (2, 3)]
    assert "not JSON" in letters[0].reason and "KZ-99" in letters[1].reason  # the core codec's reasons
    assert hop.read == {TP(topic, 0): 10, TP(topic, 2): 5}  # what the broker-wipe check compares with the ends
    registry = state.metrics.registry
    assert registry.get_sample_value("turnout_watch_events_malformed_total", {"stream": "observer_counts"}) == 2


def test_latencies_are_observed_as_one_by_one_observations_would_be() -> None:
    now, stamps = 1_700_000_010.0, [1_700_000_009_990, 0, 1_700_000_009_000, 1_700_000_000_000, 1_700_000_011_000]
    bulk, single = CollectorRegistry(), CollectorRegistry()
    buckets = (0.005, 0.01, 0.05, 1.0, 5.0)
    observe_latencies(Histogram("lat", "l", buckets=buckets, registry=bulk), now, stamps)
    one_by_one = Histogram("lat", "l", buckets=buckets, registry=single)
    for stamp in stamps:
        if stamp:  # 0: the record has no timestamp
            one_by_one.observe(max(0.0, now - stamp / 1000))
    samples = {(s.name, tuple(s.labels.items())): s.value for m in bulk.collect() for s in m.samples}
    want = {(s.name, tuple(s.labels.items())): s.value for m in single.collect() for s in m.samples}
    assert samples.keys() == want.keys()
    assert all(samples[k] == pytest.approx(want[k]) for k in want if not k[0].endswith("_created"))
