"""How many releases per second one Faust worker turns into flags, updates and metrics.

Starts the embedded broker and one worker, times the worker's start-up (until it processed a first
release), then publishes N synthetic releases (20 regions + national each, spread over E elections so
the per-election trackers see realistic histories) and times until the worker group committed them
all (offsets are committed every 0.5 s, so small runs overstate the time), by the true partition ends
(bench/drain.py: tansu's ListOffsets answers low). Reproduce:

    .venv/bin/python bench/agent_throughput.py --releases 20000 --elections 200

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaProducer
from drain import wait_drained  # bench/drain.py: true ends, not tansu's low ListOffsets

from detectors.tracker import Release
from turnout_watch.core.settings import load_settings
from turnout_watch.services.pipeline import LocalPipeline

CODES = [f"KZ-{n}" for n in (10, 11, 15, 19, 23, 27, 31, 33, 35, 39, 43, 47, 55, 59, 61, 62, 63, 71, 75, 79)]


def synthetic_releases(releases: int, elections: int, seed: int = 7) -> list[Release]:
    rng = np.random.default_rng(seed)
    per = releases // elections
    start = datetime(2024, 3, 17, 8, tzinfo=timezone(timedelta(hours=5)))
    out = []
    for e in range(elections):
        level = rng.uniform(5, 15, len(CODES))
        for i in range(per):
            level = np.minimum(level + rng.gamma(2.0, 0.5, len(CODES)), 99.0)
            as_of = start + timedelta(minutes=10 * i)
            turnout = {c: round(float(v), 2) for c, v in zip(CODES, level, strict=True)}
            turnout["KZ"] = round(float(level.mean()), 2)
            out.append(Release(f"bench-{e}", as_of, as_of + timedelta(minutes=5), turnout))
    return out


async def main(args: argparse.Namespace) -> dict[str, float | int]:
    settings = load_settings(
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
        metrics_port=0,
        data_dir=Path(tempfile.mkdtemp(prefix="tw-bench-")),
    )
    releases = synthetic_releases(args.releases, args.elections)
    pipeline = LocalPipeline(settings, workers=1)
    await pipeline.start()
    assert pipeline.topics is not None
    topic = pipeline.topics.releases
    try:
        producer = AIOKafkaProducer(
            bootstrap_servers=pipeline.bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20
        )
        await producer.start()
        # Phase 1: worker start-up, until it has processed one release (consumer group joined).
        t0 = time.perf_counter()
        warmup = Release("bench-warmup", releases[0].as_of, releases[0].published_at, releases[0].turnout)
        await producer.send_and_wait(topic, json.dumps(warmup.to_dict()).encode(), key=b"bench-warmup")
        await wait_drained(pipeline.bootstrap, settings.app_id, [topic], settings.partitions, timeout=120)
        startup = time.perf_counter() - t0
        # Phase 2: the burst. Publishing outpaces the agent, so the drain time measures the agent.
        t1 = time.perf_counter()
        futures = [
            await producer.send(topic, json.dumps(r.to_dict()).encode(), key=r.election.encode()) for r in releases
        ]
        await asyncio.gather(*futures)
        publish = time.perf_counter() - t1
        await wait_drained(pipeline.bootstrap, settings.app_id, [topic], settings.partitions, timeout=600)
        total = time.perf_counter() - t1
        await producer.stop()
    finally:
        pipeline.stop()
    return {
        "releases": len(releases),
        "region_figures": sum(len(r.turnout) for r in releases),
        "worker_startup_seconds": round(startup, 2),
        "publish_seconds": round(publish, 2),
        "seconds_until_all_committed": round(total, 2),
        "releases_per_second": round(len(releases) / total, 1),
        "region_figures_per_second": round(sum(len(r.turnout) for r in releases) / total, 1),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--releases", type=int, default=20000)
    parser.add_argument("--elections", type=int, default=200)
    print(json.dumps(asyncio.run(main(parser.parse_args()))))
