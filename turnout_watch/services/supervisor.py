"""Child processes kept running: each exit is counted, logged and followed by a restart after a backoff.

`turnout-watch up` runs every component of the watch room as a child of one process. A component that
exits is started again on the same ports (Prometheus keeps scraping the same targets, observers' phones
keep posting to the same address) after an exponential backoff, so a component that cannot start does
not spin. Every restart is a log line and a sample of `turnout_watch_up_restarts_total`; whether each
component answers its health probe is computed at scrape time (client_python's custom-Collector pattern).

Children die with us: each is started from the main thread with Linux's parent-death signal
(`broker._die_with_parent`), so even a SIGKILLed supervisor leaves no process behind. That is also why
nothing here starts a process from a worker thread: the signal fires when the *thread* that forked exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import aiohttp
from prometheus_client import CollectorRegistry, Counter
from prometheus_client.metrics_core import GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from turnout_watch.services.broker import _die_with_parent, terminate

log = logging.getLogger(__name__)

__all__ = ["Backoff", "Component", "Restart", "Role", "Supervisor", "SupervisorMetrics"]

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|[\x00-\x08\x0b-\x1f]")

#: What a component is to the stack: the order of start (broker, monitor, worker, input) and the reverse of stop.
Role = Literal["broker", "monitor", "worker", "input"]
#: `always`: restart on any exit; `on-failure`: a clean exit (status 0) ends it (a one-shot simulator).
Restart = Literal["always", "on-failure"]


@dataclass(frozen=True)
class Backoff:
    """Delay before the n-th consecutive restart: `first * 2**(n-1)`, at most `cap`. A component that
    stayed up `reset_after` seconds starts again from `first`."""

    first: float = 0.5
    cap: float = 30.0
    reset_after: float = 60.0

    def delay(self, failures: int) -> float:
        return float(min(self.cap, self.first * 2 ** max(0, failures - 1)))


@dataclass
class Component:
    """One supervised child: how to start it, how to tell it is healthy, and what happened to it."""

    name: str
    role: Role
    argv: list[str]
    log_path: Path
    env: dict[str, str] | None = None
    url: str | None = None  # what an operator opens (printed at start)
    health_url: str | None = None  # GET answering 2xx = healthy; None with `probe` unset = alive is healthy
    probe: Callable[[], Awaitable[bool]] | None = None
    restart: Restart = "always"
    #: starts the process instead of Popen(argv) (the embedded broker: launch_broker on the same port)
    spawn: Callable[[Component], subprocess.Popen[bytes]] | None = None
    #: awaited after a restart once the component is healthy again (the broker: re-publish the day)
    after_restart: Callable[[Component], Awaitable[None]] | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)
    restarts: int = 0
    failures: int = 0  # consecutive, for the backoff
    last_error: str = ""
    started_at: float = 0.0
    healthy: bool = False
    finished: bool = False  # exited cleanly and is not to be restarted
    next_start: float | None = None
    down_since: float | None = None
    last_restart_seconds: float | None = None  # exit noticed -> healthy again
    recovering: bool = False  # after_restart still running

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, lines: int = 3) -> str:
        """The last lines of its log, without terminal control sequences, for `last_error`."""
        with contextlib.suppress(OSError):
            text = _CONTROL.sub("", self.log_path.read_text(errors="replace")).strip().splitlines()
            return " | ".join(line.strip() for line in text[-lines:] if line.strip())[-300:]
        return ""

    def state(self) -> str:
        if self.finished:
            return "done"
        if not self.running:
            return "restarting" if self.next_start is not None else "down"
        if self.recovering:
            return "recovering"
        return "up" if self.healthy else "starting"


class SupervisorMetrics:
    """`turnout_watch_up_restarts_total{component}` and, read at scrape time, `turnout_watch_up_component_up`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.restarts = Counter(
            "turnout_watch_up_restarts", "Restarts of a supervised component after it exited", ("component",),
            registry=registry,
        )  # fmt: skip
        self._components: list[Component] = []
        registry.register(_ComponentCollector(self._components))

    def track(self, component: Component) -> None:
        self._components.append(component)
        self.restarts.labels(component.name)


class _ComponentCollector(Collector):
    def __init__(self, components: list[Component]) -> None:
        self.components = components

    def collect(self) -> Iterator[Metric]:
        up = GaugeMetricFamily(
            "turnout_watch_up_component_up",
            "1 if the component runs and answers its health probe",
            labels=["component"],
        )
        for c in self.components:
            up.add_metric([c.name], 1.0 if c.running and c.healthy else 0.0)
        yield up


def _default_spawn(component: Component) -> subprocess.Popen[bytes]:
    component.log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(component.log_path, "ab") as out:
        return subprocess.Popen(
            component.argv,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            env=component.env,
            preexec_fn=_die_with_parent,
        )


class Supervisor:
    """Starts components, notices exits, restarts them with backoff, probes health; `stop()` in order."""

    def __init__(
        self,
        metrics: SupervisorMetrics,
        backoff: Backoff | None = None,
        on_change: Callable[[], None] | None = None,
    ) -> None:
        self.metrics = metrics
        self.backoff = backoff or Backoff()
        self.components: dict[str, Component] = {}
        self.stopping = False
        self.on_change = on_change or (lambda: None)
        self._session: aiohttp.ClientSession | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def add(self, component: Component) -> Component:
        self.components[component.name] = component
        self.metrics.track(component)
        return component

    def start(self, component: Component) -> None:
        """Start (or restart) one component now; a failure to start counts as an exit."""
        component.next_start = None
        component.healthy = False
        component.started_at = time.monotonic()
        try:
            component.process = (component.spawn or _default_spawn)(component)
        except Exception as exc:  # a broker that did not come up, a missing binary: retried with backoff
            component.process = None
            self._exited(component, f"could not start: {exc}")
            return
        log.info("%s started (pid %d)", component.name, component.process.pid)
        self.on_change()

    async def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=2.0))
        return self._session

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _exited(self, component: Component, reason: str) -> None:
        now = time.monotonic()
        if component.started_at and now - component.started_at >= self.backoff.reset_after:
            component.failures = 0
        component.failures += 1
        component.healthy = False
        component.last_error = reason
        if component.down_since is None:
            component.down_since = now
        delay = self.backoff.delay(component.failures)
        component.next_start = now + delay
        log.warning("%s %s; restart #%d in %.1f s", component.name, reason, component.restarts + 1, delay)
        self.on_change()

    def check(self) -> None:
        """Notice exits and start what is due. Call it often (a few times a second)."""
        if self.stopping:
            return
        now = time.monotonic()
        for c in self.components.values():
            if c.finished:
                continue
            if c.process is not None and c.next_start is None:
                code = c.process.poll()
                if code is None:
                    continue
                if code == 0 and c.restart == "on-failure":
                    c.finished, c.healthy = True, False
                    log.info("%s finished", c.name)
                    self.on_change()
                    continue
                how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with status {code}"
                tail = c.log_tail()
                self._exited(c, how + (f"; log: {tail}" if tail else ""))
            if c.next_start is not None and now >= c.next_start:
                c.restarts += 1
                self.metrics.restarts.labels(c.name).inc()
                log.warning("restarting %s (restart #%d)", c.name, c.restarts)
                self.start(c)

    async def _healthy(self, c: Component) -> bool:
        if not c.running:
            return False
        if c.probe is not None:
            return await c.probe()
        if c.health_url is None:
            return True
        try:
            session = await self.session()
            async with session.get(c.health_url) as response:
                return response.status < 300
        except (aiohttp.ClientError, TimeoutError, OSError):
            return False

    async def probe(self) -> None:
        """Probe every running component; note how long each restart took once it is healthy again."""
        live = [c for c in self.components.values() if c.running]
        results = await asyncio.gather(*(self._healthy(c) for c in live))
        changed = False
        for c, ok in zip(live, results, strict=True):
            if ok and not c.healthy:
                changed = True
                if c.down_since is not None:
                    c.last_restart_seconds = time.monotonic() - c.down_since
                    c.down_since = None
                    log.warning("%s healthy again %.1f s after it went down", c.name, c.last_restart_seconds)
                    if c.after_restart is not None and c.restarts:
                        self._recover(c)
            changed |= c.healthy != ok
            c.healthy = ok
        if changed:
            self.on_change()

    def _recover(self, c: Component) -> None:
        assert c.after_restart is not None
        c.recovering = True

        async def run() -> None:
            try:
                await c.after_restart(c)  # type: ignore[misc]
            except Exception as exc:  # kept running: the operator can run `turnout-watch restore` by hand
                c.last_error = f"recovery failed: {exc}"
                log.exception("recovery after %s restart failed", c.name)
            finally:
                c.recovering = False
                self.on_change()

        task = asyncio.create_task(run())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def wait_healthy(self, names: Iterable[str], timeout: float, poll: float = 0.2) -> bool:
        """Supervise until the named components are healthy (True) or `timeout` passes (False)."""
        wanted = [self.components[n] for n in names]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check()
            await self.probe()
            if all(c.healthy or c.finished for c in wanted):
                return True
            await asyncio.sleep(poll)
        return False

    def stop(self, names: Iterable[str], timeout: float = 10.0) -> None:
        """SIGTERM the named components together, then wait for each (SIGKILL after `timeout`)."""
        chosen = [self.components[n] for n in names if n in self.components]
        for c in chosen:
            c.next_start = None
            if c.running and c.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    c.process.terminate()
        deadline = time.monotonic() + timeout
        for c in chosen:
            if c.process is not None:
                terminate(c.process, max(0.1, deadline - time.monotonic()))
                c.healthy = False
                log.info("%s stopped", c.name)
        self.on_change()

    def kill_all(self) -> None:
        """Last resort on the way out: nothing may outlive us."""
        for c in self.components.values():
            if c.running and c.process is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(c.process.pid, 9)
                c.process.wait()
