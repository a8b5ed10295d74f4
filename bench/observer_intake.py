"""Sustained accepted observer reports per second through the intake API, and POST -> broker-ack latency.

Starts the embedded broker and `turnout-watch observers serve` (a separate process), registers N
simulated stations with one observer token each, then posts one hour's reports of every station
(tally + most commission figures, as `observers-sim` makes them) at once, one report per request as
phones send them, with C concurrent connections from this process. A 2xx is only given after the
broker's acks=all, so each request's latency is POST -> broker ack. Then it reads the topic back and
checks that every accepted report is there exactly once. Reproduce:

    .venv/bin/python bench/observer_intake.py --stations 10000 --hour 12:00 --concurrency 64

Memory over a whole day (`--hour all`: every report of the day, about 10 per station, in the order
they were received), the server's RSS sampled after each chunk of reports:

    .venv/bin/python bench/observer_intake.py --stations 25000 --hour all --chunk 25000

The reference, in the same run (`--repeat` pairs, interleaved: intake, then reference): a minimal
aiohttp app (`--serve-reference`, its own process like the intake) that reads each POST's JSON and
answers only after `send_and_wait` with acks=all on the same broker, no validation, no store. Both are
driven by the same load generator with the same reports; the ratio of accepted/s and the CPU per
accepted report (the server process's user+system time, /proc) say what the intake's validation,
idempotency store and group commit cost:

    .venv/bin/python bench/observer_intake.py --stations 10000 --hour 12:00 --concurrency 64 --repeat 3

Prints a table on stderr and one JSON line (with the server's RSS at the end and its peak, from /proc).
The load generator shares the machine (and its cores) with the server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

import numpy as np
from harness import print_report, py_spy, report

from turnout_watch.core.dayfile import load_day
from turnout_watch.core.settings import load_settings
from turnout_watch.core.topics import ensure_topics
from turnout_watch.services.broker import free_port, launch_broker
from turnout_watch.sim.observers import PostStats, make_stations, post_counts, register_observers, simulate_counts

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support.intake.read_topic
from tests.support.intake import read_topic

DAY = Path(__file__).resolve().parents[1] / "data" / "elections" / "kz-2022-11-20-presidential.jsonl"


def _cpu_seconds(pid: int) -> float:
    """User + system CPU seconds the process has used (Linux /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def serve_reference(port: int, bootstrap: str, topic: str) -> None:
    """The reference server: JSON in, acks=all `send_and_wait`, 201 with the shape the load generator reads."""
    from aiohttp import web
    from aiokafka import AIOKafkaProducer

    async def start(app: web.Application) -> None:
        app["producer"] = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all")
        await app["producer"].start()

    async def stop(app: web.Application) -> None:
        await app["producer"].stop()

    async def post(request: web.Request) -> web.Response:
        body = await request.read()
        report = json.loads(body)
        await request.app["producer"].send_and_wait(topic, body, key=str(report["station"]).encode())
        return web.json_response({"items": [{"status": "accepted"}]}, status=201)

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    app = web.Application()
    app.on_startup.append(start)
    app.on_cleanup.append(stop)
    app.router.add_post("/v1/counts", post)
    app.router.add_get("/healthz", health)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


def _memory(pid: int) -> dict[str, float]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MiB (Linux /proc)."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def _wait_healthy(base: str, server: subprocess.Popen[bytes]) -> None:
    for _ in range(150):
        if server.poll() is not None:
            raise SystemExit(f"the server exited with {server.returncode}")
        try:
            urllib.request.urlopen(base + "/healthz", timeout=1).close()
            return
        except OSError:
            time.sleep(0.2)
    raise SystemExit("the server did not answer /healthz within 30 s")


def _commits(base: str) -> dict[str, float]:
    """How many SQLite commits the intake made, and reports per commit (its /metrics)."""
    with urllib.request.urlopen(f"{base}/metrics", timeout=10) as answer:
        text = answer.read().decode()
    values = {
        name: float(value)
        for name, _, value in (line.partition(" ") for line in text.splitlines())
        if name in ("turnout_watch_intake_commit_intents_count", "turnout_watch_intake_commit_intents_sum")
    }
    count = values.get("turnout_watch_intake_commit_intents_count", 0.0)
    total = values.get("turnout_watch_intake_commit_intents_sum", 0.0)
    return {"commits": count, "reports_per_commit": round(total / count, 1) if count else 0.0}


def one_run(
    args: argparse.Namespace, broker: Any, events: list[dict[str, Any]], stations: Any, *, reference: bool
) -> dict[str, Any]:
    """Post `events` to a fresh intake (or the reference) on fresh topics; read the topic back."""
    with tempfile.TemporaryDirectory(prefix="tw-bench-intake-") as tmp:
        settings = load_settings(broker=broker.bootstrap, data_dir=Path(tmp), topic_prefix=f"b{uuid.uuid4().hex[:8]}.")
        topic = f"{settings.topic_prefix}observer-counts"
        tokens = register_observers(settings, stations)
        port = free_port()
        env = {**os.environ, "TURNOUT_WATCH_DATA_DIR": tmp, "TURNOUT_WATCH_TOPIC_PREFIX": settings.topic_prefix}
        if reference:
            asyncio.run(ensure_topics(broker.bootstrap, settings))
            command = [sys.executable, __file__, "--serve-reference", str(port), broker.bootstrap, topic]
        else:
            command = [sys.executable, "-m", "turnout_watch.cli", "--broker", broker.bootstrap, "observers", "serve",
                       "--day", str(DAY), "--port", str(port)]  # fmt: skip
        server = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        base = f"http://127.0.0.1:{port}"
        try:
            _wait_healthy(base, server)
            if args.profile is not None and not reference:
                args.profile.mkdir(parents=True, exist_ok=True)
                py_spy(server.pid, 10, args.profile / f"intake-{uuid.uuid4().hex[:6]}.txt")
            cpu_before = _cpu_seconds(server.pid)
            chunk = args.chunk or len(events) or 1
            stats, rss = PostStats(), []
            for start in range(0, len(events), chunk):
                part = asyncio.run(
                    post_counts(base, events[start : start + chunk], tokens, concurrency=args.concurrency)
                )
                for name in ("sent", "accepted", "duplicates", "rejected", "retries", "seconds"):
                    setattr(stats, name, getattr(stats, name) + getattr(part, name))
                stats.latencies += part.latencies
                stats.errors += part.errors
                rss.append({"accepted": stats.accepted, "rss_mib": _memory(server.pid)["VmRSS"]})
            cpu = _cpu_seconds(server.pid) - cpu_before
            memory = _memory(server.pid)
            commits = {} if reference else _commits(base)
            records = asyncio.run(read_topic(broker.bootstrap, topic, stats.accepted, max(60, len(events) / 2000)))
        finally:
            server.terminate()
            server.wait(10)
    ids = [r["report_id"] for r in records]
    lat = np.array(stats.latencies) * 1000
    if not (len(ids) == len(set(ids)) == stats.accepted == len(events)):
        raise SystemExit(
            f"{'reference' if reference else 'intake'}: {stats.accepted} of {len(events)} accepted, {len(ids)} in the "
            f"topic ({len(set(ids))} distinct); errors: {stats.errors[:3]}"
        )
    return {
        "accepted": stats.accepted,
        "retries": stats.retries,
        "seconds": round(stats.seconds, 2),
        "accepted_per_s": round(stats.accepted / stats.seconds, 1),
        "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
        "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
        "cpu_us_per_report": round(cpu / stats.accepted * 1e6, 1),
        **commits,
        "server_rss_mib": memory["VmRSS"],
        "server_peak_rss_mib": memory["VmHWM"],
        **({"rss_by_accepted": rss} if len(rss) > 1 else {}),
    }


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--serve-reference":
        serve_reference(int(sys.argv[2]), sys.argv[3], sys.argv[4])
        return
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument(
        "--hour", default="12:00", help="whose reports to post (a release time of the day), or 'all' for the day"
    )
    parser.add_argument("--chunk", type=int, default=0, help="post this many at a time, sampling RSS after each")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--repeat", type=int, default=1, help="intake/reference pairs, interleaved")
    parser.add_argument("--profile", type=Path, default=None, help="write py-spy raw stacks of the intake here")
    parser.add_argument("--no-reference", action="store_true", help="the intake only (e.g. a whole day's memory)")
    args = parser.parse_args()

    broker = launch_broker()
    day = load_day(DAY)
    stations = make_stations(day.election, args.stations, args.seed)
    events = [e for e in simulate_counts(day, stations, args.seed) if args.hour in ("all", e["observed_at"][11:16])]
    runs: dict[str, list[float]] = {}
    last: dict[str, dict[str, Any]] = {}
    try:
        for _ in range(args.repeat):
            for label in ("intake",) if args.no_reference else ("intake", "reference"):
                result = last[label] = one_run(args, broker, events, stations, reference=label == "reference")
                for key in ("accepted_per_s", "latency_ms_p50", "latency_ms_p99", "cpu_us_per_report"):
                    runs.setdefault(f"{label}_{key}", []).append(result[key])
    finally:
        broker.stop()
    out = report(
        f"intake vs minimal acks=all app ({len(events)} reports of {len(stations)} stations, "
        f"one per POST, concurrency {args.concurrency})",
        runs,
        ratio=None if args.no_reference else ("intake_accepted_per_s", "reference_accepted_per_s"),
    )
    out["intake_last_run"] = last["intake"]
    out["cpus"] = os.cpu_count()
    print_report(out)


if __name__ == "__main__":
    main()
