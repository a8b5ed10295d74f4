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

Prints one JSON line (with the server's RSS at the end and its peak, from /proc). The load generator
shares the machine (and its cores) with the server.
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

import numpy as np

from turnout_watch.core.dayfile import load_day
from turnout_watch.core.settings import load_settings
from turnout_watch.services.broker import free_port, launch_broker
from turnout_watch.sim.observers import PostStats, make_stations, post_counts, register_observers, simulate_counts

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # for tests.support.intake.read_topic
from tests.support.intake import read_topic

DAY = Path(__file__).resolve().parents[1] / "data" / "elections" / "kz-2022-11-20-presidential.jsonl"


def _memory(pid: int) -> dict[str, float]:
    """The process's resident memory now (VmRSS) and at its peak (VmHWM), in MiB (Linux /proc)."""
    fields = {}
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            name, _, value = line.partition(":")
            if name in ("VmRSS", "VmHWM"):
                fields[name] = round(int(value.split()[0]) / 1024, 1)
    return fields


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument(
        "--hour", default="12:00", help="whose reports to post (a release time of the day), or 'all' for the day"
    )
    parser.add_argument("--chunk", type=int, default=0, help="post this many at a time, sampling RSS after each")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()

    broker = launch_broker()
    with tempfile.TemporaryDirectory(prefix="tw-bench-intake-") as tmp:
        unique = uuid.uuid4().hex[:8]
        settings = load_settings(broker=broker.bootstrap, data_dir=Path(tmp), topic_prefix=f"b{unique}.")
        day = load_day(DAY)
        stations = make_stations(day.election, args.stations, args.seed)
        events = [e for e in simulate_counts(day, stations, args.seed) if args.hour in ("all", e["observed_at"][11:16])]
        tokens = register_observers(settings, stations)
        port = free_port()
        env = {**os.environ, "TURNOUT_WATCH_DATA_DIR": tmp, "TURNOUT_WATCH_TOPIC_PREFIX": settings.topic_prefix}
        server = subprocess.Popen(
            [sys.executable, "-m", "turnout_watch.cli", "--broker", broker.bootstrap, "observers", "serve",
             "--day", str(DAY), "--port", str(port)],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            for _ in range(100):
                try:
                    urllib.request.urlopen(base + "/healthz", timeout=1).close()
                    break
                except OSError:
                    time.sleep(0.2)
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
            memory = _memory(server.pid)
            records = asyncio.run(
                read_topic(
                    broker.bootstrap,
                    f"{settings.topic_prefix}observer-counts",
                    stats.accepted,
                    max(60, len(events) / 2000),
                )
            )
        finally:
            server.terminate()
            server.wait(10)
            broker.stop()
    ids = [r["report_id"] for r in records]
    lat = np.array(stats.latencies) * 1000
    print(
        json.dumps(
            {
                "stations": len(stations),
                "reports": len(events),
                "accepted": stats.accepted,
                "rejected": stats.rejected,
                "retries": stats.retries,
                "seconds": round(stats.seconds, 2),
                "accepted_per_s": round(stats.accepted / stats.seconds, 1),
                "latency_ms_p50": round(float(np.percentile(lat, 50)), 1),
                "latency_ms_p99": round(float(np.percentile(lat, 99)), 1),
                "in_topic": len(ids),
                "in_topic_unique": len(set(ids)),
                "count_check": "ok" if len(ids) == len(set(ids)) == stats.accepted else "MISMATCH",
                "server_rss_mib": memory["VmRSS"],
                "server_peak_rss_mib": memory["VmHWM"],
                **({"rss_by_accepted": rss} if len(rss) > 1 else {}),
                **({"errors": stats.errors[:3]} if stats.errors else {}),
                "concurrency": args.concurrency,
                "cpus": os.cpu_count(),
            }
        )
    )


if __name__ == "__main__":
    main()
