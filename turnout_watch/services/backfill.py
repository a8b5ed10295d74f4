"""Backfill a past election day into a Prometheus TSDB, on its real dates.

`turnout-watch replay DAY --backfill DIR` runs the day through the offline detectors (`detect_day`:
the same tracker the agents run, so the same values and flags as a live replay), builds the metric
families a worker exports (declared once in `streams/metrics.py`) with samples stamped with the
releases' own `as_of` times, writes them with client_python's OpenMetrics exposition, and turns that
into TSDB blocks with
`promtool tsdb create-blocks-from openmetrics FILE DIR`. A Prometheus started on DIR (or given the
blocks) then shows 20 Nov 2022 on 20 Nov 2022, and the watch-room dashboard replays it.

A gauge is written as a live scrape would have seen it: every `step` seconds from the region's first
release until an hour after the day's last one, holding the latest figure. Sampling only at the release
times would leave the series "stale" five minutes after each release (Prometheus' lookback), and panels
would show dots two hours apart instead of a line. Counters (flags, events) are cumulative, starting
at 0 when the day's first release is in.

Prometheus deletes blocks older than its retention, counted back from its newest block: a server that
also scrapes today's data keeps a 2022 backfill only with a retention that reaches back to 2022.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from prometheus_client.metrics_core import Metric
from prometheus_client.openmetrics.exposition import generate_latest

from ingest.archive import is_archive, load_archive
from streams.metrics import (
    AS_OF,
    DELTA,
    EVENTS,
    FLAGS,
    JUMP_Z,
    LAST_FLAG,
    LAST_FLAG_AS_OF,
    OBSERVED,
    OBSERVED_GAP,
    OBSERVED_SE,
    OBSERVED_STATIONS,
    RATE,
    REGION_INFO,
    TURNOUT,
    Family,
)
from turnout_watch.core.dayfile import DayFile, load_day
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.normalize import region_names
from turnout_watch.services.detect import DetectResult, detect_day

#: Seconds between written samples: what a scrape interval would have produced (well under the
#: 5-minute lookback, coarse enough that a 16-hour day of 21 regions stays a few MB).
DEFAULT_STEP = 60.0
#: How long the last figure of the day stays visible after the last release.
DEFAULT_TAIL = 3600.0


class BackfillError(TurnoutWatchError):
    """promtool missing or refusing the generated OpenMetrics."""


@dataclass(frozen=True)
class BackfillResult:
    election: str
    openmetrics: Path
    series: int
    samples: int
    start: datetime
    end: datetime
    promtool_output: str


class _Day:
    """The day's finished families, as a registry hands them to client_python's OpenMetrics writer."""

    def __init__(self, families: list[Metric]) -> None:
        self.families = families

    def collect(self) -> list[Metric]:
        return self.families


def _ticks(start: float, end: float, step: float, changes: Iterable[float]) -> list[float]:
    """Sample times: every `step` from `start` to `end`, plus each change's own time (so a query at a
    release's `as_of` returns that release's figure exactly)."""
    n = int((end - start) // step)
    return sorted({start + i * step for i in range(n + 1)} | {t for t in changes if start <= t <= end})


def _step_series(changes: Sequence[tuple[float, float]], ticks: Sequence[float]) -> Iterator[tuple[float, float]]:
    """(time, value) at each tick from the first change on, holding the latest value (a gauge)."""
    times = [t for t, _ in changes]
    for tick in ticks:
        i = bisect_right(times, tick)
        if i:
            yield tick, changes[i - 1][1]


def day_families(
    result: DetectResult, names: dict[str, str], *, step: float = DEFAULT_STEP, tail: float = DEFAULT_TAIL
) -> list[Metric]:
    """The day's metric families, the live worker's (streams/metrics.py), each sample with its time.

    Families come out grouped and each series' samples in time order, as promtool needs them.
    """
    if not result.updates:
        raise BackfillError("the day has no usable release: nothing to backfill")
    if step <= 0:
        raise BackfillError(f"step must be positive, not {step}")
    start = min(u.as_of_seconds for u in result.updates)
    end = max(u.as_of_seconds for u in result.updates) + tail

    # Per gauge family and series (its label values): the (time, value) changes, in time order.
    gauges: dict[Family, dict[tuple[str, ...], list[tuple[float, float]]]] = {}

    def change(family: Family, t: float, value: float, *labels: str) -> None:
        gauges.setdefault(family, {}).setdefault(labels, []).append((t, value))

    for u in sorted(result.updates, key=lambda u: u.as_of_seconds):
        t, where = u.as_of_seconds, (u.election, u.region_code)
        change(TURNOUT, t, u.value, *where)
        change(AS_OF, t, u.as_of_seconds, *where)
        if u.delta == u.delta:  # delta and rate only once the region had a previous figure
            change(DELTA, t, u.delta, *where)
            change(RATE, t, u.rate, *where)
        if u.jump_z == u.jump_z:
            change(JUMP_Z, t, u.jump_z, *where)
    for e in sorted(result.estimates, key=lambda e: datetime.fromisoformat(e.as_of).timestamp()):
        t, where = datetime.fromisoformat(e.as_of).timestamp(), (e.election, e.region_code)
        change(OBSERVED, t, e.estimate, *where)
        change(OBSERVED_SE, t, e.se, *where)
        change(OBSERVED_STATIONS, t, float(e.stations), *where)
        change(OBSERVED_GAP, t, e.gap, *where)
    # Live, "last flag" is the time the worker raised it; a backfill has only the flag's own hour.
    for flag in sorted(result.flags, key=lambda f: datetime.fromisoformat(f.as_of).timestamp()):
        t = datetime.fromisoformat(flag.as_of).timestamp()
        which = (flag.election, flag.region_code, flag.detector, flag.severity)
        change(LAST_FLAG, t, t, *which)
        change(LAST_FLAG_AS_OF, t, t, *which)

    out: list[Metric] = []
    for family, series in gauges.items():
        gauge = family.gauge()
        for labels, changes in sorted(series.items()):
            for t, value in _step_series(changes, _ticks(changes[0][0], end, step, (t for t, _ in changes))):
                gauge.add_metric(labels, value, timestamp=t)
        out.append(gauge)

    day_ticks = _ticks(start, end, step, [])
    info = REGION_INFO.gauge()
    for code in sorted({u.region_code for u in result.updates}):
        for t in day_ticks:
            info.add_metric((code, names.get(code, code)), 1.0, timestamp=t)
    out.append(info)

    # Flags per election, detector and severity, and events: how many there were by each tick. The flags'
    # count is a gauge (the worker counts distinct flags it holds), events a counter from 0.
    flag_times: dict[tuple[str, ...], list[float]] = {}
    for flag in result.flags:
        when = datetime.fromisoformat(flag.as_of).timestamp()
        flag_times.setdefault((flag.election, flag.detector, flag.severity), []).append(when)
    release_times = sorted({u.as_of_seconds for u in result.updates})
    flag_counts = FLAGS.gauge()
    for labels, times in sorted(flag_times.items()):
        times.sort()
        for t in _ticks(start, end, step, times):
            flag_counts.add_metric(labels, float(bisect_right(times, t)), timestamp=t)
    events = EVENTS.counter()
    for t in _ticks(start, end, step, release_times):
        events.add_metric(("releases",), float(bisect_right(release_times, t)), timestamp=t)
    out += [flag_counts, events]
    return out


def openmetrics_text(families: list[Metric]) -> str:
    """OpenMetrics text of timestamped families, by client_python's writer (ends with `# EOF`)."""
    text: bytes = generate_latest(_Day(families))  # type: ignore[no-untyped-call]  # the writer is unannotated
    return text.decode("utf-8")


def backfill_day(
    day: DayFile | Path | str,
    out_dir: Path,
    *,
    history_dir: Path | None = None,
    step: float = DEFAULT_STEP,
    tail: float = DEFAULT_TAIL,
    promtool: str | None = None,
    keep_openmetrics: Path | None = None,
) -> BackfillResult:
    """Write the day's metrics as OpenMetrics and import them into the TSDB directory `out_dir`."""
    if not isinstance(day, DayFile):
        day = load_archive(day) if is_archive(day) else load_day(day)
    tool = shutil.which(promtool or "promtool")
    if not tool:
        raise BackfillError(
            f"promtool not found ({promtool or 'not on PATH'}): install Prometheus' tools "
            "(Debian: apt-get install prometheus)"
        )
    result = detect_day(day, history_dir=history_dir)
    families = day_families(result, region_names(), step=step, tail=tail)
    samples = [(s.name, tuple(sorted(s.labels.items()))) for family in families for s in family.samples]
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tw-backfill-") as tmp:
        path = keep_openmetrics or Path(tmp) / f"{day.election.election}.om.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(openmetrics_text(families), encoding="utf-8")
        run = subprocess.run(
            [tool, "tsdb", "create-blocks-from", "openmetrics", str(path), str(out_dir)],
            capture_output=True,
            text=True,
            check=False,
        )
        if run.returncode != 0:
            raise BackfillError(
                f"promtool refused the OpenMetrics of {day.election.election} (exit {run.returncode}): "
                f"{(run.stderr or run.stdout).strip()[-2000:]}"
            )
    times = [u.as_of_seconds for u in result.updates]
    tz = day.election.tz
    return BackfillResult(
        election=day.election.election,
        openmetrics=path,
        series=len(set(samples)),
        samples=len(samples),
        start=datetime.fromtimestamp(min(times), tz),
        end=datetime.fromtimestamp(max(times) + tail, tz),
        promtool_output=(run.stdout + run.stderr).strip(),
    )
