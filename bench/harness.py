"""What every bench shares: a reference in the same run, interleaved repeats, medians and spread, exact counts.

The machine is shared (raw rates swing +-20 %), so a figure alone says little: each bench times the
worker and its reference alternately (`--repeat`, worker then reference, on the same broker and the same
records) and prints per-run values, the median, and the spread (min-max as % of the median) of each and
of their ratio. A worker's run counts only if it processed exactly the N records published (its
`/metrics` events counter, or the records on its output topic); completion is checked on true partition
ends (bench/drain.py), never on tansu's low ListOffsets answer.

Kept to aiokafka and the standard library (plus prometheus_client's parser) so a bench runs against an
older checkout too (PYTHONPATH=<checkout>) for a before/after. Run such a before/after from outside
any checkout (`cd /tmp`): workers and servers are started with `python -m`, which puts the current
directory first on the path, so from inside /work/main they would import the current code whatever
PYTHONPATH says.
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from prometheus_client.parser import text_string_to_metric_families


def summary(values: Sequence[float]) -> dict[str, float]:
    """Median, min, max and spread ((max-min)/median, %) of a run's repeats."""
    med = statistics.median(values)
    return {
        "median": round(med, 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
        "spread_pct": round(100 * (max(values) - min(values)) / med, 1) if med else 0.0,
    }


def report(
    name: str,
    runs: dict[str, list[float]],
    ratio: tuple[str, str] | None = None,
    also: tuple[tuple[str, str], ...] = (),
) -> dict[str, Any]:
    """One JSON-able result: every run, the summaries, and the median of per-repeat ratios (`ratio`,
    the headline; `also`, others, e.g. the same comparison in CPU time, steadier on a shared machine)."""
    out: dict[str, Any] = {"bench": name, "runs": {k: [round(v, 3) for v in vs] for k, vs in runs.items()}}
    out["summary"] = {k: summary(vs) for k, vs in runs.items() if vs}
    for key, pair in [("ratio", ratio)] + [(f"ratio_{i + 2}", p) for i, p in enumerate(also)]:
        if pair is None:
            continue
        num, den = pair
        ratios = [a / b for a, b in zip(runs[num], runs[den], strict=True) if b]
        if ratios:
            out[key] = {"of": f"{num}/{den}", **summary(ratios)}
    return out


def print_report(result: dict[str, Any]) -> None:
    """A readable table on stderr, the JSON line on stdout."""
    import sys

    print(f"\n{result['bench']}", file=sys.stderr)
    for key, s in result["summary"].items():
        spread = f"[{s['min']:,.3f} .. {s['max']:,.3f}]  spread {s['spread_pct']}%"
        print(f"  {key:<34} median {s['median']:>12,.3f}  {spread}", file=sys.stderr)
    for key in [k for k in result if k == "ratio" or k.startswith("ratio_")]:
        r = result[key]
        print(f"  ratio {r['of']:<28} median {r['median']:>12.3f}  [{r['min']:.3f} .. {r['max']:.3f}]", file=sys.stderr)
    print(json.dumps(result))


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """A worker's /metrics as {(sample name, sorted labels): value}."""
    with urllib.request.urlopen(url, timeout=5) as response:
        text = response.read().decode()
    out = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def sample(url: str, name: str, **labels: str) -> float | None:
    try:
        return scrape(url).get((name, tuple(sorted(labels.items()))))
    except OSError:
        return None


def events_processed(url: str, stream: str) -> float:
    return sample(url, "turnout_watch_events_processed_total", stream=stream) or 0.0


async def wait_until(check: Callable[[], bool], timeout: float, poll: float = 0.02) -> float:
    """perf_counter() at the first poll where `check()` holds."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        if await asyncio.to_thread(check):
            return time.perf_counter()
        await asyncio.sleep(poll)
    raise TimeoutError(f"not within {timeout} s")


async def publish(bootstrap: str, topic: str, records: Sequence[tuple[bytes, bytes]]) -> float:
    """Publish (key, value) records, acks=all; return the seconds it took."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=20, max_batch_size=1 << 20)
    await producer.start()
    try:
        started = time.perf_counter()
        futures = [await producer.send(topic, value, key=key) for key, value in records]
        await asyncio.gather(*futures)
        return time.perf_counter() - started
    finally:
        await producer.stop()


async def raw_consume(bootstrap: str, topic: str, partitions: int, n: int) -> float:
    """The reference: a plain aiokafka consumer reading `n` records of `topic` from the start, each
    through `json.loads`. Returns records per second (from the first fetch answer to the n-th record)."""
    return (await raw_read(bootstrap, topic, partitions, n))[0]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used, all its threads (Linux /proc/PID/stat)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def raw_read(bootstrap: str, topic: str, partitions: int, n: int) -> tuple[float, float]:
    """`raw_consume`'s records per second, and this process's CPU microseconds per record meanwhile."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, fetch_max_wait_ms=50)
    await consumer.start()
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        seen = 0
        started: float | None = None
        cpu = 0.0
        while seen < n:
            batch = await consumer.getmany(timeout_ms=1000, max_records=10_000)
            if started is None and batch:
                started, cpu = time.perf_counter(), time.process_time()
            for records in batch.values():
                for record in records:
                    json.loads(record.value)
                seen += len(records)
        assert started is not None
        return n / (time.perf_counter() - started), (time.process_time() - cpu) / n * 1e6
    finally:
        await consumer.stop()


async def worker_run(
    records: Sequence[tuple[bytes, bytes]],
    *,
    bootstrap: str,
    topic: str,
    stream: str,
    then_drained: Sequence[str] = (),
    profile: Path | None = None,
    timeout: float = 600,
) -> dict[str, Any]:
    """One worker, started on `records` already published on `topic` (one of the pipeline's topic
    attributes, e.g. "releases"), so publishing never limits what is measured.

    The clock starts at the first poll where the worker's events counter for `stream` moved (the
    records of that first batch are not counted) and stops when the counter reads exactly N and the
    group committed `topic` and `then_drained` (a later hop) to their true ends. Offsets are committed
    every 0.5 s, so the stop is up to that late: runs of several seconds keep it small.
    """
    import tempfile
    import uuid

    from drain import wait_drained

    from turnout_watch.core.settings import load_settings
    from turnout_watch.services.pipeline import LocalPipeline

    settings = load_settings(
        broker=bootstrap,
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}.",
        metrics_port=0,
        data_dir=Path(tempfile.mkdtemp(prefix="tw-bench-")),
    )
    pipeline = LocalPipeline(settings, workers=0)
    await pipeline.start()  # topics only
    names = pipeline.topics
    assert names is not None
    source = getattr(names, topic)
    later = [getattr(names, t) for t in then_drained if hasattr(names, t)]
    n = len(records)
    publish_seconds = await publish(bootstrap, source, records)
    worker = pipeline.spawn_worker(0)
    pipeline.worker_processes.append(worker)
    url = worker.metrics_url
    spy = None
    try:

        def moved() -> bool:
            pipeline.check_workers()  # a worker that died says why, rather than a timeout
            return events_processed(url, stream) > 0

        started = await wait_until(moved, timeout=120, poll=0.01)
        first_batch = events_processed(url, stream)
        cpu_started = cpu_seconds(worker.process.pid)
        if profile is not None:
            spy = py_spy(worker.process.pid, 8, profile)
        # /metrics renders every election's series: polled 10 times a second it took ~10 % of the worker,
        # so it is polled only to time a first hop, and the end is read from the group's commits
        if later:
            await wait_until(lambda: events_processed(url, stream) >= n, timeout=timeout, poll=0.5)
        first_hop = time.perf_counter()
        await wait_drained(bootstrap, groups(settings), [source, *later], settings.partitions, timeout=timeout)
        done = time.perf_counter()
        cpu = cpu_seconds(worker.process.pid) - cpu_started
        if not later:
            first_hop = done
        processed = events_processed(url, stream)
        assert processed == n, f"the worker processed {processed} {stream} events, not exactly {n}"
        rss, peak = rss_mb(worker.process.pid)
        if spy is not None:
            spy.wait(timeout=30)
        return {
            "rate": (n - first_batch) / (done - started),
            "first_hop_rate": (n - first_batch) / max(first_hop - started, 1e-6),
            "publish_seconds": publish_seconds,
            "seconds": done - started,
            "cpu_us_per_record": cpu / (n - first_batch) * 1e6,  # the worker's, all threads, up to the commit
            "first_batch": first_batch,
            "rss_mb": rss,  # the worker's resident memory once it processed all N, and its peak
            "peak_rss_mb": peak,
            "topics": names,
            "settings": settings,
        }
    finally:
        pipeline.stop()
        if spy is not None and spy.poll() is None:
            spy.kill()


def rss_mb(pid: int) -> tuple[float, float]:
    """A process's resident memory now and at its peak (VmRSS, VmHWM), MB; NaN where /proc has none."""
    found = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                name, _, value = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    found[name] = int(value.split()[0]) / 1024
    except OSError:
        pass
    return found.get("VmRSS", float("nan")), found.get("VmHWM", float("nan"))


def groups(settings: Any) -> str | dict[str, str]:
    """The consumer group that commits each topic the worker reads; the app's for all of them in a
    checkout from before the counts hop had its own group."""
    try:
        from turnout_watch.core.topics import consumer_groups
    except ImportError:
        return str(settings.app_id)
    return consumer_groups(settings)


def py_spy(pid: int, seconds: float, out: Path) -> subprocess.Popen[bytes]:
    """Sample a worker with py-spy (raw collapsed stacks) while a bench drives it."""
    import sys

    spy = Path(sys.executable).with_name("py-spy")
    out.parent.mkdir(parents=True, exist_ok=True)
    return subprocess.Popen(
        [str(spy), "record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200", "-f", "raw", "-o", str(out)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
