"""Every PromQL the watch room runs, on a real Prometheus scraping a real pipeline.

The whole production path on loopback: the CEC simulator serves 20 Nov 2022 an hour a second, the
scraper publishes each release to the tansu broker, a Faust worker runs the detectors, the observer
intake takes simulated observers' counts, and Debian's Prometheus scrapes all three with the
generated rule file loaded. Then every panel's expression and every alert rule is evaluated over
Prometheus's HTTP API. The polls panels (every region on its own clock) are also evaluated with `time()`
set to instants of the replayed day, so open/closed per region is checked where it differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
import yaml

from dashboards.alerts import RULES
from dashboards.build import ROOT as DASHBOARDS
from dashboards.build import render
from dashboards.watchroom import CLOSES_LATER, ROSE_AFTER_OWN_CLOSE, expressions, polls_now
from tests.support.broker import isolated_settings
from tests.support.paths import DAY_2022, ROOT
from tests.support.processes import process as run_process
from turnout_watch.services.broker import EmbeddedBroker, free_port
from turnout_watch.services.pipeline import LocalPipeline

pytestmark = pytest.mark.integration
BIN = str(Path(sys.executable).with_name("turnout-watch"))
ELECTION = "kz-2022-11-20-presidential"
#: On UTC+5 until March 2024: polls closed at 21:00 capital time, an hour after Astana's.
WEST = {"KZ-15", "KZ-23", "KZ-27", "KZ-43", "KZ-47"}
CAPITAL = ZoneInfo("Asia/Almaty")  # UTC+6 in 2022
#: `time()` in the polls panels replaced by these instants of the replayed day (capital time).
POLLS_AT = {hour: datetime(2022, 11, 20, int(hour[:2]), int(hour[3:]), tzinfo=CAPITAL) for hour in ("07:30", "20:30")}


def concrete(expr: str) -> str:
    return expr.replace("$election", ".*").replace("$region", "KZ-61")


def by_region(result: list[dict[str, Any]]) -> dict[str, float]:
    return {s["metric"]["region"]: float(s["value"][1]) for s in result}


def process(
    args: list[str], log: Path, env: dict[str, str]
) -> contextlib.AbstractContextManager[subprocess.Popen[bytes]]:
    return run_process(args, log, env, ROOT)


async def query(session: aiohttp.ClientSession, base: str, expr: str) -> list[dict[str, Any]]:
    async with session.get(f"{base}/api/v1/query", params={"query": expr}) as response:
        body = await response.json()
    assert body["status"] == "success", (expr, body)
    return list(body["data"]["result"])


async def wait_for(session: aiohttp.ClientSession, base: str, expr: str, timeout: float = 90) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = await query(session, base, expr)
        if result:
            return result
        await asyncio.sleep(0.5)
    raise AssertionError(f"no series for {expr} within {timeout:.0f} s")


@pytest.fixture(scope="module")
def watch_room(broker: EmbeddedBroker, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    tmp = tmp_path_factory.mktemp("watchroom")
    settings = isolated_settings(broker.bootstrap, tmp / "run")
    env = {
        **os.environ,
        "TURNOUT_WATCH_BROKER": broker.bootstrap,
        "TURNOUT_WATCH_TOPIC_PREFIX": settings.topic_prefix,
        "TURNOUT_WATCH_APP_ID": settings.app_id,
        "TURNOUT_WATCH_DATA_DIR": str(tmp / "run"),
    }
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    ports = {name: free_port() for name in ("sim", "scraper", "intake", "prometheus")}
    config = tmp / "prometheus.yml"
    targets = [f"127.0.0.1:{p}" for p in (settings.metrics_port, ports["scraper"], ports["intake"])]
    config.write_text(
        yaml.safe_dump(
            {
                "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                "rule_files": [str(DASHBOARDS / "prometheus" / "rules.yml")],
                "scrape_configs": [{"job_name": "turnout-watch", "static_configs": [{"targets": targets}]}],
            }
        )
    )
    results: dict[str, Any] = {}

    async def run() -> None:
        async with LocalPipeline(settings, workers=1) as pipeline, aiohttp.ClientSession() as session:
            base = f"http://127.0.0.1:{ports['prometheus']}"
            speed = "3600"
            with (
                process(
                    [
                        "prometheus",
                        f"--config.file={config}",
                        f"--storage.tsdb.path={tmp / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                        "--log.level=warn",
                    ],
                    tmp / "prometheus.log",
                    env,
                ),
                process(
                    [BIN, "cec-sim", str(DAY_2022), "--port", str(ports["sim"]), "--speed", speed, "--start", "09:58"],
                    tmp / "sim.log",
                    env,
                ),
                process(
                    [BIN, "observers", "serve", "--day", str(DAY_2022), "--port", str(ports["intake"])],
                    tmp / "intake.log",
                    env,
                ),
            ):
                await asyncio.sleep(1.5)  # the simulator and the intake bind their ports
                with process(
                    [
                        BIN,
                        "scrape",
                        "--base-url",
                        f"http://127.0.0.1:{ports['sim']}",
                        "--day",
                        str(DAY_2022),
                        "--speed",
                        speed,
                        "--start",
                        "09:58",
                        "--metrics-port",
                        str(ports["scraper"]),
                        "--workers",
                        "0",
                    ],
                    tmp / "scraper.log",
                    env,
                ) as scraper:
                    posted = subprocess.run(
                        [
                            BIN,
                            "observers-sim",
                            str(DAY_2022),
                            "--stations",
                            "300",
                            "--url",
                            f"http://127.0.0.1:{ports['intake']}",
                            "--speed",
                            "max",
                        ],
                        env=env,
                        cwd=ROOT,
                        capture_output=True,
                        text=True,
                        timeout=120,
                    )
                    assert posted.returncode == 0, posted.stdout + posted.stderr
                    await wait_for(
                        session,
                        base,
                        f'turnout_watch_region_turnout_percent{{region="KZ-71", election="{ELECTION}"}} == 48.6',
                    )
                    await wait_for(session, base, "turnout_watch_region_observed_stations")
                    await asyncio.sleep(3)  # a few more scrapes, so rate() has two samples everywhere
                    results["scraper_exit"] = scraper.poll()
                    results["panels"] = {}
                    for name in ("watch-room", "region"):
                        model = yaml.safe_load(render()[Path(f"grafana/dashboards/{name}.json")])
                        for title, expr in expressions(model):
                            results["panels"][(name, title, concrete(expr))] = await query(
                                session, base, concrete(expr)
                            )
                    polls = concrete(polls_now())
                    results["polls_at"] = {
                        hour: await query(session, base, polls.replace("time()", f"{at.timestamp():.0f}"))
                        for hour, at in POLLS_AT.items()
                    }
                    results["rules"] = {r.name: await query(session, base, r.expr) for r in RULES}
                    results["rule_queries"] = {r.name: await query(session, base, r.query) for r in RULES}
                    results["selectors"] = {
                        metric: await query(session, base, f"count({metric})") for metric in _metrics(RULES)
                    }
                    results["alerts"] = await wait_for(session, base, 'ALERTS{alertname="TurnoutFlagRaised"}', 45)
            assert pipeline.topics is not None

    asyncio.run(run())
    report = os.environ.get("TURNOUT_WATCH_PROMQL_REPORT")
    if report:  # for closing notes: what each expression returned
        summary = {f"{d} / {t}: {e}": _summary(r) for (d, t, e), r in results["panels"].items()}
        summary |= {
            f"rule {n}: {r.expr}": _summary(res) for n, res in results["rules"].items() for r in RULES if r.name == n
        }
        Path(report).write_text(json.dumps(summary, indent=1, ensure_ascii=False))
    return results


def _summary(result: list[dict[str, Any]]) -> str:
    labels = sorted(
        "{"
        + ",".join(
            f"{k}={v}"
            for k, v in s["metric"].items()
            if k in ("region", "detector", "severity", "reason", "outcome", "stream", "source")
        )
        + "}"
        + f"={float(s['value'][1]):.4g}"
        for s in result
    )
    return f"{len(result)} series: " + "; ".join(labels[:6]) + (" ..." if len(labels) > 6 else "")


def _metrics(rules: Any) -> set[str]:
    import re

    found = set()
    for rule in rules:
        found |= set(re.findall(r"turnout_watch_[a-z_]+", rule.query))
    return found


def test_every_panel_expression_parses_and_returns_series(watch_room: dict[str, Any]) -> None:
    empty = [key for key, result in watch_room["panels"].items() if not result]
    assert empty == [], f"panels with no series: {empty}"
    assert len(watch_room["panels"]) >= 25


def test_every_rule_parses_and_its_metrics_exist(watch_room: dict[str, Any]) -> None:
    assert set(watch_room["rules"]) == {r.name for r in RULES}  # each evaluated without a parse error
    missing = [metric for metric, result in watch_room["selectors"].items() if not result]
    assert missing == [], f"metrics the rules need but nothing exports: {missing}"


def test_flag_rule_returns_the_regions_observers_reported(watch_room: dict[str, Any]) -> None:
    firing = {
        (s["metric"]["region"], s["metric"]["detector"], s["metric"]["severity"])
        for s in watch_room["rules"]["TurnoutFlagRaised"]
    }
    assert ("KZ-61", "cross_sectional_jump", "critical") in firing  # Turkistan at 12:00
    assert ("KZ-10", "cross_sectional_jump", "warning") in firing  # Abai at 14:00
    assert ("KZ-71", "falling_turnout", "warning") in firing  # Astana at 22:00
    assert ("KZ-33", "falling_turnout", "warning") in firing  # Jetisu at 22:00
    assert not any(region == "KZ-75" and detector == "cross_sectional_jump" for region, detector, _ in firing)
    alerting = {s["metric"]["region"] for s in watch_room["alerts"]}
    assert "KZ-61" in alerting  # Prometheus itself evaluated the generated rule file


def test_polls_panels_put_every_region_on_its_own_clock(watch_room: dict[str, Any]) -> None:
    panels = {(board, expr): result for (board, _, expr), result in watch_room["panels"].items()}
    # the polls of all twenty regions and the country (KZ) are over by now (the day is 2022): closed (2)
    now = by_region(panels[("watch-room", concrete(polls_now()))])
    assert len(now) == 21 and set(now.values()) == {2.0}, now
    assert by_region(panels[("region", concrete(polls_now('election=~"$election", region="$region"')))]) == {
        "KZ-61": 2.0
    }
    # the west closed an hour after the commission's 20:00, Astana and the other UTC+6 regions at it
    later = by_region(panels[("watch-room", concrete(CLOSES_LATER))])
    assert {code for code, hours in later.items() if hours == 1.0} == WEST
    assert {hours for code, hours in later.items() if code not in WEST} == {0.0} and later["KZ-71"] == 0.0
    # 07:30 capital time: the west (06:30 local) not yet open, the rest open; 20:30: the west still voting
    at_0730, at_2030 = (by_region(watch_room["polls_at"][hour]) for hour in ("07:30", "20:30"))
    assert {code for code, state in at_0730.items() if state == 0.0} == WEST
    assert {code for code, state in at_0730.items() if state == 1.0} == set(at_0730) - WEST
    assert {code for code, state in at_2030.items() if state == 1.0} == WEST
    assert {code for code, state in at_2030.items() if state == 2.0} == set(at_2030) - WEST
    # the rise since each region's own close: the 22:00 figure minus the 20:00 one (as of 20:00 capital time,
    # before every region's close), e.g. Aktobe voting until 21:00, North Kazakhstan and Astana's fall
    rose = by_region(panels[("watch-room", concrete(ROSE_AFTER_OWN_CLOSE))])
    assert len(rose) == 21 and "KZ" in rose  # the country too, on the commission's clock
    expected = {"KZ-15": 0.61, "KZ-27": 0.90, "KZ-43": 0.76, "KZ-47": 0.81, "KZ-23": 0.0, "KZ-59": 0.77}
    expected |= {"KZ-71": -0.07, "KZ-33": -0.01, "KZ-10": 0.0}
    assert {code: round(rose[code], 2) for code in expected} == expected


def test_healthy_run_raises_no_health_alerts(watch_room: dict[str, Any]) -> None:
    for name in (
        "CecReleaseOverdue",
        "ScraperFailing",
        "PipelineLagging",
        "NoObserverReports",
        "OfficialAboveObserved",
    ):
        assert watch_room["rules"][name] == [], name
    assert watch_room["rule_queries"]["CecReleaseOverdue"]  # the scraper exported what the rule reads
    assert watch_room["rule_queries"]["PipelineLagging"]
