"""The agents' shared state without a broker: encoded records through `AgentState.process_record`.

The Faust app is built but never started, and `send` records what would go to the producer. What
needs the running worker (`register_agents`' agent, batching and latency; the counts hop is in
tests/streams/test_counts_hop.py) is covered end to end by
tests/services and tests/streams/test_scale_out.py; here every record goes through the same
`process_record`, `publish_flags`, `report`, `report_updates`, `dead_letter` and `forget` the agents call.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import time
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from streams.agents import AgentState
from streams.app import create_app
from streams.metrics import PipelineMetrics
from turnout_watch.core.errors import RecordError
from turnout_watch.core.records import (
    DeadLetter,
    Encodable,
    Flag,
    ObserverCount,
    Release,
    Severity,
    StationCounts,
    StationRow,
    decode,
    encode,
)
from turnout_watch.core.settings import SHIPPED_ELECTIONS, load_settings
from turnout_watch.core.topics import TopicNames

TZ = timezone(timedelta(hours=6))
NAMES = {"KZ-10": "Abai Region", "KZ-11": "Akmola Region"}
FLAGS = "turnout_watch_election_flags"


def at(hour: int) -> datetime:
    return datetime(2022, 11, 20, hour, tzinfo=TZ)


def release(hour: int, turnout: dict[str, float], election: str = "e") -> bytes:
    return encode(Release(election, at(hour), at(hour) + timedelta(minutes=5), turnout))


def rows(
    hour: int, stations: range, registered: int = 1000, voted: int = 500, region: str = "KZ-10"
) -> list[StationRow]:
    """Tallies of `stations` (numbered), each `voted` of `registered`, taken ten minutes before `hour`."""
    taken = (at(hour) - timedelta(minutes=10)).timestamp()
    return [StationRow(f"s{i}", region, "tally", taken, 6 * 3600.0, taken + 60, registered, voted) for i in stations]


def counts(hour: int, stations: range, election: str = "e", **kwargs: Any) -> bytes:
    """A station-counts record, as the counts hop forwards a batch."""
    return encode(StationCounts(election, tuple(rows(hour, stations, **kwargs))))


@dataclass
class RecordingState(AgentState):
    """The agents' state with `send` recording (topic, key, payload) instead of calling the producer."""

    sent: list[tuple[str, str, Any]] = field(default_factory=list)

    async def send(self, topic: str, key: str, value: Encodable | Mapping[str, Any]) -> Awaitable[Any]:
        self.sent.append((topic, key, json.loads(encode(value))))
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    def on(self, topic: str) -> list[Any]:
        return [payload for t, _key, payload in self.sent if t == topic]


@pytest.fixture
def metrics() -> PipelineMetrics:
    return PipelineMetrics(CollectorRegistry())


@pytest.fixture
def state(metrics: PipelineMetrics, tmp_path: Path) -> RecordingState:
    """No past days (no expected curves), so only the figures below decide the flags."""
    settings = load_settings(data_dir=tmp_path, history_dir=tmp_path / "no-history")
    app = create_app(settings, "127.0.0.1:9")  # never started: nothing listens there
    return RecordingState(app, TopicNames.from_settings(settings), settings, metrics, NAMES)


def flags_counted(metrics: PipelineMetrics, detector: str, severity: str, election: str = "e") -> float | None:
    return metrics.registry.get_sample_value(FLAGS, {"election": election, "detector": detector, "severity": severity})


async def through(state: AgentState, topic: str, value: bytes) -> tuple[list[Flag], Any]:
    """One record as the release agent takes it: processed, its new flags published, its figures set.
    Returns the flags published and the record's result."""
    election, result, decoded = state.process_record(topic, value)
    published = await state.publish_flags(election, result.flags, [])
    state.report(election, result, decoded)
    state.report_updates(result.updates)
    return published, result


def test_a_release_goes_through_its_election_s_tracker(state: AgentState) -> None:
    releases = state.topics.releases
    election, first, decoded = state.process_record(releases, release(10, {"KZ-10": 40.0, "KZ-11": 30.0}))
    assert election == "e" and list(state.elections) == ["e"]
    assert decoded == Release("e", at(10), at(10) + timedelta(minutes=5), {"KZ-10": 40.0, "KZ-11": 30.0})
    assert first.flags == []
    assert [(u.region_code, u.value) for u in first.updates] == [("KZ-10", 40.0), ("KZ-11", 30.0)]
    assert all(math.isnan(u.delta) for u in first.updates)  # no previous figure yet
    # two hours later KZ-10 fell half a point (under 1 point: a warning), KZ-11 rose 4 points: 2 per hour
    _, second, _ = state.process_record(releases, release(12, {"KZ-10": 39.5, "KZ-11": 34.0}))
    assert [(f.region_code, f.detector, f.severity, f.value, f.expected) for f in second.flags] == [
        ("KZ-10", "falling_turnout", "warning", 39.5, 40.0)
    ]
    assert second.flags[0].message.startswith("Abai Region fell 0.50 points (40.00% -> 39.50%) since 10:00")
    assert [(u.region_code, u.delta, u.hours, u.rate) for u in second.updates] == [
        ("KZ-10", -0.5, 2.0, -0.25),
        ("KZ-11", 4.0, 2.0, 2.0),
    ]
    assert state.elections["e"].tracker.last_value == {"KZ-10": 39.5, "KZ-11": 34.0}


def test_a_tracker_learns_expected_curves_from_the_history_dir(metrics: PipelineMetrics, tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path, history_dir=SHIPPED_ELECTIONS)
    state = AgentState(create_app(settings, "127.0.0.1:9"), TopicNames.from_settings(settings), settings, metrics, {})
    assert state.tracker("e").curves is not None
    assert state.tracker("e") is state.tracker("e")  # one per election, kept


def test_each_election_has_its_own_tracker(state: AgentState) -> None:
    state.process_record(state.topics.releases, release(10, {"KZ-10": 40.0}, election="a"))
    _, result, _ = state.process_record(state.topics.releases, release(12, {"KZ-10": 30.0}, election="b"))
    assert result.flags == []  # 30 after 40 is a fall only within one election
    assert sorted(state.elections) == ["a", "b"]
    assert state.elections["a"].tracker.curves is None  # no past days in this state's history dir
    assert state.elections["b"].tracker.last_value == {"KZ-10": 30.0}


async def test_flags_are_published_and_counted_once_and_a_redelivered_release_raises_nothing(
    state: RecordingState, metrics: PipelineMetrics
) -> None:
    releases = state.topics.releases

    async def step(value: bytes) -> tuple[list[tuple[str, str]], int, int]:
        published, result = await through(state, releases, value)
        return [(f.region_code, f.severity) for f in published], len(result.updates), result.stale

    assert await step(release(10, {"KZ-10": 40.0, "KZ-11": 30.0})) == ([], 2, 0)
    assert flags_counted(metrics, "falling_turnout", "warning") is None  # no flag yet: no series
    fell = release(12, {"KZ-10": 39.5, "KZ-11": 34.0})
    before = time.time()
    assert await step(fell) == ([("KZ-10", "warning")], 2, 0)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    [sent] = state.on(state.topics.flags)
    assert (sent["region_code"], sent["detector"], sent["severity"]) == ("KZ-10", "falling_turnout", "warning")
    # at-least-once: the same record again is two stale figures, no flag, no update, nothing counted
    assert await step(fell) == ([], 0, 2)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    # the fall persists (39.5 -> 39.4, still a warning): the alert book holds it back, nothing counted
    assert await step(release(14, {"KZ-10": 39.4, "KZ-11": 36.0})) == ([], 2, 0)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    # 39.4 -> 38.0 falls 1.4 points, past the critical 1.0: escalated, counted under critical
    assert await step(release(16, {"KZ-10": 38.0, "KZ-11": 38.0})) == ([("KZ-10", "critical")], 2, 0)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    assert flags_counted(metrics, "falling_turnout", "critical") == 1
    assert len(state.on(state.topics.flags)) == 2  # each flag once on the flags topic, keyed by election
    assert {key for topic, key, _ in state.sent if topic == state.topics.flags} == {"e"}
    figures = state.elections["e"].figures
    assert figures.latest["KZ-10"].value == 38.0 and figures.moved["KZ-11"] == (2.0, 1.0)
    raised, as_of = figures.flags[("KZ-10", "falling_turnout", "critical")]
    assert before <= raised <= time.time() and as_of == at(16).timestamp()


def falling(election: str = "e", severity: Severity = "warning") -> Flag:
    """The flag the 12:00 release of `release(12, {"KZ-10": 39.5, ...})` raises after 40.0 at 10:00."""
    return Flag(election, "Abai Region", "KZ-10", at(12).isoformat(), "falling_turnout", severity, 39.5, 40.0, "fell")


async def test_a_flag_read_back_from_the_flags_topic_is_not_published_again(
    state: RecordingState, metrics: PipelineMetrics
) -> None:
    """A worker took the election over and read its flags back (streams/ownership.py). The previous
    owner died before committing, so the release that raised the flag comes again: it is not sent again."""
    state.tracker("e")
    state.record_published(falling(), 1000.0)
    state.record_published(falling(), 1000.0)  # the topic may hold it twice (published by an owner before it was keyed)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    assert state.elections["e"].figures.flags[("KZ-10", "falling_turnout", "warning")][0] == 1000.0
    await through(state, state.topics.releases, release(10, {"KZ-10": 40.0, "KZ-11": 30.0}))
    published, result = await through(state, state.topics.releases, release(12, {"KZ-10": 39.5, "KZ-11": 34.0}))
    assert [f.key for f in result.flags] == [falling().key]  # the tracker raised it: a fresh one
    assert published == [] and state.on(state.topics.flags) == []
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    # a flag of an election with no committed history yet (its first owner died before committing): the
    # election is held from its flags, so the redelivered release does not publish the flag again
    state.record_published(falling("other"), 1000.0)
    assert "other" in state.elections
    await through(state, state.topics.releases, release(10, {"KZ-10": 40.0, "KZ-11": 30.0}, election="other"))
    published, _ = await through(
        state, state.topics.releases, release(12, {"KZ-10": 39.5, "KZ-11": 34.0}, election="other")
    )
    assert published == [] and state.on(state.topics.flags) == []


async def test_flags_whose_send_failed_are_withdrawn_and_published_with_the_redelivery(
    state: RecordingState, metrics: PipelineMetrics
) -> None:
    state.tracker("e")
    flag, escalated = falling(), falling(severity="critical")
    assert await state.publish_flags("e", [flag, escalated, flag], []) == [flag, escalated]
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    state.withdraw([flag, escalated])  # the broker did not take the batch: it comes again
    assert flags_counted(metrics, "falling_turnout", "warning") == 0
    assert flags_counted(metrics, "falling_turnout", "critical") == 0
    pending: list[Awaitable[Any]] = []
    assert await state.publish_flags("e", [flag], pending) == [flag]
    assert len(pending) == 1 and len(state.on(state.topics.flags)) == 3  # sent again, after the failed two
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    state.withdraw([falling("never-held")])  # an election not held: nothing to take back


async def test_station_counts_are_estimated_and_compared_with_the_official_figure(
    state: RecordingState, metrics: PipelineMetrics
) -> None:
    """10 stations at 500 of 1,000: estimate 50 %, spread 0 so the 3-point floor, se = 0.03 / sqrt(10)
    = 0.9487 points; official 60 % is 10 points and 10.5 se above, past the critical 4.0 widened to
    6.68 for 9 degrees of freedom and the 5-point critical gap."""
    station_counts = state.topics.station_counts
    await through(state, state.topics.releases, release(12, {"KZ-10": 60.0, "KZ-11": 30.0}))
    election, six, decoded = state.process_record(station_counts, counts(12, range(6)))
    assert (election, decoded) == ("e", None)
    assert (six.flags, six.estimates, six.counted_regions) == ([], [], {"KZ-10"})  # under the 10 a region needs
    state.report(election, six, None, at=1234.0)
    last_count = "turnout_watch_region_last_observer_count_timestamp_seconds"
    assert metrics.registry.get_sample_value(last_count, {"election": "e", "region": "KZ-10"}) == 1234.0
    # the same six again (a redelivery) and four more: ten stations, not sixteen
    published, ten = await through(state, station_counts, counts(12, range(10)))
    [flag] = published
    assert (flag.region_code, flag.detector, flag.severity, flag.value, flag.expected) == (
        "KZ-10",
        "official_above_observed",
        "critical",
        60.0,
        50.0,
    )
    assert flag.as_of == "2022-11-20T12:00:00+06:00"
    assert flag.message == (
        "Abai Region: official 60.00% is 10.0 points above what observers counted at 10 stations "
        "(50.0%, 95% CI 48.1-51.9)"
    )
    [estimate] = ten.estimates
    assert (estimate.region_code, estimate.official, estimate.estimate, estimate.stations) == ("KZ-10", 60.0, 50.0, 10)
    assert estimate.se == pytest.approx(0.9487, abs=1e-4)
    assert flags_counted(metrics, "official_above_observed", "critical") == 1
    assert state.elections["e"].figures.estimates["KZ-10"] == estimate
    # the whole record redelivered: nothing moves, nothing is raised or published
    redelivered, again = await through(state, station_counts, counts(12, range(10)))
    assert (redelivered, again.estimates) == ([], [])
    assert len(state.on(state.topics.flags)) == 1
    # counts of an hour with no release yet are kept, and judged when that release arrives
    _, early = await through(state, station_counts, counts(14, range(10), voted=450))
    assert (early.flags, early.estimates) == ([], [])
    _, at_two = await through(state, state.topics.releases, release(14, {"KZ-10": 62.0, "KZ-11": 32.0}))
    # judged then: 62 against 45 %, critical again, so the alert book holds the persisting anomaly back
    assert (at_two.flags, at_two.held_back) == ([], 1)
    assert [(e.as_of, e.official, e.estimate) for e in at_two.estimates] == [("2022-11-20T14:00:00+06:00", 62.0, 45.0)]


async def test_station_counts_of_a_station_s_correction_replace_its_count(state: RecordingState) -> None:
    """A corrected count (observed later) replaces the station's earlier one in the election's sums."""
    station_counts = state.topics.station_counts
    state.process_record(station_counts, counts(12, range(3), voted=500))
    corrected = rows(12, range(1), voted=400)[0]
    later = StationRow(corrected.station, "KZ-10", "tally", corrected.observed_ts + 60, corrected.offset,
                       corrected.received_ts + 60, 1000, 400)  # fmt: skip
    state.process_record(station_counts, encode(StationCounts("e", (later,))))
    [(key, sums)] = state.elections["e"].tracker.observed.sums.items()
    assert key == ("e", "KZ-10", at(12).timestamp())
    assert sums[:3].tolist() == [3.0, 3000.0, 1400.0]


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        ("releases", b"{not json"),
        ("releases", b"\xff\xfe"),  # not UTF-8
        ("releases", b"[1, 2]"),
        ("releases", b"42"),
        ("releases", b'"a string"'),
        ("releases", b'{"election": "e", "as_of": "2022-11-20T12:00:00+06:00"}'),  # no published_at, turnout
        ("releases", b'{"election": "e", "as_of": "noon", "published_at": "noon", "turnout": {}}'),
        (
            "releases",
            b'{"election": "e", "as_of": "2022-11-20T12:00:00+06:00", "published_at": "2022-11-20T12:05:00+06:00",'
            b' "turnout": {"KZ-10": "forty"}}',
        ),
        (
            "releases",
            b'{"election": "e", "as_of": "2022-11-20T12:00:00+06:00", "published_at": "2022-11-20T12:05:00+06:00",'
            b' "turnout": [40.0]}',
        ),
        (
            "releases",
            b'{"election": "e", "as_of": "2022-11-20T12:00:00+06:00", "published_at": "2022-11-20T12:05:00+06:00",'
            b' "turnout": {"KZ-10": Infinity}}',
        ),
        (
            "releases",  # a region code the gazetteer does not know
            b'{"election": "e", "as_of": "2022-11-20T12:00:00+06:00", "published_at": "2022-11-20T12:05:00+06:00",'
            b' "turnout": {"KZ-10": 40.0, "KZ-99": 41.0}}',
        ),
        (
            "releases",  # not an election id
            b'{"election": "", "as_of": "2022-11-20T12:00:00+06:00", "published_at": "2022-11-20T12:05:00+06:00",'
            b' "turnout": {"KZ-10": 40.0}}',
        ),
        ("releases", b'{"election": "e", "region_code": "KZ-10", "bucket": 1.0, "stats": [1, 2, 3, 4, 5, 6]}'),
        ("station_counts", b'{"election": "e", "rows": {}}'),
        ("station_counts", b'{"election": "e"}'),
        ("station_counts", b'{"election": "e", "rows": [["s1", "KZ-10", "tally", 1.0, 0.0, 1.0, 1000]]}'),  # 7 values
        ("station_counts", b'{"election": "e", "rows": [["s1", "KZ-10", "exit poll", 1.0, 0.0, 1.0, 1000, 500]]}'),
        ("station_counts", b'{"election": "e", "rows": [["s1", "KZ-10", "tally", NaN, 0.0, 1.0, 1000, 500]]}'),
        ("station_counts", b'{"election": "e", "rows": [["s1", "KZ-10", "tally", 1.0, 0.0, 1.0, 1e308, 500]]}'),
        ("station_counts", b'{"election": "e", "rows": [["s1", "KZ-10", "tally", 1.0, 0.0, 1.0, 1000, -1]]}'),
        ("station_counts", b'{"election": "e", "rows": [["s1", 10, "tally", 1.0, 0.0, 1.0, 1000, 500]]}'),
        ("station_counts", b'{"election": "e", "rows": [["s1", "KZ-99", "tally", 1.0, 0.0, 1.0, 1000, 500]]}'),
        ("station_counts", b'{"election": "\\n", "rows": []}'),
        ("station_counts", b'{"election": "e", "region_code": "KZ-10", "bucket": 1.0, "stats": [1, 2, 3, 4, 5, 6]}'),
    ],
)
def test_a_record_that_breaks_its_contract_is_a_record_error(state: AgentState, topic: str, value: bytes) -> None:
    with pytest.raises(RecordError):
        state.process_record(getattr(state.topics, topic), value)
    assert state.elections == {}  # nothing was created for it


def test_unknown_region_codes_are_refused_before_any_state_changes(state: AgentState) -> None:
    """One unknown code in a release or a station-counts record: the whole record is refused, and the
    election's tracker is as it was (no figure of the known regions taken, no station counted)."""
    releases, station_counts = state.topics.releases, state.topics.station_counts
    state.process_record(releases, release(10, {"KZ-10": 40.0, "KZ-11": 30.0}))
    state.process_record(station_counts, counts(12, range(3)))
    tracker = state.elections["e"].tracker
    before = (
        dict(tracker.last_value),
        dict(tracker.stations.latest),
        {k: v.tolist() for k, v in tracker.observed.sums.items()},
    )
    with pytest.raises(RecordError, match="KZ-99"):
        state.process_record(releases, release(12, {"KZ-10": 45.0, "KZ-11": 35.0, "KZ-99": 50.0}))
    mixed = rows(12, range(3, 6)) + rows(12, range(6, 7), region="KZ-99")
    with pytest.raises(RecordError, match="KZ-99"):
        state.process_record(station_counts, encode(StationCounts("e", tuple(mixed))))
    after = (
        dict(tracker.last_value),
        dict(tracker.stations.latest),
        {k: v.tolist() for k, v in tracker.observed.sums.items()},
    )
    assert after == before
    # the national figure is not a region of the gazetteer, but a release may carry it
    _, result, _ = state.process_record(releases, release(12, {"KZ-10": 45.0, "KZ-11": 35.0, "KZ": 40.0}))
    assert {u.region_code for u in result.updates} == {"KZ-10", "KZ-11", "KZ"}


def observer_count(region_code: str = "KZ-10", election: str = "e") -> ObserverCount:
    observed = at(12) - timedelta(minutes=10)
    return ObserverCount(election, "s1", "Abai Region", region_code, observed, observed, 1000, 500, "tally")


def test_an_observer_count_is_checked_before_it_is_forwarded(state: AgentState) -> None:
    state.check_count(observer_count())
    with pytest.raises(RecordError, match="KZ-99"):
        state.check_count(observer_count("KZ-99"))
    with pytest.raises(RecordError, match="election"):
        state.check_count(observer_count(election="e" * 201))
    with pytest.raises(RecordError, match="election"):
        state.check_count(observer_count(election="e\x00"))


async def test_a_record_the_agent_cannot_use_is_dead_lettered_with_its_reason(
    state: RecordingState, metrics: PipelineMetrics
) -> None:
    malformed = "turnout_watch_events_malformed_total"
    assert metrics.registry.get_sample_value(malformed, {"stream": "releases"}) == 0
    message = SimpleNamespace(topic=state.topics.releases, partition=3, offset=41, key=b"e", timestamp=0.0)
    event: Any = SimpleNamespace(message=message, value=b"\xff not utf-8")
    done = await state.dead_letter(event, "releases", "release record is not JSON")
    await done
    assert metrics.registry.get_sample_value(malformed, {"stream": "releases"}) == 1
    assert metrics.registry.get_sample_value(malformed, {"stream": "observer_counts"}) == 0
    [(topic, key, payload)] = state.sent
    assert (topic, key) == (state.topics.dead_letter, state.topics.releases)
    letter = decode(DeadLetter, json.dumps(payload))
    assert (letter.topic, letter.partition, letter.offset, letter.key) == (state.topics.releases, 3, 41, "e")
    assert (letter.reason, letter.encoding) == ("release record is not JSON", "base64")
    assert base64.b64decode(letter.value) == b"\xff not utf-8"  # kept as it came, to re-publish by hand


def test_forget_drops_the_election_s_tracker_and_figures(state: AgentState, metrics: PipelineMetrics) -> None:
    releases = state.topics.releases
    for election in ("e", "f"):
        for hour, values in ((10, {"KZ-10": 40.0, "KZ-11": 30.0}), (12, {"KZ-10": 39.5, "KZ-11": 34.0})):
            _, result, decoded = state.process_record(releases, release(hour, values, election=election))
            state.elections[election].figures.admit_flags(result.flags, 1000.0)  # as `publish_flags` does
            state.report(election, result, decoded)
            state.report_updates(result.updates)
    turnout = "turnout_watch_region_turnout_percent"
    assert metrics.registry.get_sample_value(turnout, {"election": "e", "region": "KZ-11"}) == 34.0
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    # 2 regions x (turnout, as of, delta, rate) + the falling flag's two times + its count; no jump z with 2 regions
    assert state.forget("e") == 11
    assert list(state.elections) == ["f"]
    assert metrics.registry.get_sample_value(turnout, {"election": "e", "region": "KZ-11"}) is None
    assert metrics.registry.get_sample_value(turnout, {"election": "f", "region": "KZ-11"}) == 34.0
    assert flags_counted(metrics, "falling_turnout", "warning") is None  # the new owner counts them now
    assert flags_counted(metrics, "falling_turnout", "warning", election="f") == 1
    assert state.forget("e") == 0
    # the tracker went too: the 12:00 release again is news to a fresh one (no previous figure, no fall)
    _, again, _ = state.process_record(releases, release(12, {"KZ-10": 39.5, "KZ-11": 34.0}))
    assert again.flags == [] and again.stale == 0
    assert [(u.region_code, u.value) for u in again.updates] == [("KZ-10", 39.5), ("KZ-11", 34.0)]
