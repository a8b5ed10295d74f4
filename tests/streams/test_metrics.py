"""The worker's metrics on a fresh registry: figures read at scrape time, and gone with their election."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry, Gauge
from prometheus_client.exposition import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from detectors.tracker import ObservedEstimate, ProcessResult
from streams.agents import AgentState
from streams.app import create_app
from streams.metrics import FIGURES, ElectionFigures, PipelineMetrics
from turnout_watch.core.records import Flag, RegionUpdate
from turnout_watch.core.settings import SHIPPED_ELECTIONS, load_settings
from turnout_watch.core.topics import TopicNames

NAN = float("nan")
NOON = "2022-11-20T12:00:00+06:00"
NOON_TS = 1668924000.0
TWO_PM_TS = NOON_TS + 7200
CLOSE = datetime(2022, 11, 20, 14, tzinfo=UTC)  # 20:00 in Almaty
JUMP = {"detector": "cross_sectional_jump", "severity": "critical"}
STATION = {"detector": "protocol_above_tally", "severity": "critical"}


def update(election: str, region: str, value: float, delta: float, as_of: float, jump_z: float = NAN) -> RegionUpdate:
    hours = 2.0 if delta == delta else NAN
    return RegionUpdate(election, region, "", value, value - delta, delta, hours, as_of, jump_z)


def flag(election: str, detector: str, as_of: str = NOON) -> Flag:
    return Flag(election, "Turkistan Region", "KZ-61", as_of, detector, "critical", 1.0, None, "m")


def estimate(as_of: str, value: float) -> ObservedEstimate:
    return ObservedEstimate("a", "KZ-61", as_of, official=64.2, estimate=value, se=1.5, stations=12)


@pytest.fixture
def metrics() -> PipelineMetrics:
    return PipelineMetrics(CollectorRegistry())


@pytest.fixture
def state(metrics: PipelineMetrics, tmp_path: Path) -> AgentState:
    """The worker's agent state on a fresh registry; its app is never started (no broker)."""
    settings = load_settings(data_dir=tmp_path, history_dir=SHIPPED_ELECTIONS)
    app = create_app(settings, "127.0.0.1:9")
    return AgentState(app, TopicNames.from_settings(settings), settings, metrics, {"KZ-61": "Turkistan Region"})


def value(metrics: PipelineMetrics, sample: str, **labels: str) -> float | None:
    return metrics.registry.get_sample_value(sample, labels)


def region(metrics: PipelineMetrics, sample: str, election: str = "a", **labels: str) -> float | None:
    return value(metrics, sample, election=election, region="KZ-61", **labels)


def test_figures_are_read_from_the_elections_held_at_scrape_time(metrics: PipelineMetrics) -> None:
    held: dict[str, ElectionFigures] = {}
    metrics.read_elections_from(lambda: held.values())
    figures = ElectionFigures("a")
    figures.record_updates([update("a", "KZ-61", 64.21, 37.18, NOON_TS, jump_z=7.0)])
    assert region(metrics, "turnout_watch_region_turnout_percent") is None  # not held (yet): not exported
    held["a"] = figures
    assert region(metrics, "turnout_watch_region_turnout_percent") == 64.21
    assert region(metrics, "turnout_watch_region_as_of_timestamp_seconds") == NOON_TS
    assert region(metrics, "turnout_watch_region_delta_points") == 37.18
    assert region(metrics, "turnout_watch_region_rate_points_per_hour") == pytest.approx(18.59)
    assert region(metrics, "turnout_watch_region_jump_z") == 7.0
    figures.record_updates([update("a", "KZ-61", 70.0, 5.79, TWO_PM_TS)])
    assert region(metrics, "turnout_watch_region_turnout_percent") == 70.0  # no copy to refresh: read live
    assert region(metrics, "turnout_watch_region_jump_z") == 7.0  # NaN z: the last one stays
    del held["a"]
    assert region(metrics, "turnout_watch_region_turnout_percent") is None


def test_a_region_s_first_figure_and_a_batch_s_last_update(metrics: PipelineMetrics) -> None:
    figures = ElectionFigures("a")
    metrics.read_elections_from(lambda: [figures])
    figures.record_updates([update("a", "KZ-61", 27.03, NAN, NOON_TS - 7200)])
    assert region(metrics, "turnout_watch_region_turnout_percent") == 27.03
    # the series exist from the first figure, at 0 until there is a previous one (as the gauges were)
    assert region(metrics, "turnout_watch_region_delta_points") == 0.0
    assert region(metrics, "turnout_watch_region_rate_points_per_hour") == 0.0
    assert region(metrics, "turnout_watch_region_jump_z") is None
    # two releases in one batch: only the later shows, its NaN z included (the earlier z is not shown)
    figures.record_updates(
        [update("a", "KZ-61", 64.21, 37.18, NOON_TS, jump_z=7.0), update("a", "KZ-61", 70.0, 5.79, TWO_PM_TS)]
    )
    assert region(metrics, "turnout_watch_region_turnout_percent") == 70.0
    assert region(metrics, "turnout_watch_region_delta_points") == 5.79
    assert region(metrics, "turnout_watch_region_jump_z") is None


def test_the_latest_hour_s_estimate_wins(metrics: PipelineMetrics) -> None:
    figures = ElectionFigures("a")
    metrics.read_elections_from(lambda: [figures])
    figures.record_estimates([estimate("2022-11-20T14:00:00+06:00", 61.0)])
    figures.record_estimates([estimate(NOON, 55.0)])  # a late count re-estimated an older hour
    assert region(metrics, "turnout_watch_region_observed_turnout_percent") == 61.0
    assert region(metrics, "turnout_watch_region_official_minus_observed_points") == pytest.approx(3.2)
    assert region(metrics, "turnout_watch_region_observed_se_points") == 1.5
    assert region(metrics, "turnout_watch_region_observed_stations") == 12
    figures.record_estimates([estimate("2022-11-20T14:00:00+06:00", 62.0)])  # same hour, more counts
    assert region(metrics, "turnout_watch_region_observed_turnout_percent") == 62.0


def test_each_flag_is_counted_once_by_its_key_and_its_times_kept(metrics: PipelineMetrics) -> None:
    figures = ElectionFigures("a")
    metrics.read_elections_from(lambda: [figures])
    jump = flag("a", "cross_sectional_jump")
    assert figures.admit_flags([jump, jump], raised=1000.0) == [jump]  # twice in a batch: once
    assert figures.admit_flags([jump], raised=1100.0) == []  # redelivered, or read back from the topic
    later = flag("a", "cross_sectional_jump", "2022-11-20T14:00:00+06:00")
    assert figures.admit_flags([later], raised=2000.0) == [later]  # another hour: another flag
    station = Flag(
        "a", "Turkistan Region", "KZ-61", NOON, "protocol_above_tally", "critical", 1.0, None, "m", station="61-0001"
    )
    other_station = Flag(
        "a", "Turkistan Region", "KZ-61", NOON, "protocol_above_tally", "critical", 1.0, None, "m", station="61-0002"
    )
    assert figures.admit_flags([station, other_station], raised=1500.0) == [station, other_station]
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) == 2
    assert value(metrics, "turnout_watch_election_flags", election="a", **STATION) == 2
    assert (
        value(metrics, "turnout_watch_election_flags", election="a", detector="falling_turnout", severity="info")
        is None
    )
    assert region(metrics, "turnout_watch_region_last_flag_timestamp_seconds", **JUMP) == 2000.0
    assert region(metrics, "turnout_watch_region_last_flag_as_of_timestamp_seconds", **JUMP) == TWO_PM_TS
    assert region(metrics, "turnout_watch_region_last_flag_timestamp_seconds", **STATION) == 1500.0
    assert region(metrics, "turnout_watch_region_last_flag_as_of_timestamp_seconds", **STATION) == NOON_TS


def test_a_flag_read_back_late_does_not_move_the_last_flag_time_back(metrics: PipelineMetrics) -> None:
    """A rebuild reads flags in the topic's order; the latest raised time per series stays."""
    figures = ElectionFigures("a")
    metrics.read_elections_from(lambda: [figures])
    figures.admit_flags([flag("a", "cross_sectional_jump", "2022-11-20T14:00:00+06:00")], raised=2000.0)
    figures.admit_flags([flag("a", "cross_sectional_jump")], raised=1000.0)
    assert region(metrics, "turnout_watch_region_last_flag_timestamp_seconds", **JUMP) == 2000.0
    assert region(metrics, "turnout_watch_region_last_flag_as_of_timestamp_seconds", **JUMP) == TWO_PM_TS
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) == 2


def test_withdrawn_flags_are_uncounted_and_can_be_admitted_again(metrics: PipelineMetrics) -> None:
    """The broker did not take a batch's flags: they are not published, and the redelivery publishes them."""
    figures = ElectionFigures("a")
    metrics.read_elections_from(lambda: [figures])
    jump, later = flag("a", "cross_sectional_jump"), flag("a", "cross_sectional_jump", "2022-11-20T14:00:00+06:00")
    figures.admit_flags([jump, later], raised=1000.0)
    figures.withdraw_flags([later, later])  # withdrawn twice: uncounted once
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) == 1
    figures.withdraw_flags([flag("a", "falling_turnout")])  # never admitted: nothing to take back
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) == 1
    assert figures.admit_flags([jump, later], raised=1200.0) == [later]
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) == 2


def test_polls_counts_and_region_names(metrics: PipelineMetrics) -> None:
    figures = ElectionFigures("a")
    metrics.read_elections_from(lambda: [figures])
    figures.record_polls(None, CLOSE)
    figures.record_counts({"KZ-61"}, 1234.0)
    figures.record_counts({"KZ-61"}, 1000.0)  # an older batch read back late: the latest time stays
    metrics.name_regions({"KZ-61": "Turkistan Region"})
    polls = "turnout_watch_election_polls_timestamp_seconds"
    assert value(metrics, polls, election="a", edge="close") == CLOSE.timestamp()
    assert value(metrics, polls, election="a", edge="open") is None
    assert region(metrics, "turnout_watch_region_last_observer_count_timestamp_seconds") == 1234.0
    assert value(metrics, "turnout_watch_region_info", region="KZ-61", name="Turkistan Region") == 1


def test_each_region_s_own_polling_window(metrics: PipelineMetrics) -> None:
    """Until 2024 the west closed an hour after the capital: its own series says so."""
    figures = ElectionFigures("a")
    metrics.read_elections_from(lambda: [figures])
    west_close = CLOSE + timedelta(hours=1)
    figures.record_polls(None, CLOSE, {"KZ-15": CLOSE - timedelta(hours=12)}, {"KZ-15": west_close, "KZ-61": CLOSE})
    polls = "turnout_watch_region_polls_timestamp_seconds"
    assert value(metrics, polls, election="a", region="KZ-15", edge="close") == west_close.timestamp()
    assert value(metrics, polls, election="a", region="KZ-61", edge="close") == CLOSE.timestamp()
    assert value(metrics, polls, election="a", region="KZ-15", edge="open") == (CLOSE - timedelta(hours=12)).timestamp()


def test_every_family_is_exposed_once_with_its_type_even_when_empty(metrics: PipelineMetrics) -> None:
    families = {f.name: f.type for f in text_string_to_metric_families(generate_latest(metrics.registry).decode())}
    assert {f.name: families.get(f.name) for f in FIGURES} == {f.name: "gauge" for f in FIGURES}
    assert "turnout_watch_flags" not in families  # the per-process flag counter is gone: flags are figures
    assert families["turnout_watch_broker_resets"] == "counter"
    assert families["turnout_watch_events_malformed"] == "counter"
    assert families["turnout_watch_event_latency_seconds"] == "histogram"
    assert value(metrics, "turnout_watch_broker_resets_total") == 0
    assert value(metrics, "turnout_watch_events_malformed_total", stream="observer_counts") == 0
    with pytest.raises(ValueError, match="Duplicated timeseries"):  # the collector's names are registered
        Gauge("turnout_watch_region_turnout_percent", "a second one", registry=metrics.registry)


def test_forgetting_an_election_drops_its_series_only(state: AgentState, metrics: PipelineMetrics) -> None:
    """What a worker drops when a rebalance moves an election away: every series of the election, its
    flag counts and observer-count times included (the new owner reads them back); not other elections'."""
    for election in ("a", "b"):
        state.tracker(election)  # the agent's first record of the election
        state.record_published(flag(election, "cross_sectional_jump"), 1000.0)
        state.report(election, ProcessResult(counted_regions={"KZ-61"}), None, at=900.0)
        state.report_updates([update(election, "KZ-61", 64.2, 37.2, NOON_TS)])
        state.elections[election].figures.record_polls(None, CLOSE)
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) == 1
    assert region(metrics, "turnout_watch_region_last_observer_count_timestamp_seconds") == 900.0
    # turnout, as of, delta, rate, polls, last flag (2 families), flag count, last observer count
    assert state.forget("a") == 9
    assert "a" not in state.elections and "b" in state.elections  # the tracker went with the series
    assert region(metrics, "turnout_watch_region_turnout_percent") is None
    assert region(metrics, "turnout_watch_region_delta_points") is None
    assert region(metrics, "turnout_watch_region_last_flag_timestamp_seconds", **JUMP) is None
    assert region(metrics, "turnout_watch_region_last_observer_count_timestamp_seconds") is None
    assert value(metrics, "turnout_watch_election_polls_timestamp_seconds", election="a", edge="close") is None
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) is None
    assert region(metrics, "turnout_watch_region_turnout_percent", election="b") == 64.2
    assert region(metrics, "turnout_watch_region_last_flag_timestamp_seconds", election="b", **JUMP) == 1000.0
    assert value(metrics, "turnout_watch_election_flags", election="b", **JUMP) == 1
    assert state.forget("a") == 0
    # a record of it after the drop (a batch under way) sets nothing; a new tracker brings its series back
    state.report_updates([update("a", "KZ-61", 70.0, 5.8, TWO_PM_TS)])
    state.report("a", ProcessResult(counted_regions={"KZ-61"}), None, at=950.0)
    assert region(metrics, "turnout_watch_region_turnout_percent") is None
    assert "a" not in state.elections
    state.tracker("a")
    state.report_updates([update("a", "KZ-61", 70.0, 5.8, TWO_PM_TS)])
    assert region(metrics, "turnout_watch_region_turnout_percent") == 70.0


def test_a_report_sets_figures_but_never_counts_flags(state: AgentState, metrics: PipelineMetrics) -> None:
    """Flags are counted when published (or read back from the flags topic), not when a result is reported:
    a rebuild that raises a flag again does not count it a second time."""
    state.tracker("a")
    jump = flag("a", "cross_sectional_jump")
    state.report("a", ProcessResult(flags=[jump], estimates=[estimate(NOON, 55.0)]), None, at=NOON_TS)
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) is None
    assert region(metrics, "turnout_watch_region_last_flag_timestamp_seconds", **JUMP) is None
    assert region(metrics, "turnout_watch_region_observed_turnout_percent") == 55.0
    state.record_published(jump, NOON_TS + 30)
    state.record_published(jump, NOON_TS + 60)  # the same flag twice on the topic: counted once
    assert value(metrics, "turnout_watch_election_flags", election="a", **JUMP) == 1
    assert region(metrics, "turnout_watch_region_last_flag_timestamp_seconds", **JUMP) == NOON_TS + 30
