"""The agents' shared state without a broker: encoded records through `AgentState.process_record`.

The Faust app is built but never started. What needs the running worker (`register_agents`' two
agents, `send` to the producer, batching and latency) is covered end to end by tests/services and
tests/streams/test_scale_out.py; here every record goes through the same `process_record`, `report`,
`report_updates` and `forget` the agents call.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from streams.agents import AgentState
from streams.app import create_app
from streams.metrics import PipelineMetrics
from turnout_watch.core.errors import RecordError
from turnout_watch.core.records import ObserverAggregate, Release, encode
from turnout_watch.core.settings import SHIPPED_ELECTIONS, load_settings
from turnout_watch.core.topics import TopicNames

TZ = timezone(timedelta(hours=6))
NAMES = {"KZ-10": "Abai Region", "KZ-11": "Akmola Region"}
FLAGS = "turnout_watch_flags_total"


def at(hour: int) -> datetime:
    return datetime(2022, 11, 20, hour, tzinfo=TZ)


def release(hour: int, turnout: dict[str, float], election: str = "e") -> bytes:
    return encode(Release(election, at(hour), at(hour) + timedelta(minutes=5), turnout))


def aggregate(hour: int, stations: int, registered: float = 1000.0, voted: float = 500.0) -> bytes:
    """`stations` observed stations of KZ-10, each with `voted` of `registered`: their six sums."""
    x, y, n = registered, voted, float(stations)
    stats = (n, n * x, n * y, n * x * x, n * x * y, n * y * y)
    return encode(ObserverAggregate("e", "KZ-10", at(hour).timestamp(), stats))


@pytest.fixture
def metrics() -> PipelineMetrics:
    return PipelineMetrics(CollectorRegistry())


@pytest.fixture
def state(metrics: PipelineMetrics, tmp_path: Path) -> AgentState:
    """No past days (no expected curves), so only the figures below decide the flags."""
    settings = load_settings(data_dir=tmp_path, history_dir=tmp_path / "no-history")
    app = create_app(settings, "127.0.0.1:9")  # never started: nothing listens there
    return AgentState(app, TopicNames.from_settings(settings), settings, metrics, NAMES)


def flags_counted(metrics: PipelineMetrics, detector: str, severity: str) -> float | None:
    return metrics.registry.get_sample_value(FLAGS, {"detector": detector, "severity": severity})


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


def test_flags_are_counted_once_and_a_redelivered_release_raises_nothing(
    state: AgentState, metrics: PipelineMetrics
) -> None:
    releases = state.topics.releases

    def through(value: bytes) -> tuple[list[tuple[str, str]], int, int]:
        election, result, decoded = state.process_record(releases, value)
        state.report(election, result, decoded, raised=1000.0)
        state.report_updates(result.updates)
        return [(f.region_code, f.severity) for f in result.flags], len(result.updates), result.stale

    assert through(release(10, {"KZ-10": 40.0, "KZ-11": 30.0})) == ([], 2, 0)
    fell = release(12, {"KZ-10": 39.5, "KZ-11": 34.0})
    assert through(fell) == ([("KZ-10", "warning")], 2, 0)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    # at-least-once: the same record again is two stale figures, no flag, no update, nothing counted
    assert through(fell) == ([], 0, 2)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    # the fall persists (39.5 -> 39.4, still a warning): the alert book holds it back, nothing counted
    assert through(release(14, {"KZ-10": 39.4, "KZ-11": 36.0})) == ([], 2, 0)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    # 39.4 -> 38.0 falls 1.4 points, past the critical 1.0: escalated, counted under critical
    assert through(release(16, {"KZ-10": 38.0, "KZ-11": 38.0})) == ([("KZ-10", "critical")], 2, 0)
    assert flags_counted(metrics, "falling_turnout", "warning") == 1
    assert flags_counted(metrics, "falling_turnout", "critical") == 1
    figures = state.elections["e"].figures
    assert figures.latest["KZ-10"].value == 38.0 and figures.moved["KZ-11"] == (2.0, 1.0)
    assert figures.flags[("KZ-10", "falling_turnout", "critical")] == (1000.0, at(16).timestamp())


def test_observer_aggregates_are_added_up_and_compared_with_the_official_figure(
    state: AgentState, metrics: PipelineMetrics
) -> None:
    """10 stations at 500 of 1,000: estimate 50 %, spread 0 so the 3-point floor, se = 0.03 / sqrt(10)
    = 0.9487 points; official 60 % is 10 points and 10.5 se above, past the critical 4.0 widened to
    6.68 for 9 degrees of freedom and the 5-point critical gap."""
    aggregates = state.topics.observer_aggregates
    state.process_record(state.topics.releases, release(12, {"KZ-10": 60.0, "KZ-11": 30.0}))
    election, six, decoded = state.process_record(aggregates, aggregate(12, stations=6))
    assert (election, decoded) == ("e", None)
    assert (six.flags, six.estimates) == ([], [])  # 6 stations: under the 10 a region needs
    _, ten, _ = state.process_record(aggregates, aggregate(12, stations=4))
    [flag] = ten.flags
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
    state.report(election, ten, None)
    assert flags_counted(metrics, "official_above_observed", "critical") == 1
    assert state.elections["e"].figures.estimates["KZ-10"] == estimate
    # counts of an hour with no release yet are kept, and judged when that release arrives
    _, early, _ = state.process_record(aggregates, aggregate(14, stations=10, voted=450.0))
    assert (early.flags, early.estimates) == ([], [])
    _, at_two, _ = state.process_record(state.topics.releases, release(14, {"KZ-10": 62.0, "KZ-11": 32.0}))
    # judged then: 62 against 45 %, critical again, so the alert book holds the persisting anomaly back
    assert (at_two.flags, at_two.held_back) == ([], 1)
    assert [(e.as_of, e.official, e.estimate) for e in at_two.estimates] == [("2022-11-20T14:00:00+06:00", 62.0, 45.0)]


@pytest.mark.parametrize(
    ("topic", "value"),
    [
        ("releases", b"{not json"),
        ("releases", b"\xff\xfe"),  # not UTF-8
        ("releases", b"[1, 2]"),
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
        ("releases", b'{"election": "e", "region_code": "KZ-10", "bucket": 1.0, "stats": [1, 2, 3, 4, 5, 6]}'),
        ("observer_aggregates", b'{"election": "e", "region_code": "KZ-10", "stats": [1, 2, 3, 4, 5, 6]}'),
        ("observer_aggregates", b'{"election": "e", "region_code": "KZ-10", "bucket": 1.0, "stats": ["1"]}'),
        ("observer_aggregates", b'{"election": "e", "region_code": "KZ-10", "bucket": 1.0, "stats": 6}'),
        ("observer_aggregates", b'{"election": "e", "region_code": 10, "bucket": 1.0, "stats": [1, 2, 3, 4, 5, 6]}'),
    ],
)
def test_a_record_that_breaks_its_contract_is_a_record_error(state: AgentState, topic: str, value: bytes) -> None:
    with pytest.raises(RecordError):
        state.process_record(getattr(state.topics, topic), value)
    assert state.elections == {}  # nothing was created for it


def test_what_the_agent_counts_as_malformed_and_skips(state: AgentState) -> None:
    """The release agent skips a record whose processing raises KeyError, TypeError or ValueError
    (RecordError is a ValueError). Six sums of the wrong length get past the codec but not the sums:
    a ValueError too, so skipped; the election's sums are left as they were."""
    assert issubclass(RecordError, ValueError)
    good = aggregate(12, stations=4)
    state.process_record(state.topics.observer_aggregates, good)
    short = b'{"election": "e", "region_code": "KZ-10", "bucket": %r, "stats": [1.0, 2.0, 3.0]}' % at(12).timestamp()
    with pytest.raises(ValueError):
        state.process_record(state.topics.observer_aggregates, short)
    [(key, sums)] = state.elections["e"].tracker.observed.sums.items()
    assert key == ("e", "KZ-10", at(12).timestamp()) and sums[0] == 4.0


def test_forget_drops_the_election_s_tracker_and_figures(state: AgentState, metrics: PipelineMetrics) -> None:
    releases = state.topics.releases
    for election in ("e", "f"):
        for hour, values in ((10, {"KZ-10": 40.0, "KZ-11": 30.0}), (12, {"KZ-10": 39.5, "KZ-11": 34.0})):
            _, result, decoded = state.process_record(releases, release(hour, values, election=election))
            state.report(election, result, decoded, raised=1000.0)
            state.report_updates(result.updates)
    turnout = "turnout_watch_region_turnout_percent"
    assert metrics.registry.get_sample_value(turnout, {"election": "e", "region": "KZ-11"}) == 34.0
    # 2 regions x (turnout, as of, delta, rate) + the falling flag's two times; no jump z with 2 regions
    assert state.forget("e") == 10
    assert list(state.elections) == ["f"]
    assert metrics.registry.get_sample_value(turnout, {"election": "e", "region": "KZ-11"}) is None
    assert metrics.registry.get_sample_value(turnout, {"election": "f", "region": "KZ-11"}) == 34.0
    assert flags_counted(metrics, "falling_turnout", "warning") == 2  # the worker's counters stay
    assert state.forget("e") == 0
    # the tracker went too: the 12:00 release again is news to a fresh one (no previous figure, no fall)
    _, again, _ = state.process_record(releases, release(12, {"KZ-10": 39.5, "KZ-11": 34.0}))
    assert again.flags == [] and again.stale == 0
    assert [(u.region_code, u.value) for u in again.updates] == [("KZ-10", 39.5), ("KZ-11", 34.0)]
