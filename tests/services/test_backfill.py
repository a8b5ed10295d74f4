"""`replay --backfill`: the 2022 day imported with promtool, then read back from a real Prometheus."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from prometheus_client import CollectorRegistry
from prometheus_client.openmetrics.parser import text_string_to_metric_families

from streams.metrics import PipelineMetrics
from tests.support.paths import DAY_2022
from turnout_watch.cli import cli
from turnout_watch.core.normalize import region_names
from turnout_watch.services.backfill import BackfillError, day_families, openmetrics_text
from turnout_watch.services.broker import free_port
from turnout_watch.services.detect import DetectResult, detect_day

PROMETHEUS = shutil.which("prometheus") or "/usr/bin/prometheus"


class Prometheus:
    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, expr: str, at: str) -> list[dict[str, Any]]:
        qs = urllib.parse.urlencode({"query": expr, "time": at})
        with urllib.request.urlopen(f"{self.url}/api/v1/query?{qs}", timeout=10) as response:
            body = json.load(response)
        assert body["status"] == "success", body
        result: list[dict[str, Any]] = body["data"]["result"]
        return result

    def value(self, expr: str, at: str) -> float:
        result = self.query(expr, at)
        assert len(result) == 1, (expr, at, result)
        return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def prometheus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Prometheus]:
    """`turnout-watch replay DAY --backfill DIR`, then a real Prometheus on DIR with no scrape targets."""
    root = tmp_path_factory.mktemp("backfill")
    tsdb = root / "tsdb"
    run = CliRunner().invoke(cli, ["replay", str(DAY_2022), "--backfill", str(tsdb)])
    assert run.exit_code == 0, run.output + repr(run.exception)
    assert "kz-2022-11-20-presidential" in run.output
    config = root / "prometheus.yml"
    config.write_text("global:\n  scrape_interval: 1m\nscrape_configs: []\n", encoding="utf-8")
    port = free_port()
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(
        [
            PROMETHEUS,
            f"--config.file={config}",
            f"--storage.tsdb.path={tsdb}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            assert process.poll() is None, (root / "prometheus.log").read_text(errors="replace")[-3000:]
            try:
                with urllib.request.urlopen(f"{url}/-/ready", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "Prometheus did not become ready within 30 s"
            time.sleep(0.1)
        yield Prometheus(url)
    finally:
        process.terminate()
        process.wait(10)
        log.close()


def test_turkistan_at_noon_on_its_real_date(prometheus: Prometheus) -> None:
    expr = 'turnout_watch_region_turnout_percent{region="KZ-61"}'
    assert prometheus.value(expr, "2022-11-20T12:00:00+06:00") == 64.21
    assert prometheus.value(expr, "2022-11-20T11:59:00+06:00") == 27.03  # the 10:00 figure until noon
    assert prometheus.value(expr, "2022-11-20T13:30:00+06:00") == 64.21  # held between releases, not stale
    assert prometheus.query(expr, "2022-11-19T12:00:00+06:00") == []  # nothing the day before


def test_every_region_and_the_day_s_final_figures(prometheus: Prometheus) -> None:
    at = "2022-11-20T22:30:00+06:00"
    assert prometheus.value("count(turnout_watch_region_turnout_percent)", at) == 21
    assert prometheus.value('turnout_watch_region_turnout_percent{region="KZ"}', at) == 69.43
    assert prometheus.value('turnout_watch_region_delta_points{region="KZ-71"}', at) == pytest.approx(-0.07)
    assert prometheus.value('turnout_watch_region_rate_points_per_hour{region="KZ-71"}', at) == pytest.approx(-0.035)
    as_of = prometheus.value('turnout_watch_region_as_of_timestamp_seconds{region="KZ-71"}', at)
    assert as_of == 1668960000  # 2022-11-20T22:00+06:00
    named = prometheus.query('turnout_watch_region_info{region="KZ-61"}', at)
    assert named[0]["metric"]["name"] == "Turkistan Region"


def test_flag_counts_rise_at_the_flags_own_times(prometheus: Prometheus) -> None:
    election = 'election="kz-2022-11-20-presidential"'
    expr = f'turnout_watch_election_flags{{{election},detector="cross_sectional_jump",severity="critical"}}'
    assert prometheus.value(expr, "2022-11-20T11:59:00+06:00") == 0
    assert prometheus.value(expr, "2022-11-20T12:00:00+06:00") == 1  # Turkistan
    falling = 'turnout_watch_election_flags{detector="falling_turnout",severity="warning"}'
    assert prometheus.value(falling, "2022-11-20T21:59:00+06:00") == 0
    assert prometheus.value(falling, "2022-11-20T22:00:00+06:00") == 2  # Astana, Jetisu
    # Abai, Almaty Region, Jetisu (jump and fall), Astana, North Kazakhstan. The west held its last hour
    # of voting at 22:00 (UTC+5 until 2024): Aktobe, West Kazakhstan, Kyzylorda, Mangystau no longer flagged

    assert (
        prometheus.value('sum(turnout_watch_election_flags{severity="warning"})', "2022-11-20T23:00:00+06:00") == 4
    )  # Abai, Jetisu and Astana falling, North Kazakhstan after close (Almaty Region and Jetisu 20:00: info)
    # the grid's colour and the flags panel read these per-region gauges
    assert prometheus.value('turnout_watch_region_jump_z{region="KZ-61"}', "2022-11-20T12:00:00+06:00") == (
        pytest.approx(7.0, abs=0.05)
    )
    last = 'turnout_watch_region_last_flag_as_of_timestamp_seconds{region="KZ-61",detector="cross_sectional_jump"}'
    assert prometheus.value(last, "2022-11-20T15:00:00+06:00") == 1668924000  # noon, +06:00
    events = 'turnout_watch_events_processed_total{stream="releases"}'
    assert prometheus.value(events, "2022-11-20T23:00:00+06:00") == 7
    # a range query over the day sees the change, as a dashboard panel would (a gauge: delta, not increase)
    assert prometheus.value(f"delta({expr}[1h])", "2022-11-20T12:30:00+06:00") > 0


def test_a_day_without_releases_is_a_clear_error() -> None:
    with pytest.raises(BackfillError, match="no usable release"):
        day_families(DetectResult(), {})


def test_the_live_worker_s_families_with_their_times() -> None:
    """The same names, types and help as a worker's /metrics (so the dashboards read a backfilled day as
    a live one), written by client_python as OpenMetrics that its own parser reads back."""
    families = day_families(detect_day(DAY_2022), region_names(), step=1800)
    live = {m.name: (m.type, m.documentation) for m in PipelineMetrics(CollectorRegistry()).registry.collect()}
    written = {m.name: (m.type, m.documentation) for m in families}
    assert written == {name: live[name] for name in written}
    assert set(written) == {
        "turnout_watch_region_turnout_percent",
        "turnout_watch_region_as_of_timestamp_seconds",
        "turnout_watch_region_delta_points",
        "turnout_watch_region_rate_points_per_hour",
        "turnout_watch_region_jump_z",
        "turnout_watch_region_last_flag_timestamp_seconds",
        "turnout_watch_region_last_flag_as_of_timestamp_seconds",
        "turnout_watch_region_info",
        "turnout_watch_election_flags",
        "turnout_watch_events_processed",
    }  # no observer counts on the shipped day: no estimate families
    text = openmetrics_text(families)
    assert text.endswith("# EOF\n")
    noon = 1668924000.0  # 2022-11-20T12:00+06:00
    turkistan = {
        float(s.timestamp): s.value
        for f in text_string_to_metric_families(text)  # type: ignore[no-untyped-call]  # client_python's parser
        for s in f.samples
        if s.name == "turnout_watch_region_turnout_percent" and s.labels["region"] == "KZ-61"
    }
    assert turkistan[noon] == 64.21 and turkistan[noon - 1800] == 27.03
    assert list(turkistan) == sorted(turkistan)  # each series in time order, as promtool needs


def test_promtool_missing_is_a_clear_error(tmp_path: Path) -> None:
    from turnout_watch.services.backfill import backfill_day

    with pytest.raises(BackfillError, match="promtool"):
        backfill_day(DAY_2022, tmp_path / "tsdb", promtool=str(tmp_path / "no-such-promtool"))
