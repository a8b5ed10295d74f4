"""Backfill a past election day into a Prometheus TSDB, on its real dates.

`turnout-watch replay DAY --backfill DIR` runs the day through the offline detectors (`detect_day`:
the same tracker the agents run, so the same values and flags as a live replay), writes the metrics a
worker would have exported, under the same names and labels as `streams/metrics.py`, stamped with
the releases' own `as_of` times, as OpenMetrics text, and turns that into TSDB blocks with
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

import math
import shutil
import subprocess
import tempfile
from bisect import bisect_right
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from ingest.archive import is_archive, load_archive
from streams.metrics import PipelineMetrics
from turnout_watch.core.dayfile import DayFile, load_day
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.normalize import region_names
from turnout_watch.core.records import DETECTORS, SEVERITIES
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


def _metric_help() -> dict[str, tuple[str, str]]:
    """(type, help) of each family we write, taken from the live metrics so the two never drift."""
    from prometheus_client import CollectorRegistry

    live = PipelineMetrics(CollectorRegistry())
    out: dict[str, tuple[str, str]] = {}
    for metric in live.registry.collect():
        out[metric.name] = (metric.type, metric.documentation)
    return out


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{k}="{escape(v)}"' for k, v in labels.items()) + "}"


def _num(x: float) -> str:
    return repr(float(x)) if math.isfinite(x) else ("NaN" if x != x else ("+Inf" if x > 0 else "-Inf"))


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


def openmetrics_lines(
    result: DetectResult, names: dict[str, str], *, step: float = DEFAULT_STEP, tail: float = DEFAULT_TAIL
) -> Iterator[str]:
    """The day's metrics as OpenMetrics text: families grouped, each series' samples in time order."""
    if not result.updates:
        raise BackfillError("the day has no usable release: nothing to backfill")
    if step <= 0:
        raise BackfillError(f"step must be positive, not {step}")
    start = min(u.as_of_seconds for u in result.updates)
    end = max(u.as_of_seconds for u in result.updates) + tail
    families = _metric_help()

    def header(family: str) -> Iterator[str]:
        kind, help_text = families[family]
        yield f"# TYPE {family} {kind}"
        yield f"# HELP {family} {help_text}"

    # Per series (its labels): the (time, value) changes of each gauge, in time order.
    gauges: dict[str, dict[tuple[tuple[str, str], ...], list[tuple[float, float]]]] = {}

    def change(family: str, t: float, value: float, **labels: str) -> None:
        gauges.setdefault(family, {}).setdefault(tuple(labels.items()), []).append((t, value))

    for u in sorted(result.updates, key=lambda u: u.as_of_seconds):
        t, where = u.as_of_seconds, {"election": u.election, "region": u.region_code}
        change("turnout_watch_region_turnout_percent", t, u.value, **where)
        change("turnout_watch_region_as_of_timestamp_seconds", t, u.as_of_seconds, **where)
        if u.delta == u.delta:  # as live: delta and rate only once the region had a previous figure
            change("turnout_watch_region_delta_points", t, u.delta, **where)
            change("turnout_watch_region_rate_points_per_hour", t, u.rate, **where)
        if u.jump_z == u.jump_z:
            change("turnout_watch_region_jump_z", t, u.jump_z, **where)
    for e in sorted(result.estimates, key=lambda e: datetime.fromisoformat(e.as_of).timestamp()):
        t, where = datetime.fromisoformat(e.as_of).timestamp(), {"election": e.election, "region": e.region_code}
        change("turnout_watch_region_observed_turnout_percent", t, e.estimate, **where)
        change("turnout_watch_region_observed_se_points", t, e.se, **where)
        change("turnout_watch_region_observed_stations", t, float(e.stations), **where)
        change("turnout_watch_region_official_minus_observed_points", t, e.gap, **where)
    # Live, "last flag" is the time the worker raised it; a backfill has only the flag's own hour.
    for flag in sorted(result.flags, key=lambda f: datetime.fromisoformat(f.as_of).timestamp()):
        t = datetime.fromisoformat(flag.as_of).timestamp()
        where = {"election": flag.election, "region": flag.region_code}
        kind = {"detector": flag.detector, "severity": flag.severity}
        change("turnout_watch_region_last_flag_timestamp_seconds", t, t, **where, **kind)
        change("turnout_watch_region_last_flag_as_of_timestamp_seconds", t, t, **where, **kind)

    for family, series in gauges.items():
        yield from header(family)
        for labelled, changes in sorted(series.items()):
            ticks = _ticks(changes[0][0], end, step, (t for t, _ in changes))
            labels = _labels(**dict(labelled))
            for t, value in _step_series(changes, ticks):
                yield f"{family}{labels} {_num(value)} {t:.3f}"

    day_ticks = _ticks(start, end, step, [])
    regions = sorted({u.region_code for u in result.updates})
    yield from header("turnout_watch_region_info")
    for code in regions:
        labels = _labels(region=code, name=names.get(code, code))
        for t in day_ticks:
            yield f"turnout_watch_region_info{labels} 1.0 {t:.3f}"

    flag_times: dict[tuple[str, str], list[float]] = {(d, s): [] for d in DETECTORS for s in SEVERITIES}
    for flag in result.flags:
        flag_times.setdefault((flag.detector, flag.severity), []).append(datetime.fromisoformat(flag.as_of).timestamp())
    release_times = sorted({u.as_of_seconds for u in result.updates})
    counters = {
        "turnout_watch_flags": {
            _labels(detector=d, severity=s): sorted(times) for (d, s), times in sorted(flag_times.items())
        },
        "turnout_watch_events_processed": {_labels(stream="releases"): release_times},
    }
    for family, series in counters.items():
        yield from header(family)
        for labels, times in series.items():
            for t in _ticks(start, end, step, times):
                yield f"{family}_total{labels} {float(bisect_right(times, t))} {t:.3f}"
    yield "# EOF"


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
    lines = list(openmetrics_lines(result, region_names(), step=step, tail=tail))
    series = {line.rsplit(" ", 2)[0] for line in lines if not line.startswith("#")}
    out_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="tw-backfill-") as tmp:
        path = keep_openmetrics or Path(tmp) / f"{day.election.election}.om.txt"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(lines) + "\n", encoding="utf-8")
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
        series=len(series),
        samples=sum(1 for line in lines if not line.startswith("#")),
        start=datetime.fromtimestamp(min(times), tz),
        end=datetime.fromtimestamp(max(times) + tail, tz),
        promtool_output=(run.stdout + run.stderr).strip(),
    )
