"""End to end on the real tansu broker: replay the 2022 day through a real Faust worker process."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.support.broker import isolated_settings
from tests.support.paths import DAY_2022
from turnout_watch.core.dayfile import write_day
from turnout_watch.core.settings import SHIPPED_ELECTIONS, Settings
from turnout_watch.services.broker import EmbeddedBroker
from turnout_watch.services.detect import detect_day
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.services.replay import ReplayOutcome, run_replay
from turnout_watch.sim.synth import make_day

pytestmark = pytest.mark.integration


def flag_key(flag: dict[str, Any]) -> tuple[str, str, str]:
    return (flag["as_of"][11:16], flag["region_code"], flag["detector"])


def make_settings(broker: EmbeddedBroker, data_dir: Path) -> Settings:
    return isolated_settings(broker.bootstrap, data_dir)


@pytest.fixture(scope="module")
def replayed(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Replay 2022 at max speed; while the pipeline is still up, scrape /metrics once over HTTP."""
    scraped: dict[str, Any] = {}

    async def scrape(pipeline: LocalPipeline, outcome: ReplayOutcome) -> None:
        url = pipeline.worker_processes[0].metrics_url
        async with aiohttp.ClientSession() as session, session.get(url) as response:
            assert response.status == 200
            scraped["text"] = await response.text()

    settings = make_settings(broker, tmp_path_factory.mktemp("replay"))
    outcome = asyncio.run(run_replay(DAY_2022, settings, speed=None, before_stop=scrape))
    return {"outcome": outcome, "metrics": scraped["text"]}


def test_replay_flags_the_reported_2022_anomalies(replayed: dict[str, Any]) -> None:
    outcome: ReplayOutcome = replayed["outcome"]
    assert outcome.stats.releases == 7 and outcome.stats.problems == []
    keys = {flag_key(f) for f in outcome.flags}
    assert ("12:00", "KZ-61", "cross_sectional_jump") in keys  # Turkistan +37 while the country +15
    assert ("14:00", "KZ-10", "cross_sectional_jump") in keys  # Abai 43.67 -> 69.32
    assert ("22:00", "KZ-71", "falling_turnout") in keys  # Astana 48.67 -> 48.60
    assert ("22:00", "KZ-33", "falling_turnout") in keys  # Jetisu 81.43 -> 81.42
    turkistan = next(f for f in outcome.flags if flag_key(f) == ("12:00", "KZ-61", "cross_sectional_jump"))
    assert turkistan["severity"] == "critical"
    assert turkistan["value"] == pytest.approx(64.21 - 27.03)
    assert 14 < turkistan["expected"] < 17  # the other regions' median rise (the country rose 15.2)


def test_live_replay_and_offline_detect_give_the_same_flags(replayed: dict[str, Any]) -> None:
    live = sorted(replayed["outcome"].flags, key=flag_key)
    offline = sorted((f.to_dict() for f in detect_day(DAY_2022, history_dir=SHIPPED_ELECTIONS).flags), key=flag_key)
    assert live == offline


def test_metrics_served_with_per_region_values(replayed: dict[str, Any]) -> None:
    families = {f.name: f for f in text_string_to_metric_families(replayed["metrics"])}
    election = "kz-2022-11-20-presidential"

    def value(family: str, region: str) -> float:
        samples = [
            s
            for s in families[family].samples
            if s.labels.get("region") == region and s.labels.get("election") == election
        ]
        assert len(samples) == 1, (family, region, samples)
        return samples[0].value

    assert value("turnout_watch_region_turnout_percent", "KZ-61") == 80.37
    assert value("turnout_watch_region_turnout_percent", "KZ-71") == 48.60
    assert value("turnout_watch_region_turnout_percent", "KZ") == 69.43
    assert value("turnout_watch_region_delta_points", "KZ-71") == pytest.approx(-0.07)
    assert value("turnout_watch_region_rate_points_per_hour", "KZ-71") == pytest.approx(-0.035)
    regions = {s.labels["region"] for s in families["turnout_watch_region_turnout_percent"].samples}
    assert len(regions) == 21  # 20 regions and cities + the national figure
    flags = {
        (s.labels["detector"], s.labels["severity"]): s.value
        for s in families["turnout_watch_election_flags"].samples
        if s.labels["election"] == "kz-2022-11-20-presidential"
    }
    assert flags[("falling_turnout", "warning")] == 2
    assert flags[("cross_sectional_jump", "critical")] == 1
    events = [
        s
        for s in families["turnout_watch_events_processed"].samples
        if s.name.endswith("_total") and s.labels["stream"] == "releases"
    ]
    assert events[0].value == 7
    latency = [
        s
        for s in families["turnout_watch_event_latency_seconds"].samples
        if s.name.endswith("_count") and s.labels["stream"] == "releases"
    ]
    assert latency[0].value == 7


def test_promtool_accepts_the_scraped_metrics(replayed: dict[str, Any]) -> None:
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: .ci/run installs Debian's prometheus package"
    result = subprocess.run(
        [promtool, "check", "metrics"], input=replayed["metrics"], text=True, capture_output=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_speed_compresses_time_and_observer_counts_flow(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """Three releases an hour apart at speed 3600 take ~2 s to publish; counts reach their agent."""
    header = DAY_2022.read_text(encoding="utf-8").splitlines()[0]
    lines = [header]
    for hour, pct in ((10, 20.0), (11, 30.0), (12, 40.0)):
        lines.append(
            json.dumps(
                {
                    "type": "cec_release",
                    "election": "kz-2022-11-20-presidential",
                    "as_of": f"2022-11-20T{hour}:00:00+06:00",
                    "published_at": f"2022-11-20T{hour}:05:00+06:00",
                    "turnout_pct": {"Astana": pct, "Almaty": pct / 2, "Kazakhstan": pct * 0.9},
                }
            )
        )
    lines.insert(
        2,
        json.dumps(
            {
                "type": "observer_count",
                "election": "kz-2022-11-20-presidential",
                "station": "75-0203",
                "region": "Almaty",
                "observer": "obs-0042",
                "observed_at": "2022-11-20T10:30:00+06:00",
                "received_at": "2022-11-20T10:33:10+06:00",
                "registered": 2374,
                "voted": 812,
                "source": "tally",
            }
        ),
    )
    day = tmp_path / "day.jsonl"
    day.write_text("\n".join(lines), encoding="utf-8")
    settings = make_settings(broker, tmp_path / "run")
    outcome = asyncio.run(run_replay(day, settings, speed=3600))
    assert (outcome.stats.releases, outcome.stats.observer_counts) == (3, 1)
    assert 1.9 <= outcome.publish_seconds < 10
    assert outcome.flags == []


def test_observer_counts_flow_to_estimates_and_flags(broker: EmbeddedBroker, tmp_path: Path) -> None:
    """A synthetic day with 300 observed stations: an inflated official figure and an inflated protocol
    are flagged live, as offline, and the observers' estimate reaches /metrics."""
    header, events = next(
        (h, e)
        for h, e in (make_day(seed, "official_above", observers=300) for seed in range(100))
        if h["synthetic"]["anomalies"][0]["magnitude"] >= 8 and h["synthetic"]["anomalies"][0]["release"] <= 3
    )
    anomaly = header["synthetic"]["anomalies"][0]
    # and one station whose commission reports 60 voters more than its observer counted, from 18:00 on
    station = next(e for e in events if e["type"] == "observer_count" and e["region"] == "KZ-75")["station"]
    for e in events:
        if e.get("station") == station and e["source"] == "commission" and e["observed_at"][11:13] >= "17":
            e["voted"] = min(e["registered"], e["voted"] + 60)
    day = tmp_path / "day.jsonl"
    write_day(day, header, events)
    scraped: dict[str, str] = {}

    async def scrape(pipeline: LocalPipeline, outcome: ReplayOutcome) -> None:
        # the replay waited for the second hop too (counts -> station counts -> comparisons), not only its inputs
        assert pipeline.topics is not None and await pipeline.consumer_lag([pipeline.topics.station_counts]) == 0
        async with aiohttp.ClientSession() as session, session.get(pipeline.worker_processes[0].metrics_url) as r:
            scraped["text"] = await r.text()

    settings = make_settings(broker, tmp_path / "run")
    outcome = asyncio.run(run_replay(day, settings, speed=None, before_stop=scrape))
    inflated_from = f"{anomaly['release'] * 2 + 10}:00"
    expected = {(anomaly["region"], "official_above_observed", None), ("KZ-75", "protocol_above_tally", station)}

    def keys(flags: list[dict[str, Any]]) -> set[tuple[Any, ...]]:
        """Which anomalies were flagged. Live, counts may complete a later hour before an earlier one, so
        the first flag of a persisting gap can name any hour from the inflation on: that is checked too."""
        found = set()
        for f in flags:
            if f["detector"] == "protocol_above_tally":
                assert f["as_of"][11:16] >= "18:00", f
            if f["detector"] == "official_above_observed" and f["region_code"] == anomaly["region"]:
                assert f["as_of"][11:16] >= inflated_from, f
            found.add((f["region_code"], f["detector"], f.get("station")))
        return found

    assert expected <= keys(outcome.flags)
    assert expected <= keys([f.to_dict() for f in detect_day(day, history_dir=SHIPPED_ELECTIONS).flags])
    families = {f.name: f for f in text_string_to_metric_families(scraped["text"])}
    observed = {s.labels["region"]: s.value for s in families["turnout_watch_region_observed_stations"].samples}
    assert len(observed) == 20 and min(observed.values()) >= 2  # Ulytau: 141,000 voters, ~3 stations
    gap = {s.labels["region"]: s.value for s in families["turnout_watch_region_official_minus_observed_points"].samples}
    assert gap[anomaly["region"]] > 5
