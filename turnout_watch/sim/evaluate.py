"""`turnout-watch evaluate`: recall, delay and false alerts of the detectors on synthetic days.

Each day is written as a day file and read back by the same `detect_day` that `turnout-watch detect`
runs, so the evaluation measures exactly what the watch room would see. Beside it runs a naive
baseline (a rise over N points between releases, any fall, any value over 100), the rule a watch
room would write by hand.
"""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from detectors.config import DetectorConfig
from turnout_watch.core.dayfile import DayFile, load_day
from turnout_watch.core.normalize import normalize_release
from turnout_watch.core.records import Flag
from turnout_watch.services.detect import detect_day
from turnout_watch.sim.synth import HOURS, KINDS, Anomaly, era, labels, write_days

ALERT = ("warning", "critical")
#: Which detectors count as catching each anomaly kind.
CATCHES: dict[str, tuple[str, ...]] = {
    "surge": ("cross_sectional_jump", "expected_curve_jump"),
    "fall": ("falling_turnout",),
    "over_100": ("out_of_range",),
    "after_close": ("growth_after_close",),
    "national": ("national_inconsistency",),
    "revision": ("release_revised",),
    "time_reversal": ("time_reversal",),
    "official_above": ("official_above_observed",),
    "protocol": ("protocol_above_tally",),
}


@dataclass(frozen=True)
class Alert:
    region: str
    hour: int  # local hour of the release the flag is about
    detector: str


def suite_alerts(day: DayFile, history_dir: Path | None, config: DetectorConfig | None = None) -> list[Alert]:
    result = detect_day(day, config, history_dir=history_dir)
    tz = day.election.tz
    return [_alert(f, tz) for f in result.flags if f.severity in ALERT]


def _alert(flag: Flag, tz: Any) -> Alert:
    return Alert(flag.region_code, datetime.fromisoformat(flag.as_of).astimezone(tz).hour, flag.detector)


def baseline_alerts(day: DayFile, rise_points: float) -> list[Alert]:
    """The hand-written rule: a rise over `rise_points` between releases, any fall, any value over 100."""
    last: dict[str, float] = {}
    alerts = []
    for event in day.releases():
        release = normalize_release(event, day.election.date).release
        if release is None:
            continue
        hour = release.as_of.astimezone(day.election.tz).hour
        for code, value in release.turnout.items():
            before = last.get(code)
            if value > 100 or (before is not None and (value - before > rise_points or value < before)):
                alerts.append(Alert(code, hour, "baseline"))
            last[code] = value
    return alerts


def _caught(anomaly: Anomaly, alerts: Iterable[Alert], detectors: tuple[str, ...] | None) -> int | None:
    """Releases between the anomaly and its first matching alert (None: missed)."""
    hours = [
        a.hour
        for a in alerts
        if a.region == anomaly.region
        and a.hour >= anomaly.as_of_hour
        and (detectors is None or a.detector in detectors)
    ]
    return (min(hours) - anomaly.as_of_hour) // 2 if hours else None


SIGMA_BANDS = ((0.0, 2.0), (2.0, 4.0), (4.0, 8.0), (8.0, float("inf")))
#: Bands clearly above the natural spread (docs/evaluation.md): the headline recall counts these.
CLEAR: dict[str, tuple[str, ...]] = {
    "surge": ("8-inf sd",),
    "fall": ("0.01-0.1", "0.1-1", "1-5"),
    "over_100": ("0.01-1", "1-10"),
    "after_close": ("0.5-1", "1-3"),
    "national": ("0.5-1", "1-3"),
    "revision": ("0.05-0.5", "0.5-5"),
    "time_reversal": ("0-0",),
    "official_above": ("6-12",),
    "protocol": ("3-15",),
}


def _band(anomaly: Anomaly) -> str:
    """Surges are banded by their size in units of the natural spread of that release's increments."""
    if anomaly.kind != "surge":
        return anomaly.band
    for low, high in SIGMA_BANDS:
        if low <= anomaly.sigmas < high:
            return f"{low:g}-{high:g} sd"
    return "unknown"


@dataclass
class Tally:
    days: int = 0
    caught: int = 0
    delays: list[int] = field(default_factory=list)

    def add(self, delay: int | None) -> None:
        self.days += 1
        if delay is not None:
            self.caught += 1
            self.delays.append(delay)

    @property
    def recall(self) -> float:
        return self.caught / self.days if self.days else float("nan")

    @property
    def mean_delay(self) -> float:
        return sum(self.delays) / len(self.delays) if self.delays else float("nan")


@dataclass
class Report:
    suite: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    baseline: dict[tuple[str, str], Tally] = field(default_factory=lambda: defaultdict(Tally))
    clean_days: int = 0
    suite_false: int = 0
    baseline_false: int = 0
    false_by_detector: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    other_alerts_on_anomalous_days: int = 0
    anomalous_days: int = 0
    seconds: float = 0.0
    eras: dict[str, Report] = field(default_factory=dict)  # the same figures, per era ("1 zone", "2 zones")

    @property
    def clear_recall(self) -> float:
        """Recall over the anomalies clearly above the natural spread (`CLEAR`)."""
        tallies = [t for (kind, band), t in self.suite.items() if band in CLEAR.get(kind, ())]
        days = sum(t.days for t in tallies)
        return sum(t.caught for t in tallies) / days if days else float("nan")

    def add_day(self, suite: list[Alert], base: list[Alert], anomalies: list[Anomaly]) -> None:
        if not anomalies:
            self.clean_days += 1
            self.suite_false += len(suite)
            self.baseline_false += len(base)
            for alert in suite:
                self.false_by_detector[alert.detector] += 1
        for anomaly in anomalies:
            self.anomalous_days += 1
            key = (anomaly.kind, _band(anomaly))
            self.suite[key].add(_caught(anomaly, suite, CATCHES[anomaly.kind]))
            self.baseline[key].add(_caught(anomaly, base, None))
            self.other_alerts_on_anomalous_days += sum(1 for a in suite if a.region != anomaly.region)

    def to_dict(self) -> dict[str, Any]:
        def rows(table: dict[tuple[str, str], Tally]) -> list[dict[str, Any]]:
            return [
                {
                    "kind": k,
                    "band": b,
                    "days": t.days,
                    "recall": round(t.recall, 3),
                    "mean_delay": round(t.mean_delay, 2),
                }
                for (k, b), t in sorted(table.items())
            ]

        return {
            "suite": rows(self.suite),
            "baseline": rows(self.baseline),
            "clean_days": self.clean_days,
            "false_alerts_per_clean_day": round(self.suite_false / max(self.clean_days, 1), 3),
            "baseline_false_alerts_per_clean_day": round(self.baseline_false / max(self.clean_days, 1), 3),
            "false_alerts_by_detector": dict(self.false_by_detector),
            "other_alerts_per_anomalous_day": round(
                self.other_alerts_on_anomalous_days / max(self.anomalous_days, 1), 3
            ),
            "clear_recall": round(self.clear_recall, 3),
            "seconds": round(self.seconds, 2),
        } | ({"eras": {name: era.to_dict() for name, era in sorted(self.eras.items())}} if self.eras else {})


def evaluate(
    folder: Path,
    days: int,
    clean: int,
    seed: int = 0,
    history_dir: Path | None = None,
    baseline_rise: float = 20.0,
    progress: Callable[[int, int], None] | None = None,
    config: DetectorConfig | None = None,
    observers: int = 0,
) -> Report:
    started = time.perf_counter()
    report = Report()
    paths = list(write_days(folder, days, clean, seed, observers))
    for n, path in enumerate(paths, start=1):
        day = load_day(path)
        suite = suite_alerts(day, history_dir, config)
        base = baseline_alerts(day, baseline_rise)
        anomalies = labels(day)
        report.add_day(suite, base, anomalies)
        report.eras.setdefault(era(day.election), Report()).add_day(suite, base, anomalies)
        if progress:
            progress(n, len(paths))
    report.seconds = time.perf_counter() - started
    return report


def format_report(report: Report) -> str:
    """The tables per era (when the days span more than one), then the whole."""
    parts = []
    for name, part in sorted(report.eras.items()):
        parts.append(f"## {name} ({part.clean_days + part.anomalous_days} days)\n\n" + _format(part))
    summary = [
        f"- {name}: false alerts (warning+) per clean day {part.suite_false / max(part.clean_days, 1):.2f}; "
        f"recall on clear anomalies {part.clear_recall:.3f}"
        for name, part in sorted(report.eras.items())
    ]
    whole = _format(report, seconds=True)
    if len(report.eras) > 1:
        return "\n\n".join([*parts, "## all days\n\n" + whole, "by era:\n" + "\n".join(summary)])
    return whole


def _format(report: Report, seconds: bool = False) -> str:
    data = report.to_dict()
    lines = [
        "| kind | band (points; surges: natural SDs) | days | suite recall | suite delay (releases) "
        "| baseline recall |",
        "|---|---|---|---|---|---|",
    ]
    base = {(r["kind"], r["band"]): r for r in data["baseline"]}
    order = {kind: i for i, kind in enumerate(KINDS)}
    for row in sorted(data["suite"], key=lambda r: (order[r["kind"]], float(r["band"].split("-")[0]))):
        b = base[(row["kind"], row["band"])]
        lines.append(
            f"| {row['kind']} | {row['band']} | {row['days']} | {row['recall']:.2f} | {row['mean_delay']:.2f} | "
            f"{b['recall']:.2f} |"
        )
    lines.append("")
    lines.append(
        f"clean days: {data['clean_days']}; false alerts (warning+) per clean day: suite "
        f"{data['false_alerts_per_clean_day']}, baseline {data['baseline_false_alerts_per_clean_day']}; "
        f"suite false alerts by detector: {data['false_alerts_by_detector'] or 'none'}"
    )
    lines.append(
        f"alerts on other regions per anomalous day: {data['other_alerts_per_anomalous_day']}; recall on clear "
        f"anomalies (docs/evaluation.md): {data['clear_recall']}"
        + (f"; {data['seconds']} s for {data['clean_days'] + report.anomalous_days} days" if seconds else "")
    )
    return "\n".join(lines)


__all__ = ["HOURS", "Report", "evaluate", "format_report"]
