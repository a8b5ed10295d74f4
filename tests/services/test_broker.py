"""The embedded broker starts, answers, and never outlives its parent."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from turnout_watch.core.errors import BrokerError
from turnout_watch.services.broker import _answers, launch_broker, resolve_tansu_bin

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is dead for our purpose
        return fh.read().split()[2] != "Z"


def test_start_answer_stop() -> None:
    broker = launch_broker()
    try:
        assert _answers(broker.host, broker.port)
    finally:
        broker.stop()
    assert broker.process.poll() is not None
    assert not _answers(broker.host, broker.port)


def test_broker_dies_with_a_crashed_parent() -> None:
    code = (
        "import sys; from turnout_watch.services.broker import launch_broker; b = launch_broker(); "
        "print(b.process.pid, flush=True); import time; time.sleep(60)"
    )
    parent = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert parent.stdout is not None
    pid = int(parent.stdout.readline())
    assert _alive(pid)
    parent.send_signal(signal.SIGKILL)  # no atexit, no finally: only the kernel can clean up
    parent.wait()
    parent.stdout.close()
    deadline = time.monotonic() + 10
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _alive(pid)


def test_bad_tansu_bin_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TANSU_BIN", "/nonexistent/tansu")
    with pytest.raises(BrokerError, match="TANSU_BIN='/nonexistent/tansu' is not an executable"):
        resolve_tansu_bin()


def test_tansu_bin_override_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TANSU_BIN", raising=False)
    shipped = resolve_tansu_bin()
    monkeypatch.setenv("TANSU_BIN", shipped)
    assert resolve_tansu_bin() == shipped
