"""`turnout-watch up`: the whole watch room on one machine, every part a supervised child of one process.

One broker for everything: the embedded tansu (unless an external `--broker` is given) is started
here, once, and its address goes to every component through `TURNOUT_WATCH_BROKER`, so no component
starts a broker of its own. Around it: N Faust workers, the observer intake, the CEC scraper and, when
the Debian binaries are installed, Prometheus (a generated config scraping all of them, with the
generated rules) and Alertmanager (the coordinators' routing, `write_runtime_alertmanager`). A drill
adds its simulators as extra inputs (`ExtraInput`; the wiring lives in `cli/up.py`, above `sim/`).

Layout of the data directory (the one place everything writes):

    up.json                      the state file: ports, pids, restarts, last errors (`turnout-watch status`)
    logs/<component>.log         one log file per component (and logs/up.log for this process)
    archive/<election>/          the scraper's raw archive (the broker's recovery reads it)
    observers.sqlite3, spool/    the intake's accepted counts (ditto)
    worker-<n>/                  each Faust worker's data dir
    prometheus/, alertmanager/   generated configs and their storage

Start order: broker, topics, Prometheus and Alertmanager, workers, the intake, the scraper (drill
simulators around them). Stop order: inputs first; once the workers drained what the inputs published
(`LocalPipeline.wait_pipeline_drained`: ends by `read_ends`, each topic's offsets from the consumer group
that commits it, `core.topics.consumer_groups`), Prometheus and Alertmanager
(so no alert is "resolved" to a coordinator because its worker went away), then the workers, then the
broker. When the embedded broker dies it is restarted on the same port and the day is
published again from the scraper's archive and the intake's database (`services.restore`); the workers
notice the empty topics themselves (streams/broker_reset.py) and keep their state.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web
from aiokafka.errors import KafkaError
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from dashboards.build import EXAMPLE_COORDINATORS, render
from dashboards.routing import Coordinators, duration_seconds, write_runtime_alertmanager
from ingest.archive import is_archive
from ingest.observers import store
from turnout_watch.core.dayfile import read_election
from turnout_watch.core.errors import ConfigError, TurnoutWatchError
from turnout_watch.core.logs import FORMAT
from turnout_watch.core.metrics_endpoint import metrics_app
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames, ensure_topics
from turnout_watch.services.broker import _answers, free_port, launch_broker
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.services.replay import FlagCollector, format_flag
from turnout_watch.services.restore import restore
from turnout_watch.services.supervisor import Backoff, Component, Restart, Supervisor, SupervisorMetrics

log = logging.getLogger(__name__)

__all__ = ["STATE_FILE", "ExtraInput", "Stack", "StackPlan", "alertmanager_binary", "cli_argv"]

STATE_FILE = "up.json"
#: Tries of `restore` onto a broker that came back empty (see `Stack._recover_broker`).
RESTORE_ATTEMPTS = 3


def cli_argv(*args: str) -> list[str]:
    """A `turnout-watch` command line run with this interpreter (works without the console script on PATH)."""
    return [sys.executable, "-m", "turnout_watch.cli", *args]


def alertmanager_binary() -> str | None:
    """Debian names it prometheus-alertmanager; upstream's tarball, alertmanager."""
    return shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@dataclass(frozen=True)
class ExtraInput:
    """A component a caller adds to the inputs (a drill's simulators): a `turnout-watch` subcommand."""

    name: str
    args: tuple[str, ...]
    port: int | None = None
    health_path: str | None = None
    restart: Restart = "always"
    before_scraper: bool = True  # cec-sim must serve before the scraper polls it; observers-sim needs the intake
    url: str | None = None


@dataclass
class StackPlan:
    """What `up` was asked for. Ports left at 0 are chosen free at start and kept across restarts."""

    settings: Settings
    day: Path  # the election file (its first line names the election)
    source: str = "cec-kz"
    coordinators: Path | None = None
    workers: int = 1
    scrape_args: tuple[str, ...] = ()  # extra `scrape` options (a drill: --base-url, --speed, --start)
    extra_inputs: tuple[ExtraInput, ...] = ()
    mode: str = "live"
    monitoring: bool = True
    stop_after: float | None = None  # seconds; None = until Ctrl-C / SIGTERM
    drain_timeout: float = 60.0
    backoff: Backoff = field(default_factory=Backoff)
    print_flags: bool = True
    up_port: int = 0  # up's own /metrics (and a drill's webhook receivers)


def child_env(settings: Settings, bootstrap: str, **overrides: Any) -> dict[str, str]:
    """The environment of every child: all our settings (so a --config reaches them), the one broker."""
    env = {**os.environ, "TURNOUT_WATCH_BROKER": bootstrap}
    env.pop("KAFKA_BOOTSTRAP_SERVERS", None)
    env.pop("TURNOUT_WATCH_CONFIG", None)  # everything it said is in the variables below
    for name, value in settings.model_dump(exclude={"broker"}).items():
        if value is None:
            env.pop(f"TURNOUT_WATCH_{name.upper()}", None)
            continue
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        env[f"TURNOUT_WATCH_{name.upper()}"] = str(value)
    for name, value in overrides.items():
        env[f"TURNOUT_WATCH_{name.upper()}"] = str(value)
    return env


class Stack:
    """Plans ports and files, starts the components in order, supervises them, stops them in order."""

    def __init__(self, plan: StackPlan, say: Callable[[str], None] = print) -> None:
        self.plan, self.say = plan, say
        settings = plan.settings
        self.data_dir = settings.data_dir.resolve()
        self.settings = settings.model_copy(update={"data_dir": self.data_dir})
        self.election = read_election(plan.day).election
        self.logs = self.data_dir / "logs"
        self.state_path = self.data_dir / STATE_FILE
        self.archive_dir = self.data_dir / "archive" / self.election
        self.embedded = not settings.broker
        self.broker_port = free_port() if self.embedded else 0
        self.bootstrap = settings.broker or f"127.0.0.1:{self.broker_port}"
        self.topics = TopicNames.from_settings(settings)
        self.registry = CollectorRegistry()
        self.supervisor = Supervisor(SupervisorMetrics(self.registry), plan.backoff, on_change=self.write_state)
        self.host = settings.metrics_host
        self.up_port = plan.up_port or free_port()
        self.started = time.monotonic()
        self.started_at = datetime.now(UTC)
        self.healthy_after: float | None = None
        self.notifications: list[dict[str, Any]] = []
        self.flags_seen = 0
        self._stop = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._flags: FlagCollector | None = None
        self._state_dirty = False

    # -- planning ------------------------------------------------------------------------------------

    def url(self, port: int, path: str = "") -> str:
        return f"http://{self.host}:{port}{path}"

    def plan_components(self) -> None:
        plan, settings = self.plan, self.settings
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.logs.mkdir(parents=True, exist_ok=True)
        add = self.supervisor.add
        if self.embedded:
            add(
                Component(
                    "broker", "broker", [], self.logs / "broker.log", url=f"kafka://{self.bootstrap}",
                    spawn=self._spawn_broker, probe=self._broker_answers, after_restart=self._recover_broker,
                )
            )  # fmt: skip
        self.worker_ports: list[int] = []
        for n in range(plan.workers):
            port = free_port()
            self.worker_ports.append(port)
            add(
                Component(
                    f"worker-{n}", "worker", cli_argv("worker"), self.logs / f"worker-{n}.log",
                    env=child_env(settings, self.bootstrap, metrics_port=port, data_dir=self.data_dir / f"worker-{n}"),
                    url=self.url(port, "/metrics"), health_url=self.url(port, "/metrics"),
                )
            )  # fmt: skip
        self.intake_port = settings.observers_port or free_port()
        base_env = child_env(settings, self.bootstrap)
        intake = Component(
            "intake", "input",
            cli_argv("observers", "serve", "--day", str(plan.day), "--host", settings.observers_host,
                     "--port", str(self.intake_port)),
            self.logs / "intake.log", env=base_env,
            url=f"http://{settings.observers_host}:{self.intake_port}/",
            health_url=f"http://{settings.observers_host}:{self.intake_port}/healthz",
        )  # fmt: skip
        self.scraper_port = free_port()
        scraper = Component(
            "scraper", "input",
            cli_argv("scrape", "--source", plan.source, "--day", str(plan.day), "--archive", str(self.archive_dir),
                     "--metrics-port", str(self.scraper_port), "--workers", "0", *plan.scrape_args),
            self.logs / "scraper.log", env=base_env,
            url=self.url(self.scraper_port, "/metrics"), health_url=self.url(self.scraper_port, "/healthz"),
        )  # fmt: skip
        extras = {
            e.name: Component(
                e.name, "input", cli_argv(*e.args), self.logs / f"{e.name}.log", env=base_env, restart=e.restart,
                url=e.url or (self.url(e.port) if e.port else None),
                health_url=self.url(e.port, e.health_path) if e.port and e.health_path else None,
            )
            for e in plan.extra_inputs
        }  # fmt: skip
        self.first_inputs = [e.name for e in plan.extra_inputs if e.before_scraper]
        self.late_inputs = [e.name for e in plan.extra_inputs if not e.before_scraper]
        add(intake)
        for name in self.first_inputs:
            add(extras[name])
        add(scraper)
        for name in self.late_inputs:
            add(extras[name])
        if plan.monitoring:
            self._plan_monitoring()

    def _plan_monitoring(self) -> None:
        prometheus, alertmanager = shutil.which("prometheus"), alertmanager_binary()
        if not prometheus:
            self.say("prometheus not installed (Debian: prometheus): running without Prometheus and Alertmanager")
            return
        coordinators = self.plan.coordinators or EXAMPLE_COORDINATORS
        people = Coordinators.load(coordinators)
        am_dir, prom_dir = self.data_dir / "alertmanager", self.data_dir / "prometheus"
        prom_dir.mkdir(parents=True, exist_ok=True)
        rules = prom_dir / "rules.yml"
        rules.write_text(render(coordinators)[Path("prometheus/rules.yml")], encoding="utf-8")
        self.am_port: int | None = None
        if alertmanager:
            try:
                runtime = write_runtime_alertmanager(people, am_dir / "alertmanager.yml")
            except ConfigError as exc:
                self.say(f"Alertmanager not started: {exc}")
            else:
                self.am_port = free_port()
                self.supervisor.add(
                    Component(
                        "alertmanager", "monitor",
                        [alertmanager, f"--config.file={runtime}", f"--storage.path={am_dir / 'data'}",
                         f"--web.listen-address={self.host}:{self.am_port}", "--cluster.listen-address=",
                         f"--web.external-url={self.url(self.am_port)}"],
                        self.logs / "alertmanager.log", url=self.url(self.am_port),
                        health_url=self.url(self.am_port, "/-/ready"),
                    )
                )  # fmt: skip
        else:
            self.say("alertmanager not installed (Debian: prometheus-alertmanager): alerts are evaluated, not sent")
        interval = people.timing.evaluation_interval
        scrape = interval if duration_seconds(interval) <= 15 else "15s"
        jobs = {
            "turnout-watch-worker": [f"{self.host}:{p}" for p in self.worker_ports],
            "turnout-watch-scraper": [f"{self.host}:{self.scraper_port}"],
            "turnout-watch-intake": [f"{self.settings.observers_host}:{self.intake_port}"],
            "turnout-watch-up": [f"{self.host}:{self.up_port}"],
        }
        config: dict[str, Any] = {
            "global": {"scrape_interval": scrape, "evaluation_interval": interval},
            "rule_files": [str(rules)],
            "scrape_configs": [{"job_name": job, "static_configs": [{"targets": t}]} for job, t in jobs.items()],
        }
        if self.am_port:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [f"{self.host}:{self.am_port}"]}]}]}
        prom_yml = prom_dir / "prometheus.yml"
        prom_yml.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
        port = free_port()
        self.supervisor.add(
            Component(
                "prometheus", "monitor",
                [prometheus, f"--config.file={prom_yml}", f"--storage.tsdb.path={prom_dir / 'data'}",
                 f"--web.listen-address={self.host}:{port}", "--log.level=warn"],
                self.logs / "prometheus.log", url=self.url(port), health_url=self.url(port, "/-/ready"),
            )
        )  # fmt: skip

    # -- the broker ----------------------------------------------------------------------------------

    def _spawn_broker(self, component: Component) -> subprocess.Popen[bytes]:
        """launch_broker on the same port every time (runs on the main thread: see supervisor.py)."""
        running = launch_broker(port=self.broker_port, log_path=component.log_path)
        return running.process

    async def _broker_answers(self) -> bool:
        return await asyncio.to_thread(_answers, "127.0.0.1", self.broker_port)

    async def _recover_broker(self, component: Component) -> None:
        """The broker came back empty: topics first, then the day from the archive and the intake's database."""
        await ensure_topics(self.bootstrap, self.settings)
        days = [self.archive_dir] if is_archive(self.archive_dir) else []
        db = store.db_path(self.settings)
        observers_db = db if db.is_file() else None
        for attempt in range(1, RESTORE_ATTEMPTS + 1):
            try:
                stats = await restore(self.settings, self.bootstrap, days=days, observers_db=observers_db)
                break
            except KafkaError as exc:
                # tansu 0.6 can refuse a produce just after it came back: two producers' first batches of a
                # fresh partition at once (here the intake's held counts and ours) get "UnknownError" for
                # one of them. Publishing the day again is harmless (every effect is keyed), so try again.
                if attempt == RESTORE_ATTEMPTS:
                    raise
                log.warning("restore onto the restarted broker failed (%s); trying again", exc or type(exc).__name__)
                await asyncio.sleep(1.0)
        log.warning(
            "broker restarted on %s: restored %d releases and %d observer counts", self.bootstrap, stats.releases,
            stats.observer_counts,
        )  # fmt: skip
        self.say(f"broker restarted: restored {stats.releases} releases and {stats.observer_counts} observer counts")
        for problem in stats.problems:
            self.say(f"restore: {problem}")

    # -- up's own endpoint ---------------------------------------------------------------------------

    async def _serve(self) -> None:
        app = metrics_app(self.registry)

        async def notify(request: web.Request) -> web.Response:
            """A drill's coordinators are webhooks here: print who would have been told what."""
            body = await request.json()
            receiver = request.match_info["receiver"]
            for alert in body.get("alerts", []):
                labels = alert.get("labels", {})
                entry = {
                    "receiver": receiver,
                    "status": alert.get("status"),
                    "alertname": labels.get("alertname"),
                    "region": labels.get("region"),
                    "severity": labels.get("severity"),
                    "detector": labels.get("detector"),
                    "at": datetime.now(UTC).isoformat(timespec="seconds"),
                }
                self.notifications = [*self.notifications[-199:], entry]
                self.say(
                    f"notified {receiver}: {entry['status']} {entry['alertname']} {entry['region'] or ''} "
                    f"{entry['detector'] or ''} ({entry['severity'] or ''})"
                )
            self.write_state()
            return web.json_response({"ok": True})

        async def state(request: web.Request) -> web.Response:
            return web.json_response(self.state())

        app.router.add_post("/notify/{receiver}", notify)
        app.router.add_get("/state", state)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, self.host, self.up_port).start()

    # -- state file ----------------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        comps = {}
        for c in self.supervisor.components.values():
            comps[c.name] = {
                "role": c.role,
                "pid": c.pid,
                "state": c.state(),
                "restarts": c.restarts,
                "last_error": c.last_error,
                "url": c.url,
                "health_url": c.health_url,
                "log": str(c.log_path),
                "last_restart_seconds": c.last_restart_seconds,
            }
        return {
            "pid": os.getpid(),
            "mode": self.plan.mode,
            "started_at": self.started_at.isoformat(timespec="seconds"),
            "data_dir": str(self.data_dir),
            "election": self.election,
            "broker": self.bootstrap,
            "embedded_broker": self.embedded,
            "app_id": self.settings.app_id,
            "topic_prefix": self.settings.topic_prefix,
            "partitions": self.settings.partitions,
            "timezone": self.settings.timezone,
            "up_url": self.url(self.up_port),
            "healthy_after_seconds": self.healthy_after,
            "flags_seen": self.flags_seen,
            "components": comps,
            "notifications": self.notifications[-50:],
        }

    def write_state(self) -> None:
        """Atomically (write, rename): `status` may read it at any moment."""
        tmp = self.state_path.with_suffix(".json.tmp")
        with contextlib.suppress(OSError):
            tmp.write_text(json.dumps(self.state(), indent=2), encoding="utf-8")
            tmp.replace(self.state_path)

    # -- running -------------------------------------------------------------------------------------

    def request_stop(self) -> None:
        self._stop.set()

    async def _start(self, names: list[str], wait: float) -> None:
        for name in names:
            self.supervisor.start(self.supervisor.components[name])
        if wait and not await self.supervisor.wait_healthy(names, timeout=wait):
            slow = [n for n in names if not self.supervisor.components[n].healthy]
            self.say(f"still not healthy after {wait:.0f} s: {', '.join(slow)} (see {self.logs}/)")

    def _names(self, role: str) -> list[str]:
        return [c.name for c in self.supervisor.components.values() if c.role == role]

    def print_ports(self) -> None:
        lines = [f"turnout-watch up ({self.plan.mode}, {self.election}); data in {self.data_dir}"]
        for c in self.supervisor.components.values():
            lines.append(f"  {c.name:<14} {c.url or '':<40} log {c.log_path.relative_to(self.data_dir)}")
        lines.append(f"  {'up':<14} {self.url(self.up_port, '/metrics'):<40} state {self.state_path}")
        self.say("\n".join(lines))

    async def run(self) -> None:
        self.plan_components()
        handler = logging.FileHandler(self.logs / "up.log", encoding="utf-8")  # restarts, recoveries, failures
        handler.setFormatter(logging.Formatter(FORMAT))
        logging.getLogger().addHandler(handler)
        # the flags reader's connection errors while the broker restarts are the broker's news, told once above
        logging.getLogger("aiokafka").setLevel(logging.CRITICAL)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.request_stop)
        try:
            await self._serve()
            self.print_ports()
            self.write_state()
            try:
                await self._start_all()
                await self._supervise()
            finally:
                await self.shutdown()
        finally:
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.remove_signal_handler(sig)
            logging.getLogger().removeHandler(handler)
            handler.close()

    async def _start_all(self) -> None:
        sup = self.supervisor
        if self.embedded:
            await self._start(["broker"], wait=30)
        await ensure_topics(self.bootstrap, self.settings)
        await self._start(self._names("monitor"), wait=0)
        await self._start(self._names("worker"), wait=30)
        await self._start(["intake", *self.first_inputs], wait=30)
        await self._start(["scraper", *self.late_inputs], wait=0)
        if self.plan.print_flags:
            self._flags = FlagCollector(self.bootstrap, self.topics.flags, self.election)
            self._flags.on_flag = self._on_flag
            with contextlib.suppress(Exception):
                await self._flags.start()
        if await sup.wait_healthy(list(sup.components), timeout=60):
            self.healthy_after = time.monotonic() - self.started
            self.say(f"all {len(sup.components)} components healthy {self.healthy_after:.1f} s after start")
        else:
            down = [c.name for c in sup.components.values() if not (c.healthy or c.finished)]
            self.say(f"not healthy after 60 s: {', '.join(down)} (turnout-watch status; logs in {self.logs})")
        self.write_state()

    def _on_flag(self, flag: dict[str, Any]) -> None:
        self.flags_seen += 1
        self.say(f"flag  {format_flag(flag)}")

    async def _supervise(self) -> None:
        deadline = None if self.plan.stop_after is None else time.monotonic() + self.plan.stop_after
        last_probe = 0.0
        while not self._stop.is_set():
            if deadline is not None and time.monotonic() >= deadline:
                self.say(f"stopping after {self.plan.stop_after:g} s")
                break
            self.supervisor.check()
            if time.monotonic() - last_probe >= 1.0:
                last_probe = time.monotonic()
                await self.supervisor.probe()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), 0.2)

    async def shutdown(self) -> None:
        """Inputs, then (once drained) workers, then monitoring, then the broker; nothing left running."""
        sup = self.supervisor
        sup.stopping = True
        self.say("stopping: inputs first")
        try:
            sup.stop(self._names("input"))
            if self._flags is not None:
                with contextlib.suppress(Exception):
                    await self._flags.stop()
            workers = [c for c in sup.components.values() if c.role == "worker" and c.running]
            if workers and self._broker_alive():
                check = LocalPipeline(self.settings, bootstrap=self.bootstrap, topics=self.topics)
                try:
                    waited = await check.wait_pipeline_drained(timeout=self.plan.drain_timeout)
                    self.say(f"workers drained ({waited:.1f} s)")
                except TurnoutWatchError as exc:
                    self.say(f"workers not drained, stopping them anyway: {exc}")
            # Prometheus before the workers: a worker gone from its targets would "resolve" every alert and
            # Alertmanager would tell the coordinators so; stopped together, nothing is sent.
            sup.stop(self._names("monitor"))
            sup.stop(self._names("worker"), timeout=15)
            sup.stop(self._names("broker"))
        finally:
            sup.kill_all()
            await sup.close()
            if self._runner is not None:
                await self._runner.cleanup()
            self.write_state()
            self.say("stopped")

    def _broker_alive(self) -> bool:
        if not self.embedded:
            return True
        broker = self.supervisor.components.get("broker")
        return broker is not None and broker.running
