"""`turnout-watch up --drill`: the whole stack as real processes on loopback, supervised.

One drill of 20 Nov 2022 at high speed (CEC simulator, scraper, observer simulator, intake, two workers,
the embedded broker, Prometheus and Alertmanager): every component comes up, the Turkistan jump reaches
Prometheus' ALERTS and Alertmanager's receivers, `status` shows it; a SIGKILLed worker and intake are
restarted; a SIGKILLed `up` leaves no process behind. A second, smaller drill is stopped with SIGTERM:
inputs first, the workers once drained, and everything exits.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.support.paths import DAY_2022

pytestmark = pytest.mark.integration
SPEED = "1200"  # the day's 12 hours of releases in ~40 s


def alive(pid: int) -> bool:
    """Running (a zombie is a process that already exited)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][:1] != "Z"
    except (FileNotFoundError, IndexError):
        return False


def start_up(data: Path, *args: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_WATCH_", "KAFKA_"))}
    with (data.parent / "up.out").open("wb") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "turnout_watch.cli", "up", "--drill", str(DAY_2022), "--data-dir", str(data), *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )


def state(data: Path) -> dict[str, Any]:
    try:
        loaded: dict[str, Any] = json.loads((data / "up.json").read_text())
        return loaded
    except (FileNotFoundError, ValueError):
        return {}


def until(what: str, check: Callable[[], Any], timeout: float, data: Path) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        result = check()
        if result:
            return result
        time.sleep(0.2)
    out = (data.parent / "up.out").read_text(errors="replace")[-3000:]
    raise AssertionError(f"{what}: not within {timeout:.0f} s\n--- up's output\n{out}")


def output(data: Path) -> str:
    return (data.parent / "up.out").read_text(errors="replace")


def get_json(url: str) -> Any:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return json.loads(response.read())
    except (OSError, ValueError):
        return None


def all_pids(data: Path) -> list[int]:
    s = state(data)
    return [s["pid"], *(c["pid"] for c in s["components"].values() if c["pid"])]


def test_drill_comes_up_alerts_reach_receivers_components_restart_and_a_killed_up_leaves_nothing(
    tmp_path: Path,
) -> None:
    assert shutil.which("prometheus"), "`make system-deps` installs prometheus and prometheus-alertmanager"
    data = tmp_path / "run"
    up = start_up(data, "--speed", SPEED, "--workers", "2", "--stations", "40")
    try:
        healthy = until("every component healthy", lambda: state(data).get("healthy_after_seconds"), 90, data)
        s = state(data)
        comps = s["components"]
        assert set(comps) == {
            "broker", "worker-0", "worker-1", "intake", "cec-sim", "scraper", "observers-sim", "prometheus",
            "alertmanager",
        }  # fmt: skip
        assert all(c["state"] in ("up", "done") for c in comps.values()), comps
        # one broker for everything: no component started its own
        tansus = subprocess.run(["pgrep", "-f", s["broker"]], capture_output=True, text=True).stdout.split()
        assert tansus == [str(comps["broker"]["pid"])]

        # flags reach Prometheus' ALERTS, and Alertmanager sends them to the region's coordinator
        query = urllib.parse.quote('ALERTS{alertname="TurnoutFlagRaised",alertstate="firing",region="KZ-61"}')
        until(
            "the Turkistan jump fires in Prometheus",
            lambda: (
                (get_json(f"{comps['prometheus']['url']}/api/v1/query?query={query}") or {})
                .get("data", {})
                .get("result")
            ),
            60,
            data,
        )
        delivered = until(
            "the south coordinator's webhook is notified",
            lambda: [n for n in state(data).get("notifications", []) if n["region"] == "KZ-61"],
            30,
            data,
        )
        assert {n["receiver"] for n in delivered} <= {"south", "watch-room-lead"} and any(
            n["receiver"] == "south" for n in delivered
        )
        report = subprocess.run(
            [sys.executable, "-m", "turnout_watch.cli", "status", "--data-dir", str(data)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert "TurnoutFlagRaised KZ-61 cross_sectional_jump critical -> " in report.stdout, report.stdout
        assert "south" in report.stdout and "last CEC release   as of 2022-11-20" in report.stdout
        for name in ("broker", "worker-0", "intake", "scraper", "prometheus", "alertmanager"):
            assert any(line.split()[:2] == [name, "up"] for line in report.stdout.splitlines()), report.stdout

        # SIGKILL a worker and the intake: each is restarted on its port, the restart counted
        before = {name: comps[name]["pid"] for name in ("worker-0", "intake")}
        killed_at = time.monotonic()
        for pid in before.values():
            os.kill(pid, signal.SIGKILL)

        def restarted() -> bool:
            now = state(data)["components"]
            return all(
                now[n]["restarts"] == 1 and now[n]["state"] == "up" and now[n]["pid"] != pid
                for n, pid in before.items()
            )

        until("the worker and the intake are back", restarted, 30, data)
        back = time.monotonic() - killed_at
        now = state(data)["components"]
        assert all(now[n]["last_error"].startswith("killed by SIGKILL") for n in before)
        metrics = urllib.request.urlopen(f"{state(data)['up_url']}/metrics", timeout=2).read().decode()
        assert 'turnout_watch_up_restarts_total{component="worker-0"} 1.0' in metrics
        assert get_json(now["intake"]["health_url"])["status"] == "ok"
        timings = {
            "up -> all healthy": healthy,
            "worker + intake SIGKILL -> both healthy": back,
            **{f"restart {n}": now[n]["last_restart_seconds"] for n in before},
        }

        # the rest in turn: the other inputs and the monitoring together, then the broker, which comes back on
        # its port and gets the day re-published from the scraper's archive and the intake's database
        for group in (("scraper", "cec-sim", "prometheus", "alertmanager", "worker-1"), ("broker",)):
            before = {name: state(data)["components"][name]["pid"] for name in group}
            for pid in before.values():
                os.kill(pid, signal.SIGKILL)
            until(f"{', '.join(group)} back", restarted, 30, data)
            now = state(data)["components"]
            timings.update({f"restart {n}": now[n]["last_restart_seconds"] for n in before})
        assert state(data)["broker"] == s["broker"]  # the same port: every component's address still holds
        until("the day restored onto the new broker", lambda: "broker restarted: restored" in output(data), 20, data)

        # SIGKILL `up` itself: every child dies with it
        pids = all_pids(data)
        up.kill()
        up.wait()
        killed = time.monotonic()
        until("no child of up survives it", lambda: not any(alive(p) for p in pids), 15, data)
        timings["up SIGKILL -> no process left"] = time.monotonic() - killed
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    report_to = os.environ.get("TURNOUT_WATCH_UP_TIMINGS")
    if report_to:
        Path(report_to).write_text("".join(f"{k}: {v:.2f} s\n" for k, v in timings.items()))


def test_sigterm_stops_inputs_first_workers_after_draining_and_leaves_nothing(tmp_path: Path) -> None:
    data = tmp_path / "run"
    up = start_up(data, "--speed", "3000", "--workers", "1", "--stations", "20", "--no-monitoring")
    try:
        until("every component healthy", lambda: state(data).get("healthy_after_seconds"), 90, data)
        pids = all_pids(data)
        up.send_signal(signal.SIGTERM)
        assert up.wait(60) == 0
    finally:
        if up.poll() is None:
            up.kill()
            up.wait()
    out = (tmp_path / "up.out").read_text()
    stopping = out.index("stopping: inputs first")
    assert out.index("workers drained", stopping) < out.index("stopped", stopping), out[-2000:]
    assert not any(alive(p) for p in pids)
    assert all(c["state"] in ("down", "done") for c in state(data)["components"].values())
