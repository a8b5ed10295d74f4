"""Alerts reach people: a replayed jump, through real Prometheus and Alertmanager, to each coordinator.

The production path on loopback: 20 Nov 2022 up to 12:30 goes through the tansu broker to a Faust
worker, whose /metrics Debian's Prometheus scrapes with the generated rule file; Prometheus sends
to Debian's Alertmanager running the generated routing (plus the Telegram token, as a deployment
writes it); Alertmanager notifies a webhook, an SMTP sink and a stand-in for Telegram's Bot API. The
12:00 Turkistan jump must reach the south coordinator on all three channels and the lead by mail
(it is critical), reach no one covering Almaty, and resolve once the flag is older than the window.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import shutil
import stat
import subprocess
import time
from collections.abc import Callable
from datetime import time as clock
from pathlib import Path
from typing import Any

import pytest
import yaml
from aiokafka import AIOKafkaProducer

from dashboards.build import render
from dashboards.routing import TELEGRAM_TOKEN_PLACEHOLDER, Coordinators, write_runtime_alertmanager
from ingest.day_publisher import ReplayPublisher
from tests.support.broker import isolated_settings
from tests.support.notifications import HttpSink, SmtpSink, telegram_api
from tests.support.paths import DAY_2022
from tests.support.processes import process
from turnout_watch.core.dayfile import DayFile, load_day
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.services.broker import EmbeddedBroker, free_port
from turnout_watch.services.detect import detect_day
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.services.replay import FlagCollector

pytestmark = pytest.mark.integration
FLAG_WINDOW = 8  # seconds a flag keeps TurnoutFlagRaised firing here (30 minutes in the shipped config)
TOKEN = "123456:test-bot-token"
SMTP_PASSWORD = "smtp-secret-of-the-test"
SOUTH, ALMATY, LEAD = "south@example.test", "almaty@example.test", "lead@example.test"
SOUTH_CHAT = -1001000000001


def day_between(start: clock, end: clock) -> DayFile:
    """20 Nov 2022's events from `start` up to `end` (capital's clock)."""
    day = load_day(DAY_2022)
    tz = day.election.tz
    kept = tuple(e for e in day.events if start <= e.event_time.astimezone(tz).time() <= end)
    return dataclasses.replace(day, events=kept)


async def until(what: str, check: Callable[[], bool], timeout: float, logs: list[Path]) -> float:
    """Wait for `check()`; return the monotonic time it came true, or fail with the processes' logs."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return time.monotonic()
        await asyncio.sleep(0.05)
    tails = "\n".join(
        f"--- {log.name}\n" + "\n".join(log.read_text(errors="replace").splitlines()[-15:]) for log in logs
    )
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n{tails}")


def coordinators_file(tmp: Path, webhooks: HttpSink, telegram: HttpSink, smtp: SmtpSink) -> Path:
    (tmp / "telegram-bot-token").write_text(TOKEN + "\n")
    (tmp / "smtp-password").write_text(SMTP_PASSWORD)  # no newline: Alertmanager 0.25 would send it too
    path = tmp / "coordinators.toml"
    path.write_text(
        f"""
[lead]
name = "Lead"
email = "{LEAD}"

[[coordinator]]
name = "South"
regions = ["Turkistan Region", "Shymkent"]
webhook = "{webhooks.url}/south"
email = "{SOUTH}"
telegram = "{SOUTH_CHAT}"

[[coordinator]]
name = "Almaty"
regions = ["Almaty", "Almaty Region", "Jetisu Region"]
webhook = "{webhooks.url}/almaty"
email = "{ALMATY}"

[smtp]
smarthost = "127.0.0.1:{smtp.port}"
from = "turnout-watch@example.test"
username = "turnout-watch"
password_file = "{tmp / "smtp-password"}"

[telegram]
bot_token_file = "{tmp / "telegram-bot-token"}"
api_url = "{telegram.url}"

[timing]
group_wait = "1s"
group_interval = "1s"
evaluation_interval = "1s"
flag_window = "{FLAG_WINDOW}s"
"""
    )
    return path


def turkistan(notifications: list[Any], status: str) -> list[Any]:
    """Webhook notifications that carry the Turkistan jump with this status."""
    return [
        n
        for n in notifications
        for a in n.body["alerts"]
        if a["labels"].get("region") == "KZ-61"
        and a["labels"].get("detector") == "cross_sectional_jump"
        and a["status"] == status
    ]


def test_a_replayed_turkistan_jump_reaches_the_south_coordinator_only_and_resolves(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    morning, noon = day_between(clock(0), clock(11, 59)), day_between(clock(12), clock(12, 30))
    day = day_between(clock(0), clock(12, 30))
    expected = {(f.region_code, f.detector, f.severity) for f in detect_day(day, history_dir=SHIPPED_ELECTIONS).flags}
    assert expected == {("KZ-61", "cross_sectional_jump", "critical")}  # nothing at all for Almaty's regions
    amtool, alertmanager = (
        shutil.which("amtool"),
        shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"),
    )
    assert amtool and alertmanager and shutil.which("prometheus"), "`make system-deps` installs them"
    settings = isolated_settings(broker.bootstrap, tmp_path / "run")
    ports = {"prometheus": free_port(), "alertmanager": free_port()}
    logs = [tmp_path / "prometheus.log", tmp_path / "alertmanager.log", tmp_path / "run" / "worker-0.log"]
    timings: dict[str, float] = {}

    async def run() -> None:
        webhooks, telegram, smtp = await HttpSink().start(), await telegram_api().start(), await SmtpSink().start()
        try:
            people_file = coordinators_file(tmp_path, webhooks, telegram, smtp)
            people = Coordinators.load(people_file)
            generated = render(people_file)
            am_generated = generated[Path("alertmanager/alertmanager.yml")]
            assert TOKEN not in am_generated and SMTP_PASSWORD not in am_generated  # secrets stay in their files
            assert TELEGRAM_TOKEN_PLACEHOLDER in am_generated
            runtime = write_runtime_alertmanager(people, tmp_path / "am" / "alertmanager.yml")
            assert stat.S_IMODE(runtime.stat().st_mode) == 0o600
            checked = subprocess.run([amtool, "check-config", str(runtime)], capture_output=True, text=True)
            assert checked.returncode == 0, checked.stdout + checked.stderr
            rules = tmp_path / "rules.yml"
            rules.write_text(generated[Path("prometheus/rules.yml")])
            prometheus_yml = tmp_path / "prometheus.yml"
            prometheus_yml.write_text(
                yaml.safe_dump(
                    {
                        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
                        "rule_files": [str(rules)],
                        "alerting": {
                            "alertmanagers": [{"static_configs": [{"targets": [f"127.0.0.1:{ports['alertmanager']}"]}]}]
                        },
                        "scrape_configs": [
                            {
                                "job_name": "turnout-watch",
                                "static_configs": [{"targets": [f"127.0.0.1:{settings.metrics_port}"]}],
                            }
                        ],
                    }
                )
            )
            with (
                process(
                    [
                        alertmanager,
                        f"--config.file={runtime}",
                        f"--storage.path={tmp_path / 'am'}",
                        f"--web.listen-address=127.0.0.1:{ports['alertmanager']}",
                        "--cluster.listen-address=",
                        "--log.level=debug",
                    ],
                    logs[1],
                ),
                process(
                    [
                        "prometheus",
                        f"--config.file={prometheus_yml}",
                        f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                        f"--web.listen-address=127.0.0.1:{ports['prometheus']}",
                        "--log.level=warn",
                    ],
                    logs[0],
                ),
            ):
                async with LocalPipeline(settings, workers=1) as pipeline:
                    assert pipeline.topics is not None
                    flags = FlagCollector(pipeline.bootstrap, pipeline.topics.flags, day.election.election)
                    flagged: dict[str, float] = {}
                    flags.on_flag = lambda flag: flagged.setdefault(flag["region_code"], time.monotonic())
                    await flags.start()
                    producer = AIOKafkaProducer(bootstrap_servers=pipeline.bootstrap, acks="all")
                    await producer.start()
                    try:
                        publisher = ReplayPublisher(producer, pipeline.topics)
                        await publisher.publish_day(morning, None)
                        await pipeline.wait_drained([pipeline.topics.releases], timeout=90)  # the worker is up
                        published = time.monotonic()
                        await publisher.publish_day(noon, None)  # the 12:00 release, Turkistan's jump in it
                        await until("the worker flags Turkistan", lambda: "KZ-61" in flagged, 90, logs)
                    finally:
                        await producer.stop()
                        await flags.stop()
                    south = webhooks.received.setdefault("/south", [])
                    fired = await until(
                        "south's webhook hears of it", lambda: bool(turkistan(south, "firing")), 30, logs
                    )
                    timings["release published → flag on the topic"] = flagged["KZ-61"] - published
                    timings["release published → webhook"] = fired - published
                    timings["flag → webhook"] = fired - flagged["KZ-61"]
                    mailed = await until("south's mail arrives", lambda: bool(smtp.to(SOUTH)), 15, logs)
                    timings["flag → e-mail"] = mailed - flagged["KZ-61"]
                    chats = telegram.received.setdefault(f"/bot{TOKEN}/sendMessage", [])
                    told = await until("south's Telegram chat hears of it", lambda: bool(chats), 15, logs)
                    timings["flag → telegram"] = told - flagged["KZ-61"]
                    resolved = await until(
                        "south's webhook hears it resolved",
                        lambda: bool(turkistan(south, "resolved")),
                        FLAG_WINDOW + 30,
                        logs,
                    )
                    timings["flag → resolved at webhook"] = resolved - flagged["KZ-61"]
                    await until(
                        "the resolved mail and Telegram message arrive",
                        lambda: any("RESOLVED" in m.subject for m in smtp.to(SOUTH)) and len(chats) >= 2,
                        15,
                        logs,
                    )
                    await asyncio.sleep(2)  # a group interval more, for anything addressed to Almaty to show up

            assert webhooks.received.get("/almaty", []) == [] and smtp.to(ALMATY) == []
            first = turkistan(south, "firing")[0].body
            assert first["receiver"] == "south" and first["groupLabels"]["region"] == "KZ-61"
            assert first["commonLabels"]["severity"] == "critical"
            subjects = [m.subject for m in smtp.to(SOUTH)]
            assert any("FIRING" in s and "KZ-61" in s for s in subjects), subjects
            assert smtp.to(LEAD) and all("KZ-61" in m.subject for m in smtp.to(LEAD))  # critical: the lead too
            assert {m.login for m in smtp.mails} == {("turnout-watch", SMTP_PASSWORD)}  # read from password_file
            assert {int(c.body["chat_id"]) for c in chats} == {SOUTH_CHAT}
            assert "KZ-61" in chats[0].body["text"]
        finally:
            await webhooks.stop()
            await telegram.stop()
            await smtp.stop()

    asyncio.run(run())
    report = os.environ.get("TURNOUT_WATCH_ALERT_TIMINGS")
    if report:
        Path(report).write_text("".join(f"{k}: {v:.2f} s\n" for k, v in timings.items()))
    assert timings["release published → webhook"] < 10, timings
