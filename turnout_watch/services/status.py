"""`turnout-watch status`: what `up` wrote in its state file, checked against what the components answer now.

Every figure comes from the component that owns it, asked at that moment: a process is up if its pid is
alive and its health URL answers; the last release and whether the next is overdue from the scraper's
/metrics; observer counts of the last 10 minutes from Prometheus (the intake's counter since its start
when Prometheus is not there); the spool from the intake's /healthz; worker lag from the broker
(`read_ends`, as `wait_drained` does); firing alerts and their receivers from Alertmanager's API v2.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from turnout_watch.core.errors import ConfigError
from turnout_watch.core.settings import load_settings
from turnout_watch.core.topics import TopicNames
from turnout_watch.services.pipeline import LocalPipeline

__all__ = ["ComponentStatus", "StackStatus", "collect_status", "load_state"]


@dataclass
class ComponentStatus:
    name: str
    role: str
    pid: int | None
    alive: bool
    healthy: bool
    restarts: int
    last_error: str
    url: str | None
    finished: bool = False  # a one-shot input (a drill's observers-sim) that completed

    @property
    def state(self) -> str:
        if self.finished and not self.alive:
            return "done"
        if self.alive and self.healthy:
            return "up"
        return "starting" if self.alive else "down"


@dataclass
class FiringAlert:
    name: str
    labels: dict[str, str]
    receivers: list[str]
    since: str


@dataclass
class StackStatus:
    state_file: Path
    up_pid: int
    up_alive: bool
    election: str
    timezone: str = "UTC"
    components: list[ComponentStatus] = field(default_factory=list)
    last_release_as_of: datetime | None = None
    overdue_seconds: float | None = None
    releases_published: float | None = None
    observer_counts_10m: float | None = None
    observer_counts_since_start: float | None = None
    spool_depth: int | None = None
    worker_lag: int | None = None
    alerts: list[FiringAlert] | None = None
    notifications: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)


def load_state(path: Path) -> dict[str, Any]:
    try:
        state: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"no state file at {path}: is `turnout-watch up` running with this data dir?") from exc
    except (OSError, ValueError) as exc:
        raise ConfigError(f"cannot read the state file {path}: {exc}") from exc
    return state


def _alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie (exited, not yet reaped by its SIGKILLed parent) is not running
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    return True


async def _get(session: aiohttp.ClientSession, url: str) -> tuple[int, str]:
    try:
        async with session.get(url) as response:
            return response.status, await response.text()
    except (aiohttp.ClientError, TimeoutError, OSError):
        return 0, ""


def _samples(text: str) -> dict[str, float]:
    """name{label=value,...} -> value, for the few series status reads."""
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[s.name] = out.get(s.name, 0.0) + s.value
    return out


async def collect_status(path: Path, lag_timeout: float = 5.0) -> StackStatus:
    state = load_state(path)
    comps: dict[str, Any] = state.get("components", {})
    status = StackStatus(path, int(state.get("pid", 0)), _alive(state.get("pid")), str(state.get("election", "")))
    status.notifications = list(state.get("notifications", []))
    status.timezone = str(state.get("timezone", "UTC"))
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3)) as session:

        async def one(name: str, c: dict[str, Any]) -> ComponentStatus:
            alive = _alive(c.get("pid"))
            healthy = alive
            if alive and c.get("health_url"):
                code, _ = await _get(session, c["health_url"])
                healthy = 200 <= code < 300
            if alive and name == "broker":
                healthy = c.get("state") in ("up", "recovering")
            return ComponentStatus(
                name, c.get("role", ""), c.get("pid"), alive, healthy, int(c.get("restarts", 0)),
                str(c.get("last_error") or ""), c.get("url"), c.get("state") == "done",
            )  # fmt: skip

        status.components = list(await asyncio.gather(*(one(n, c) for n, c in comps.items())))
        by_name = {c.name: c for c in status.components}
        scraper = comps.get("scraper")
        if scraper and by_name["scraper"].alive and scraper.get("url"):
            code, text = await _get(session, scraper["url"])
            if code == 200:
                samples = _samples(text)
                as_of = samples.get("turnout_watch_scrape_last_release_as_of_timestamp_seconds")
                if as_of:
                    status.last_release_as_of = datetime.fromtimestamp(as_of, UTC)
                status.overdue_seconds = samples.get("turnout_watch_scrape_release_overdue_seconds")
        intake = comps.get("intake")
        if intake and by_name["intake"].alive and intake.get("health_url"):
            code, text = await _get(session, intake["health_url"])
            if code == 200:
                status.spool_depth = int(json.loads(text).get("spool_depth", 0))
            code, text = await _get(session, intake["health_url"].replace("/healthz", "/metrics"))
            if code == 200:
                counts = [
                    s.value
                    for f in text_string_to_metric_families(text)
                    for s in f.samples
                    if s.name == "turnout_watch_intake_counts_total" and s.labels.get("outcome") == "accepted"
                ]
                status.observer_counts_since_start = sum(counts)
        prometheus = comps.get("prometheus")
        if prometheus and by_name["prometheus"].alive and prometheus.get("url"):
            query = 'sum(increase(turnout_watch_intake_counts_total{outcome="accepted"}[10m]))'
            code, text = await _get(session, f"{prometheus['url']}/api/v1/query?query={query}")
            if code == 200:
                result = json.loads(text)["data"]["result"]
                status.observer_counts_10m = float(result[0]["value"][1]) if result else 0.0
        alertmanager = comps.get("alertmanager")
        if alertmanager and by_name["alertmanager"].alive and alertmanager.get("url"):
            code, text = await _get(session, f"{alertmanager['url']}/api/v2/alerts?active=true&silenced=false")
            if code == 200:
                status.alerts = [
                    FiringAlert(
                        a["labels"].get("alertname", ""), a["labels"], [r["name"] for r in a.get("receivers", [])],
                        a.get("startsAt", ""),
                    )
                    for a in json.loads(text)
                    if a.get("status", {}).get("state") == "active"
                ]  # fmt: skip
            else:
                status.problems.append(f"Alertmanager answered HTTP {code}")
    if status.up_alive or any(c.alive for c in status.components):
        settings = load_settings(
            broker=state["broker"], app_id=state["app_id"], topic_prefix=state["topic_prefix"],
            partitions=state["partitions"],
        )  # fmt: skip
        topics = TopicNames.from_settings(settings)
        check = LocalPipeline(settings, bootstrap=state["broker"], topics=topics)
        try:
            status.worker_lag = await asyncio.wait_for(
                check.consumer_lag([topics.releases, topics.observer_counts, topics.station_counts]), lag_timeout
            )
        except Exception as exc:  # a broker that is down or restarting: say so, do not fail the whole report
            status.problems.append(f"worker lag unknown: {exc or type(exc).__name__}")
    return status
