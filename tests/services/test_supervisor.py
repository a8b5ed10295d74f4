"""The supervisor on plain child processes (no broker): exits are counted, restarted with backoff, and stopped."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from pathlib import Path

from prometheus_client import CollectorRegistry

from turnout_watch.services.supervisor import Backoff, Component, Supervisor, SupervisorMetrics


def python(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(first=0.5, cap=4.0)
    assert [backoff.delay(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]


async def test_a_killed_child_is_restarted_counted_and_logged(tmp_path: Path) -> None:
    registry = CollectorRegistry()
    sup = Supervisor(SupervisorMetrics(registry), Backoff(first=0.1, cap=0.4))
    sleeper = sup.add(Component("sleeper", "worker", python("import time; time.sleep(60)"), tmp_path / "s.log"))
    failing = sup.add(
        Component(
            "failing", "input", python("print('cannot start: no config'); raise SystemExit(3)"), tmp_path / "f.log"
        )
    )
    once = sup.add(Component("once", "input", python("pass"), tmp_path / "o.log", restart="on-failure"))
    try:
        for c in (sleeper, failing, once):
            sup.start(c)
        assert await sup.wait_healthy(["sleeper", "once"], timeout=10)
        first = sleeper.pid
        assert first is not None
        os.kill(first, signal.SIGKILL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not (sleeper.restarts and sleeper.healthy and failing.restarts >= 3):
            sup.check()
            await sup.probe()
            await asyncio.sleep(0.05)
        assert sleeper.restarts == 1 and sleeper.pid != first and sleeper.state() == "up"
        assert sleeper.last_error.startswith("killed by SIGKILL")
        assert sleeper.last_restart_seconds is not None and sleeper.last_restart_seconds < 2
        # the failing one keeps failing: restarted again and again, each time later (0.1, 0.2, 0.4, 0.4 ...)
        assert (
            failing.restarts >= 3
            and failing.failures >= 3
            and "exited with status 3; log: cannot start: no config" in failing.last_error
        )
        assert once.state() == "done" and once.restarts == 0  # a clean exit of a one-shot is not a failure
        sample = registry.get_sample_value
        assert sample("turnout_watch_up_restarts_total", {"component": "sleeper"}) == 1
        assert sample("turnout_watch_up_component_up", {"component": "sleeper"}) == 1
        assert sample("turnout_watch_up_component_up", {"component": "once"}) == 0
    finally:
        sup.stop(["sleeper", "failing", "once"], timeout=5)
        sup.kill_all()
        await sup.close()
    assert not sleeper.running and not failing.running
