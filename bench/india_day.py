"""An India-sized election day on this machine: what one election's owner, the Kafka hops and the intake
sustain at the peak hour, and the workers, partitions, intake processes and memory such a day needs.

The day is synthetic (numpy, generated one hour at a time, never held whole): `--stations` polling
stations (default 1,000,000; India had 1.05 M in 2024) in `--units` reporting units (default 4,123,
about as many as India's assembly constituencies; unequal, lognormal: the 1st-99th percentile is about 0.35 to
2.4 times the mean), 100-1,500 voters on each station's list, polls 07:00-18:00 (+05:30), one count a
station an hour from 08:00 to 18:00 (11 M counts; `--commission-share` adds the commission's figure
at that share of stations), cumulative turnout rising on each unit's own curve to 45-85 %. Arrivals are
bursty: `--burst-share` (50 %) of an hour's reports in its first `--burst-minutes` (10), 45 % over the
rest of the hour, 5 % late by 1-2.5 h. The peak hour's and the peak 10 minutes' arrival rates are read
off the generated arrival times (one-minute bins, sliding windows), not assumed.

Measured, in this order (each with the 1- and 5-minute load average beside it):

1. owner, in-process, the real code on 4,123 units. The worker checks region codes against the
   Kazakhstan gazetteer (20 regions), so one election's owner is driven here without Kafka or Faust,
   exactly as its agent takes a record: each clock hour's counts in arrival order, in `station-counts`
   records of 2,000 rows (`streams.agents.ROWS_PER_RECORD`, in the counts hop's `encode_rows` format,
   untimed), each decoded by `streams.codec.station_counts`, its codes checked against the names, given
   to `TurnoutTracker.add_counts` and its result to `ElectionFigures` (the /metrics state); each hour's
   official release of all units (published 20 min after the hour) through `streams.codec.release` and
   `TurnoutTracker.process` at its place in the arrival order. Timed per record; the busiest clock
   hour's counts / seconds is the owner's rate. `--owner-hours` clock hours (default 3: 3 M counts
   held; 0 = the whole day: 11 M counts, about 1.3 GB, 7 min), each repeat in a fresh forked process. Bytes per
   count held = the VmRSS slope over the hours after the second (the second release is the first with
   rises to score: the jump rules' leave-one-out index, units x units, is built then and kept, a fixed
   cost reported apart); a release's transient peak is VmHWM reset just before it (clear_refs). The
   full day's state is extrapolated from the slope (the whole-day run measures it).
2. kafka: both hops in one real worker process (counts hop, then the election's agent) on the embedded
   broker, as bench/observer_throughput.py does (bench/harness.py `worker_run`: pre-published, exactly N
   counted, true partition ends): the peak hour's counts (`--worker-counts`, default all of it, ~1 M),
   region codes relabelled onto Kazakhstan's 20 so the real worker takes them; then the raw reference
   (aiokafka + json.loads) on the same records. Also a 10,000-station day (`--small-day`, the same
   model, tally + commission at 80 % of stations, ~200 k counts): the worker's RSS after it. The two
   RSS figures give the worker's own bytes per count held and its base.
3. intake: bench/observer_intake.py as a child process, `--stations 10000 --hour all --no-reference`
   (a 10,000-station day, one report per POST, 64 connections from the same 2 cores; that bench's
   `--repeat` runs its minimal acks=all reference): accepted/s and the server's RSS.

Then the plan: required rates (average of the peak hour, peak 10 minutes), intake processes, one
worker's rate on both hops with 4,123 units (bounded below: 1 / (1/worker + 1/owner), all of the
20-region worker's time counted as the hop's), workers for throughput, the owner's memory for the day
under election keying against `--rss-budget-mb` budgets (the station ledger keeps its counts in
columns, `detectors/station_ledger.py`: ~110 bytes a count held, from ~560 as objects), and what
would fit otherwise: the ledger keyed by (election, unit) over N owners (N = state / (budget - worker
base)). Reproduce:

    .venv/bin/python bench/india_day.py --repeat 2                  # the full bench, about 8 min
    .venv/bin/python bench/india_day.py --owner-hours 0 --repeat 1 --skip-kafka --skip-intake  # whole day, about 1.3 GB
    .venv/bin/python bench/india_day.py --stations 20000 --repeat 1 --skip-intake  # smoke, about 40 s

Prints a table on stderr and one JSON line on stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import math
import multiprocessing
import os
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, fields
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import numpy.typing as npt
from harness import print_report, raw_consume, report, rss_mb, worker_run
from observer_throughput import CODES, rows_on

from detectors.tracker import TurnoutTracker
from streams.agents import ROWS_PER_RECORD
from streams.codec import release as release_of
from streams.codec import station_counts
from streams.metrics import ElectionFigures
from turnout_watch.core.errors import RecordError
from turnout_watch.core.records import STATION_ROW_FIELDS, Release, encode
from turnout_watch.services.broker import launch_broker

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

ELECTION = "bench-india-day"
ZONE = "Asia/Kolkata"
OFFSET = 19800.0  # +05:30, seconds
OPENS = datetime(2024, 5, 20, 7, tzinfo=timezone(timedelta(seconds=OFFSET)))
HOUR = 3600.0
RELEASE_DELAY = 1200.0  # an hour's official figures are published 20 minutes after it
HERE = Path(__file__).resolve().parent


@dataclass
class Chunk:
    """Counts as columns, one row a count: station index, commission (else tally), unix times, figures."""

    station: IntArray
    commission: BoolArray
    observed: FloatArray
    received: FloatArray
    registered: IntArray
    voted: IntArray

    def __len__(self) -> int:
        return len(self.station)

    def take(self, index: npt.NDArray[Any]) -> Chunk:
        return Chunk(*(getattr(self, f.name)[index] for f in fields(self)))

    @staticmethod
    def concat(chunks: Sequence[Chunk]) -> Chunk:
        return Chunk(*(np.concatenate([getattr(c, f.name) for c in chunks]) for f in fields(Chunk)))

    @staticmethod
    def empty() -> Chunk:
        ints, floats = np.zeros(0, np.int64), np.zeros(0, np.float64)
        return Chunk(ints, np.zeros(0, bool), floats, floats, ints, ints)


class Day:
    """A synthetic India-sized day: stations in unequal units, hourly cumulative counts, bursty arrivals."""

    def __init__(
        self,
        stations: int,
        units: int,
        *,
        hours: int = 11,
        seed: int = 1,
        commission_share: float = 0.0,
        burst_share: float = 0.5,
        burst_minutes: float = 10.0,
        late_share: float = 0.05,
    ) -> None:
        rng = np.random.default_rng(seed)
        self.stations, self.units, self.hours, self.seed = stations, units, hours, seed
        self.commission_share, self.burst_share, self.late_share = commission_share, burst_share, late_share
        self.burst_seconds = burst_minutes * 60.0
        weights = rng.lognormal(0.0, 0.4, units)
        exact = weights / weights.sum() * stations
        per_unit = np.floor(exact).astype(np.int64)
        for i in np.argsort(per_unit - exact)[: stations - int(per_unit.sum())]:  # largest remainders
            per_unit[i] += 1
        self.per_unit = per_unit
        self.unit = np.repeat(np.arange(units, dtype=np.int64), per_unit)
        self.registered = np.clip(rng.lognormal(np.log(950.0), 0.3, stations), 100, 1500).astype(np.int64)
        self.final = np.clip(rng.normal(0.66, 0.09, units), 0.45, 0.85)  # each unit's turnout at close
        self.shape = rng.uniform(1.0, 1.4, units)  # >1: faster in the morning (1 - (1 - t)^shape)
        spread = 0.12
        self.factor = np.exp(rng.normal(-spread * spread / 2, spread, stations))  # station around its unit
        self.opens = OPENS.timestamp()
        self.codes = [f"IN-U{i:04d}" for i in range(units)]
        self.names = {code: f"Unit {i + 1}" for i, code in enumerate(self.codes)}
        self.station_ids = [f"IN-{i:07d}" for i in range(stations)]

    @property
    def counts_per_hour(self) -> float:
        return self.stations * (1.0 + self.commission_share)

    def official(self, hour: int) -> FloatArray:
        """Each unit's cumulative turnout (%) as of `hour` hours after polls opened."""
        t = min(hour, self.hours) / self.hours
        return np.asarray(100.0 * self.final * (1.0 - (1.0 - t) ** self.shape))

    def counts(self, hour: int) -> Chunk:
        """Every station's count as of `hour` (the tally; the commission's at `commission_share` of them)."""
        rng = np.random.default_rng([self.seed, hour])
        n, at = self.stations, self.opens + hour * HOUR
        share = (self.official(hour) / 100.0)[self.unit] * self.factor
        voted = np.minimum(self.registered, np.rint(self.registered * np.minimum(0.995, share))).astype(np.int64)
        station = np.arange(n, dtype=np.int64)
        commission = np.zeros(n, dtype=bool)
        if self.commission_share > 0:
            also = np.flatnonzero(rng.random(n) < self.commission_share)
            station = np.concatenate([station, also])
            commission = np.concatenate([commission, np.ones(len(also), dtype=bool)])
            voted = np.concatenate([voted, voted[also]])
        k = len(station)
        kind = rng.random(k)
        delay = np.where(
            kind < self.burst_share,
            rng.uniform(0.0, self.burst_seconds, k),
            np.where(
                kind < 1.0 - self.late_share, rng.uniform(self.burst_seconds, HOUR, k), rng.uniform(HOUR, 9000, k)
            ),
        )
        observed = at - rng.uniform(0.0, 1200.0, k)  # within the ledger's 30-minute window before the hour
        return Chunk(station, commission, observed, at + delay, self.registered[station], voted)

    def windows(self) -> Iterator[tuple[int, Chunk]]:
        """Counts in the order they arrive, one clock hour at a time: window w holds those received in
        [opens + w h, opens + (w + 1) h); late counts are carried to the hour they arrive in."""
        carry, w = Chunk.empty(), 1
        while w <= self.hours or len(carry):
            end = self.opens + (w + 1) * HOUR
            pool = Chunk.concat([carry, self.counts(w)]) if w <= self.hours else carry
            now = pool.received < end
            window = pool.take(np.flatnonzero(now))
            carry = pool.take(np.flatnonzero(~now))
            yield w, window.take(np.argsort(window.received, kind="stable"))
            w += 1

    def release(self, hour: int) -> Release:
        as_of = OPENS + timedelta(hours=hour)
        figures = self.official(hour).round(2).tolist()
        return Release(
            ELECTION,
            as_of,
            as_of + timedelta(seconds=RELEASE_DELAY),
            dict(zip(self.codes, figures, strict=True)),
            timezone=ZONE,
            polls_open=OPENS,
            polls_close=OPENS + timedelta(hours=self.hours),
        )


@dataclass
class Profile:
    """Arrivals per minute of the day, and what the busiest windows need."""

    per_minute: IntArray

    def peak(self, minutes: int) -> tuple[int, int]:
        """(arrivals, first minute after polls opened) of the busiest `minutes`-long window."""
        sums = np.convolve(self.per_minute, np.ones(minutes, dtype=np.int64), mode="valid")
        at = int(np.argmax(sums))
        return int(sums[at]), at

    def lag_minutes(self, capacity_per_s: float) -> float:
        """The longest a count waits (minutes) behind the queue a server of this rate builds (fluid model)."""
        per_minute, backlog, worst = capacity_per_s * 60.0, 0.0, 0.0
        for arrived in self.per_minute.tolist():
            backlog = max(0.0, backlog + arrived - per_minute)
            worst = max(worst, backlog)
        return worst / per_minute if per_minute > 0 else math.inf


def profile_of(day: Day) -> tuple[Profile, int, dict[int, int]]:
    """The day's arrival profile, its total counts and the counts of each clock-hour window."""
    per_minute = np.zeros(24 * 60, dtype=np.int64)
    total, by_window = 0, {}
    for w, chunk in day.windows():
        minutes = ((chunk.received - day.opens) // 60).astype(np.int64)
        per_minute += np.bincount(minutes, minlength=len(per_minute))[: len(per_minute)]
        total += len(chunk)
        by_window[w] = len(chunk)
    return Profile(per_minute), total, by_window


# --- 1. the election's owner, in-process --------------------------------------------------------------


def _rows(day: Day, chunk: Chunk, codes: Sequence[str]) -> list[tuple[Any, ...]]:
    ids = day.station_ids
    stations, units = chunk.station.tolist(), day.unit[chunk.station].tolist()
    sources = ["commission" if c else "tally" for c in chunk.commission.tolist()]
    return list(
        zip(
            [ids[s] for s in stations],
            [codes[u] for u in units],
            sources,
            chunk.observed.tolist(),
            [OFFSET] * len(chunk),
            chunk.received.tolist(),
            chunk.registered.tolist(),
            chunk.voted.tolist(),
            strict=True,
        )
    )


def station_records(day: Day, chunk: Chunk) -> list[bytes]:
    """The chunk's counts as the counts hop writes them: `station-counts` values of ROWS_PER_RECORD rows
    (what `streams.codec.encode_rows` writes, built here from columns rather than StationRow objects)."""
    rows = _rows(day, chunk, day.codes)
    head = {"election": ELECTION, "fields": list(STATION_ROW_FIELDS)}
    return [
        json.dumps({**head, "rows": rows[i : i + ROWS_PER_RECORD]}, ensure_ascii=False, allow_nan=False).encode()
        for i in range(0, len(rows), ROWS_PER_RECORD)
    ]


class Owner:
    """One election's tracker and /metrics figures, taking records as the worker's agent does
    (`AgentState.process_record`, `publish_flags`, `report`, `report_updates`), without Kafka or Faust."""

    def __init__(self, names: dict[str, str]) -> None:
        self.names = names
        self.tracker = TurnoutTracker(ELECTION, names, zone=ZoneInfo(ZONE))
        self.figures = ElectionFigures(ELECTION)
        self.flags = 0

    def take_counts(self, value: bytes) -> None:
        counts = station_counts(value)
        if counts is None:
            raise RecordError("station counts the fast codec refused")
        if any(row.region_code not in self.names for row in counts.rows):
            raise RecordError("station counts: region codes the gazetteer does not know")
        self._report(self.tracker.add_counts(counts.rows), None)

    def take_release(self, value: bytes) -> None:
        release = release_of(value)
        if release is None or any(code not in self.names for code in release.turnout):
            raise RecordError("a release the fast codec refused, or unknown codes")
        result = self.tracker.process(release)
        self._report(result, release)
        self.figures.record_updates(result.updates)

    def _report(self, result: Any, release: Release | None) -> None:
        now = time.time()
        self.flags += len(self.figures.admit_flags(result.flags, now))
        if release is not None:
            self.figures.record_polls(release.polls_open, release.polls_close)
        self.figures.record_estimates(result.estimates)
        if result.counted_regions:
            self.figures.record_counts(result.counted_regions, now)


def reset_peak() -> float:
    """Reset this process's peak RSS (VmHWM) to its RSS now (Linux: clear_refs 5); return that RSS, MB."""
    try:
        with open("/proc/self/clear_refs", "w") as refs:
            refs.write("5")
    except OSError:
        pass
    return rss_mb(os.getpid())[0]


_DAY: Day | None = None  # the day a forked owner run reads (inherited, not pickled)


def owner_run(hours: int) -> dict[str, Any]:
    """The owner over the day's first `hours` clock-hour windows (0: all), in this (fresh) process."""
    day = _DAY
    assert day is not None
    owner = Owner(day.names)
    gc.collect()
    base_rss = rss_mb(os.getpid())[0]
    windows: list[dict[str, Any]] = []
    total_s, total_n = 0.0, 0
    for w, chunk in day.windows():
        if hours and w > hours:
            break
        work: list[tuple[str, bytes]] = []  # in arrival order: the release between the counts before and after it
        if w <= day.hours:
            release = day.release(w)
            split = int(np.searchsorted(chunk.received, release.published_at.timestamp()))
            work += [("counts", value) for value in station_records(day, chunk.take(np.arange(split)))]
            work.append(("release", encode(release)))
            work += [("counts", value) for value in station_records(day, chunk.take(np.arange(split, len(chunk))))]
        else:
            work += [("counts", value) for value in station_records(day, chunk)]
        seconds = {"counts": 0.0, "release": 0.0}
        release_extra = 0.0
        for kind, value in work:
            started = time.perf_counter()
            if kind == "release":
                before = reset_peak()
                owner.take_release(value)
                release_extra = rss_mb(os.getpid())[1] - before
            else:
                owner.take_counts(value)
            seconds[kind] += time.perf_counter() - started
        del work
        gc.collect()
        rss, peak = rss_mb(os.getpid())
        held = len(owner.tracker.stations.latest)
        spent = seconds["counts"] + seconds["release"]
        total_s, total_n = total_s + spent, total_n + len(chunk)
        windows.append(
            {"window": w, "counts": len(chunk), "seconds": round(spent, 2), "rate": round(len(chunk) / spent, 1)}
            | {"release_seconds": round(seconds["release"], 2), "release_peak_extra_mb": round(release_extra, 1)}
            | {"held": held, "rss_mb": round(rss, 1)}
            | {"peak_rss_mb": round(peak, 1), "load1": round(os.getloadavg()[0], 2)}
        )
        print(
            f"  owner window {w:>2}: {len(chunk):>9,} counts in {spent:6.1f} s = {len(chunk) / spent:>9,.0f}/s"
            f" (release {seconds['release']:.2f} s); {held:>10,} held, RSS {rss:,.0f} MB"
            f" (peak since the release {peak:,.0f} MB); load {os.getloadavg()[0]:.2f}",
            file=sys.stderr,
        )
    busiest = max(windows, key=lambda x: (x["counts"], x["window"]))
    # Bytes per count held: the RSS slope over the windows after the second. The second release is the
    # first with rises to score, and the jump rules' leave-one-out index (units x units) is built and
    # kept then: a fixed cost of the units, not of the counts (reported apart as `fixed_mb`).
    later = windows[1:] if len(windows) >= 3 else windows
    first = later[0] if len(later) > 1 else {"held": 0, "rss_mb": base_rss}
    slope = (later[-1]["rss_mb"] - first["rss_mb"]) * 2**20 / max(later[-1]["held"] - first["held"], 1)
    return {
        "windows": windows,
        "busiest": busiest,
        "rate": total_n / total_s,
        "held": windows[-1]["held"],
        "base_rss_mb": base_rss,
        "rss_mb": windows[-1]["rss_mb"],
        "peak_rss_mb": windows[-1]["peak_rss_mb"],
        "bytes_per_count": slope,
        "fixed_mb": windows[-1]["rss_mb"] - base_rss - slope * windows[-1]["held"] / 2**20,
        "release_seconds": max(x["release_seconds"] for x in windows),
        "release_peak_extra_mb": max(x["release_peak_extra_mb"] for x in windows),
        "flags": owner.flags,
    }


def owner_runs(day: Day, hours: int, repeat: int) -> list[dict[str, Any]]:
    global _DAY
    _DAY = day
    out = []
    for i in range(repeat):
        print(f"owner run {i + 1}/{repeat}", file=sys.stderr)
        with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool:
            out.append(pool.submit(owner_run, hours).result())
    return out


# --- 2. the real worker on the broker -----------------------------------------------------------------


def _iso(seconds: FloatArray) -> list[str]:
    local = (np.rint(seconds) + OFFSET).astype(np.int64).astype("datetime64[s]")
    return [f"{text}+05:30" for text in np.datetime_as_string(local, unit="s").tolist()]


def observer_records(day: Day, chunk: Chunk, tag: str) -> list[tuple[bytes, bytes]]:
    """The chunk as the intake publishes it on `observer-counts` (keyed by station), its units relabelled
    onto Kazakhstan's 20 region codes (the worker only takes codes its gazetteer knows)."""
    codes = [CODES[u % len(CODES)] for u in range(day.units)]
    observed, received = _iso(chunk.observed), _iso(chunk.received)
    out = []
    for i, (station, code, source, _, _, _, registered, voted) in enumerate(_rows(day, chunk, codes)):
        value = (
            f'{{"type":"observer_count","election":"{ELECTION}","station":"{station}","region":"{code}",'
            f'"observed_at":"{observed[i]}","received_at":"{received[i]}","registered":{registered},'
            f'"voted":{voted},"source":"{source}","report_id":"{tag}-{i}","region_code":"{code}"}}'
        )
        out.append((station.encode(), value.encode()))
    return out


def peak_window(day: Day, window: int, limit: int) -> Chunk:
    for w, chunk in day.windows():
        if w == window:
            return chunk if not limit else chunk.take(np.arange(min(limit, len(chunk))))
    raise ValueError(f"no window {window}")


async def kafka_runs(
    peak: list[tuple[bytes, bytes]], small: list[tuple[bytes, bytes]], repeat: int
) -> dict[str, list[float]]:
    broker = await asyncio.to_thread(launch_broker)
    runs: dict[str, list[float]] = {
        "worker_counts_per_s": [],
        "raw_counts_per_s": [],
        "first_hop_counts_per_s": [],
        "worker_rss_mb_peak_hour": [],
        "worker_rss_mb_small_day": [],
        "worker_peak_rss_mb_small_day": [],
    }
    try:
        for i in range(repeat):
            print(f"kafka run {i + 1}/{repeat}: {len(peak):,} counts (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
            for records, label in ((peak, "peak"), (small, "small")):
                run = await worker_run(
                    records,
                    bootstrap=broker.bootstrap,
                    topic="observer_counts",
                    stream="observer_counts",
                    then_drained=["station_counts"],
                    timeout=900,
                )
                topics, settings = run["topics"], run["settings"]
                held = await rows_on(broker.bootstrap, topics.station_counts, settings.partitions)
                assert held == len(records), f"the second hop holds {held} counts, not {len(records)}"
                if label == "small":
                    runs["worker_rss_mb_small_day"].append(run["rss_mb"])
                    runs["worker_peak_rss_mb_small_day"].append(run["peak_rss_mb"])
                    continue
                raw = await raw_consume(broker.bootstrap, topics.observer_counts, settings.partitions, len(records))
                runs["worker_counts_per_s"].append(run["rate"])
                runs["first_hop_counts_per_s"].append(run["first_hop_rate"])
                runs["raw_counts_per_s"].append(raw)
                runs["worker_rss_mb_peak_hour"].append(run["rss_mb"])
                print(
                    f"  worker {run['rate']:,.0f}/s (raw {raw:,.0f}/s), RSS {run['rss_mb']:,.0f} MB after"
                    f" {len(records):,} counts (load {os.getloadavg()[0]:.2f})",
                    file=sys.stderr,
                )
    finally:
        broker.stop()
    return runs


# --- 3. the intake ------------------------------------------------------------------------------------


def intake_run(stations: int) -> dict[str, Any]:
    """bench/observer_intake.py on a day of `stations` (the intake alone: its reference is that bench's)."""
    command = [sys.executable, str(HERE / "observer_intake.py"), "--stations", str(stations), "--hour", "all"]
    command += ["--concurrency", "64", "--chunk", "25000", "--no-reference"]
    print(f"intake: {' '.join(command[1:])} (load {os.getloadavg()[0]:.2f})", file=sys.stderr)
    done = subprocess.run(command, capture_output=True, text=True, check=True, cwd=HERE.parent)
    printed: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result: dict[str, Any] = printed.get("intake_last_run", printed)  # the bench's last intake run
    result["load1_after"] = round(os.getloadavg()[0], 2)
    print(
        f"  intake {result['accepted_per_s']:,} accepted/s, RSS {result['server_rss_mib']} MiB after"
        f" {result['accepted']:,} reports (load {result['load1_after']})",
        file=sys.stderr,
    )
    return result


# --- the plan -----------------------------------------------------------------------------------------


def median(values: Sequence[float]) -> float:
    return float(np.median(values)) if values else float("nan")


def plan(
    day: Day,
    profile: Profile,
    total: int,
    owner: Sequence[dict[str, Any]],
    runs: dict[str, list[float]],
    kafka_counts: tuple[int, int],
    intake: dict[str, Any] | None,
    budgets_mb: Sequence[float],
) -> dict[str, Any]:
    """What the measurements say the day needs (see the module's note; every figure is in the JSON)."""
    hour_n, hour_at = profile.peak(60)
    burst_n, burst_at = profile.peak(10)
    need_avg, need_burst = hour_n / 3600.0, burst_n / 600.0
    out: dict[str, Any] = {
        "required": {
            "counts_day": total,
            "peak_hour_counts": hour_n,
            "peak_hour_starts": (OPENS + timedelta(minutes=hour_at)).strftime("%H:%M"),
            "peak_hour_per_s": round(need_avg, 1),
            "peak_10min_per_s": round(need_burst, 1),
            "peak_10min_starts": (OPENS + timedelta(minutes=burst_at)).strftime("%H:%M"),
        }
    }
    # One count a station an hour unless --commission-share says otherwise; observers-sim also sends the
    # commission's figure at 80 % of stations: the day's counts and state x 1.8 / (1 + share).
    with_commission = 1.8 / (1.0 + day.commission_share)
    if intake:
        rate = float(intake["accepted_per_s"])
        out["intake"] = {
            "accepted_per_s_one_process": rate,
            "processes_for_peak_hour": math.ceil(need_avg / rate),
            "processes_for_peak_10min": math.ceil(need_burst / rate),
            "processes_for_peak_10min_with_commission_80pct": math.ceil(need_burst * with_commission / rate),
            "rss_mib_small_day": intake["server_rss_mib"],
            "peak_rss_mib_small_day": intake["server_peak_rss_mib"],
        }
    own = median([r["busiest"]["rate"] for r in owner]) if owner else math.nan
    worker = median(runs.get("worker_counts_per_s", []))
    if worker == worker:
        n_peak, n_small = kafka_counts
        rss_peak, rss_small = median(runs["worker_rss_mb_peak_hour"]), median(runs["worker_rss_mb_small_day"])
        slope = (rss_peak - rss_small) / (n_peak - n_small) * 2**20 if n_peak != n_small else math.nan
        out["worker"] = {
            "both_hops_counts_per_s_20_regions": round(worker, 1),
            "raw_counts_per_s": round(median(runs["raw_counts_per_s"]), 1),
            "rss_mb_after_peak_hour": round(rss_peak, 1),
            "rss_mb_small_day": round(rss_small, 1),
            "peak_rss_mb_small_day": round(median(runs["worker_peak_rss_mb_small_day"]), 1),
            "bytes_per_count_held": round(slope),
            "base_rss_mb": round(rss_small - slope * n_small / 2**20, 1),
        }
    if not owner:
        return out
    bpc = median([r["bytes_per_count"] for r in owner])
    base = out.get("worker", {}).get("base_rss_mb", median([r["base_rss_mb"] for r in owner]))
    fixed = median([r["fixed_mb"] for r in owner])
    release_extra = median([r["release_peak_extra_mb"] for r in owner])
    day_mb = total * bpc / 2**20
    full = base + fixed + day_mb
    out["owner"] = {
        "counts_per_s_busiest_hour": round(own, 1),
        "held_when_measured": owner[0]["busiest"]["held"],
        "release_seconds_4k_units": round(median([r["release_seconds"] for r in owner]), 2),
        "release_peak_extra_mb_4k_units": round(release_extra),
        "core_share_at_peak_hour": round(need_avg / own, 3),
        "core_share_at_peak_10min": round(need_burst / own, 3),
        "bytes_per_count_held": round(bpc),
        "units_fixed_mb": round(fixed),
        "peak_rss_mb_in_run": round(median([r["peak_rss_mb"] for r in owner])),
        "state_mb_full_day": round(day_mb),
        "rss_mb_full_day_election_keyed": round(full),
        "peak_mb_full_day_election_keyed": round(full + release_extra),  # a release scored on top of the day
        "rss_mb_full_day_with_commission_80pct": round(base + fixed + day_mb * with_commission),
        "rebuild_seconds_full_day": round(total / own),
    }
    if worker != worker:
        return out
    # One worker doing both hops for India, bounded from below: all of the 20-region worker's time counted
    # as the counts hop's, plus the 4,123-unit owner's time, per count.
    both = 1.0 / (1.0 / worker + 1.0 / own)
    out["plan"] = {
        "one_worker_both_hops_4k_units_per_s": round(both, 1),
        "workers_for_peak_10min_throughput": math.ceil(need_burst / both),
        "workers_for_peak_10min_with_commission_80pct": math.ceil(need_burst * with_commission / both),
        "lag_minutes_one_worker": round(profile.lag_minutes(both), 2),
        "station_counts_partitions_election_keyed": 1,
        "release_owner_peak_mb_4k_units": round(base + fixed + release_extra),
    }
    # Keyed by (election, unit), a counts owner holds its units' ledger only; the releases (all units: the
    # jump rules compare them) stay with one owner per election, which carries the fixed cost above.
    for budget in budgets_mb:
        room = budget - base
        owners = math.ceil(day_mb / room) if room > 0 else None
        more = math.ceil(day_mb * with_commission / room) if room > 0 else None
        out["plan"] |= {
            f"election_keyed_fits_{budget:g}mb": full + release_extra <= budget,
            f"owners_unit_keyed_{budget:g}mb": owners,
            f"owners_unit_keyed_{budget:g}mb_with_commission_80pct": more,
            f"rebuild_seconds_unit_keyed_{budget:g}mb": round(total / owners / own) if owners else None,
        }
    return out


def show(p: dict[str, Any]) -> None:
    """The plan as lines on stderr."""
    for section, values in p.items():
        print(f"  [{section}]", file=sys.stderr)
        for key, value in values.items():
            shown = f"{value:,}" if isinstance(value, int | float) and not isinstance(value, bool) else str(value)
            print(f"    {key:<46} {shown}", file=sys.stderr)


def main(args: argparse.Namespace) -> dict[str, Any]:
    started, load = time.perf_counter(), {"start": os.getloadavg()}
    day = Day(
        args.stations,
        args.units,
        hours=args.hours,
        seed=args.seed,
        commission_share=args.commission_share,
        burst_share=args.burst_share,
        burst_minutes=args.burst_minutes,
    )
    profile, total, by_window = profile_of(day)
    sizes = np.percentile(day.per_unit, [1, 50, 99]).round().astype(int).tolist()
    print(
        f"day: {args.stations:,} stations in {args.units:,} units (stations a unit p1/p50/p99 {sizes}),"
        f" {total:,} counts in {len(by_window)} clock hours; generated in {time.perf_counter() - started:.1f} s",
        file=sys.stderr,
    )
    runs: dict[str, list[float]] = {}
    kafka_counts = (0, 0)
    owner: list[dict[str, Any]] = []
    if not args.skip_owner:
        owner = owner_runs(day, args.owner_hours, args.repeat)
        runs["owner_counts_per_s_busiest_hour"] = [r["busiest"]["rate"] for r in owner]
        runs["owner_counts_per_s_all_hours_run"] = [r["rate"] for r in owner]
        runs["owner_bytes_per_count_held"] = [r["bytes_per_count"] for r in owner]
        runs["owner_rss_mb_after"] = [r["rss_mb"] for r in owner]
        load["owner"] = os.getloadavg()
    if not args.skip_kafka:
        busiest = max(by_window, key=lambda w: by_window[w])
        peak = observer_records(day, peak_window(day, busiest, args.worker_counts), "peak")
        small_day = Day(args.small_day, max(1, args.small_day // 250), seed=args.seed, commission_share=0.8)
        small = [r for w, chunk in small_day.windows() for r in observer_records(small_day, chunk, f"d{w}")]
        print(f"kafka: {len(peak):,} counts of window {busiest}; small day {len(small):,} counts", file=sys.stderr)
        runs |= asyncio.run(kafka_runs(peak, small, args.repeat))
        kafka_counts = (len(peak), len(small))
        del peak, small
        load["kafka"] = os.getloadavg()
    intake = None
    if not args.skip_intake:
        intake = intake_run(args.small_day)
        runs["intake_accepted_per_s"] = [intake["accepted_per_s"]]
        runs["intake_rss_mib_small_day"] = [intake["server_rss_mib"]]
        load["intake"] = os.getloadavg()
    name = f"India-sized day: {args.stations:,} stations, {args.units:,} units, {total:,} counts"
    result = report(
        name, runs, ratio=("worker_counts_per_s", "raw_counts_per_s") if runs.get("raw_counts_per_s") else None
    )
    result["plan"] = plan(day, profile, total, owner, runs, kafka_counts, intake, args.rss_budget_mb)
    result["owner_windows"] = [r["windows"] for r in owner]
    result["owner_flags"] = [r["flags"] for r in owner]  # flags the owner published (a clean day: few)
    result["intake"] = intake
    result["load_average"] = {k: [round(x, 2) for x in v[:2]] for k, v in load.items()}
    result["cpus"] = os.cpu_count()
    result["seconds"] = round(time.perf_counter() - started, 1)
    result["args"] = vars(args)
    show(result["plan"])
    print(f"  load average (1, 5 min): {result['load_average']}; {result['seconds']} s", file=sys.stderr)
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=1_000_000)
    parser.add_argument("--units", type=int, default=4_123, help="reporting units (India: 4,123 constituencies)")
    parser.add_argument("--hours", type=int, default=11, help="hourly counts a station sends (polls open 07:00)")
    parser.add_argument("--commission-share", type=float, default=0.0, help="stations also sending the commission's")
    parser.add_argument("--burst-share", type=float, default=0.5, help="share of an hour's reports in its burst")
    parser.add_argument("--burst-minutes", type=float, default=10.0)
    parser.add_argument("--owner-hours", type=int, default=3, help="clock hours the owner takes (0: the whole day)")
    parser.add_argument("--worker-counts", type=int, default=0, help="counts through the real worker (0: peak hour)")
    parser.add_argument("--small-day", type=int, default=10_000, help="stations of the day whose RSS is checked")
    parser.add_argument(
        "--rss-budget-mb", type=float, nargs="+", default=[300.0, 1024.0, 4096.0], help="worker memory budgets"
    )
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip-owner", action="store_true")
    parser.add_argument("--skip-kafka", action="store_true")
    parser.add_argument("--skip-intake", action="store_true")
    print_report(main(parser.parse_args()))
