"""POST of an observer count -> the region's metric updated by the Faust worker: p50/p99 under load.

Starts the embedded broker, a Faust worker (its /metrics) and `turnout-watch observers serve`, then
posts one hour's reports of N stations at once (C connections) and, while that burst runs, sends a
probe report every 50 ms from other stations of a later hour: each probe's latency is from its
POST to the moment the worker's `turnout_watch_region_last_observer_count_timestamp_seconds` for the
probe's region shows a time at or after the POST (polled every 5 ms). Reproduce:

    .venv/bin/python bench/observer_end_to_end.py --stations 10000 --concurrency 64

Prints one JSON line. Everything shares the machine's two cores.
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
import uuid
from pathlib import Path

import aiohttp
import numpy as np
from prometheus_client.parser import text_string_to_metric_families

from turnout_watch.core.dayfile import load_day
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.settings import load_settings
from turnout_watch.services.broker import free_port
from turnout_watch.services.pipeline import LocalPipeline
from turnout_watch.sim.observers import make_stations, post_counts, register_observers, simulate_counts

DAY = Path(__file__).resolve().parents[1] / "data" / "elections" / "kz-2022-11-20-presidential.jsonl"


async def region_seen(session: aiohttp.ClientSession, url: str, region: str) -> float:
    async with session.get(url) as response:
        text = await response.text()
    for family in text_string_to_metric_families(text):
        if family.name == "turnout_watch_region_last_observer_count_timestamp_seconds":
            return max((s.value for s in family.samples if s.labels.get("region") == region), default=0.0)
    return 0.0


async def probe(base: str, metrics: str, event: dict, token: str, session: aiohttp.ClientSession) -> float:
    started = time.time()
    async with session.post(f"{base}/v1/counts", json=event, headers={"Authorization": f"Bearer {token}"}) as r:
        assert r.status == 200, await r.text()
    region = default_gazetteer().resolve(event["region"]).code
    while await region_seen(session, metrics, region) < started:
        await asyncio.sleep(0.005)
    return time.time() - started


async def run(args: argparse.Namespace, tmp: str) -> dict[str, float | int]:
    unique = uuid.uuid4().hex[:8]
    settings = load_settings(topic_prefix=f"e{unique}.", app_id=f"e2e-{unique}", metrics_port=free_port(),
                             data_dir=Path(tmp))  # fmt: skip
    day = load_day(DAY)
    stations = make_stations(day.election, args.stations, args.seed)
    counts = simulate_counts(day, stations, args.seed)
    burst = [e for e in counts if e["observed_at"][11:16] == "12:00"]
    later = {e["station"]: e for e in counts if e["observed_at"][11:16] == "14:00" and e["source"] == "tally"}
    tokens = register_observers(settings, stations)
    async with LocalPipeline(settings, workers=1) as pipeline:
        port = free_port()
        env = {**os.environ, "TURNOUT_WATCH_DATA_DIR": tmp, "TURNOUT_WATCH_TOPIC_PREFIX": settings.topic_prefix}
        server = subprocess.Popen(
            [sys.executable, "-m", "turnout_watch.cli", "--broker", pipeline.bootstrap, "observers", "serve",
             "--day", str(DAY), "--port", str(port)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base, metrics = f"http://127.0.0.1:{port}", pipeline.worker_processes[0].metrics_url
        try:
            async with aiohttp.ClientSession() as session:
                for _ in range(200):  # server and worker up; the worker has joined its group
                    try:
                        async with session.get(base + "/healthz") as r, session.get(metrics) as m:
                            if r.status == m.status == 200:
                                break
                    except aiohttp.ClientError:
                        pass
                    await asyncio.sleep(0.1)
                warm = next(iter(later.values()))
                await probe(base, metrics, warm, tokens[warm["station"]], session)  # consumer group joined
                probes = [e for s, e in later.items() if s != warm["station"]][: args.probes]
                load = asyncio.create_task(post_counts(base, burst, tokens, concurrency=args.concurrency))
                latencies = []
                for event in probes:
                    latencies.append(await probe(base, metrics, event, tokens[event["station"]], session))
                    await asyncio.sleep(0.05)
                    if load.done():
                        break
                stats = await load
        finally:
            server.terminate()
            server.wait(10)
    ms = np.array(latencies) * 1000
    return {
        "stations": len(stations),
        "burst_reports": len(burst),
        "burst_accepted_per_s": round(stats.accepted / stats.seconds, 1),
        "probes_during_burst": len(latencies),
        "post_to_region_metric_ms_p50": round(float(np.percentile(ms, 50)), 1),
        "post_to_region_metric_ms_p99": round(float(np.percentile(ms, 99)), 1),
        "post_to_broker_ack_ms_p50": round(float(np.percentile(np.array(stats.latencies) * 1000, 50)), 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--probes", type=int, default=200)
    parser.add_argument("--seed", type=int, default=1)
    with tempfile.TemporaryDirectory(prefix="tw-bench-e2e-") as tmp:
        print(json.dumps(asyncio.run(run(parser.parse_args(), tmp))))
