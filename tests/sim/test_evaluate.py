"""The synthetic-day generator and the evaluation: deterministic, labelled, and able to fail."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from detectors.curves import PastDay
from detectors.history import past_day
from tests.support.paths import DAY_2022, DAY_2023, ROOT
from turnout_watch.core.dayfile import load_day, write_day
from turnout_watch.core.gazetteer import NATIONAL
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.sim.evaluate import CATCHES, _caught, baseline_alerts, evaluate, suite_alerts
from turnout_watch.sim.synth import (
    HOURS,
    KINDS,
    LOCAL_GRID,
    OBSERVER_KINDS,
    _on_clock,
    era,
    labels,
    make_day,
    write_days,
)


def test_days_are_deterministic_in_their_seed() -> None:
    assert make_day(42, "surge") == make_day(42, "surge")
    assert make_day(42, "surge") != make_day(43, "surge")


def test_clean_day_looks_like_an_election_day(tmp_path: Path) -> None:
    path = next(write_days(tmp_path, 0, 1, seed=7))
    day = load_day(path)
    assert labels(day) == []
    releases = day.releases()
    assert [r.as_of.hour for r in releases] == list(HOURS)
    values = np.array([[r.turnout_pct[c] for c in releases[0].turnout_pct] for r in releases])
    assert (np.diff(values, axis=0) >= 0).all()  # a clean day never falls
    assert ((values > 0) & (values < 100)).all()
    late = values[-1] - values[-2]
    assert late.max() < 0.5  # after 20:00 only late reports
    registered = np.array([day.election.registered()[c] for c in list(releases[0].turnout_pct)[:-1]])
    national = registered @ values[:, :-1].T / registered.sum()
    assert np.abs(national - values[:, -1]).max() <= 0.006  # rounding only


def large(anomaly: dict) -> bool:
    """Clearly above the natural spread: the sizes the suite promises to catch."""
    if anomaly["kind"] == "surge":
        return anomaly["magnitude"] >= 8 * anomaly["spread"]
    if anomaly["kind"] == "official_above":  # and in a region with enough observed stations
        return anomaly["magnitude"] >= 8 and anomaly["region"] in ("KZ-19", "KZ-61", "KZ-75", "KZ-71", "KZ-31")
    if anomaly["kind"] == "protocol":
        return anomaly["magnitude"] >= 5
    return anomaly["kind"] not in ("after_close", "national") or anomaly["magnitude"] >= 1.0


@pytest.mark.parametrize("kind", KINDS)
def test_every_kind_is_labelled_and_a_large_one_caught_at_once(kind: str, tmp_path: Path) -> None:
    header, events = next(
        (h, e)
        for h, e in (make_day(seed, kind, observers=400 if kind in OBSERVER_KINDS else 0) for seed in range(500))
        if large(h["synthetic"]["anomalies"][0])
    )
    path = tmp_path / "day.jsonl"
    write_day(path, header, events)
    day = load_day(path)
    [anomaly] = labels(day)
    assert anomaly.kind == kind
    delay = _caught(anomaly, suite_alerts(day, SHIPPED_ELECTIONS), CATCHES[kind])
    assert delay == 0, anomaly


def test_baseline_flags_what_it_says(tmp_path: Path) -> None:
    path = next(write_days(tmp_path, 0, 1, seed=3))
    day = load_day(path)
    alerts = baseline_alerts(day, rise_points=1000.0)
    assert alerts == []  # a clean day has no fall and nothing over 100
    assert len(baseline_alerts(day, rise_points=0.0)) > 50  # every rise


def test_two_zone_days_put_the_west_an_hour_behind(tmp_path: Path) -> None:
    from turnout_watch.sim.synth import era

    day = load_day(next(write_days(tmp_path, 0, 1, seed=8)))
    assert era(day.election) == "2 zones" and day.election.date.year in (2022, 2023, 2024)
    last = {r.as_of.hour: r.turnout_pct for r in day.releases()}
    # 22:00 holds the west's last hour of voting: more than late reports; the rest only report late
    assert last[22]["KZ-15"] - last[20]["KZ-15"] > last[22]["KZ-61"] - last[20]["KZ-61"]
    assert (
        max(
            last[22][c] - last[20][c]
            for c in last[22]
            if c not in ("KZ-15", "KZ-23", "KZ-27", "KZ-43", "KZ-47", "Kazakhstan")
        )
        < 0.5
    )


def clock_gaps(day: PastDay) -> tuple[float, float]:
    """Root-mean-square gap between the share of its final each region behind the commission's clock
    had at the releases of voting hours and the other regions' median share at the same moment, then
    at the same local hour (an hour earlier for the west until 2024)."""
    codes = [c for c in day.turnout if c != NATIONAL]
    behind = [c for c in codes if day.hours_of(c) != day.hours]
    hours = np.array(day.hours)
    voting = hours <= 20

    def share(code: str) -> np.ndarray:
        values, local = np.array(day.turnout[code]), np.array(day.hours_of(code))
        return np.asarray(values[voting] / values[np.searchsorted(local, 20.0)], dtype=np.float64)

    grid = np.concatenate([[7.0], hours[voting]])
    others = np.median([np.concatenate([[0.0], share(c)]) for c in codes if c not in behind], axis=0)
    gaps = [[np.mean((share(c) - np.interp(hours[voting] - lag, grid, others)) ** 2) for c in behind] for lag in (0, 1)]
    return float(np.sqrt(np.mean(gaps[0]))), float(np.sqrt(np.mean(gaps[1])))


def test_the_west_votes_on_the_commissions_clock_on_real_days_and_synthetic_ones(tmp_path: Path) -> None:
    # 2022: 0.054 at the same moment, 0.103 at the same local hour; 2023: 0.050 and 0.087
    for path in (DAY_2022, DAY_2023):
        same_moment, same_local_hour = clock_gaps(past_day(load_day(path)))
        assert same_moment < 0.06 and same_local_hour > 1.5 * same_moment, path.name
    # the synthetic west (an eastern shape runs an hour ahead on its clock) does the same
    days = [load_day(p) for p in write_days(tmp_path, 0, 40, seed=100)]
    two_zone = np.array([clock_gaps(past_day(day)) for day in days if era(day.election) == "2 zones"])
    assert len(two_zone) == 20  # even seeds
    same_moment, same_local_hour = np.sqrt(np.mean(two_zone**2, axis=0))
    assert same_moment < 0.07 and same_local_hour > 1.5 * same_moment


def test_a_shape_moved_onto_another_clock_keeps_its_opening_and_close() -> None:
    shape = np.clip((LOCAL_GRID - 7.0) / 10.0, 0.0, 1.0)[None, :]  # 10 % of the final an hour, done by 17:00
    assert np.array_equal(_on_clock(shape, np.array([0.0])), shape)
    ahead, behind = _on_clock(shape, np.array([1.0]))[0], _on_clock(shape, np.array([-1.0]))[0]
    hour = {h: i for i, h in enumerate(LOCAL_GRID.tolist())}
    for moved in (ahead, behind):
        assert moved[hour[7.0]] == 0.0 and moved[hour[20.0]] == 1.0 and (np.diff(moved) >= 0).all()
    for h in (9.0, 12.0, 15.0):  # through the day: the share the shape had an hour later / earlier
        assert ahead[hour[h]] == pytest.approx(shape[0, hour[h + 1]])
        assert behind[hour[h + 1]] == pytest.approx(shape[0, hour[h]])


def test_small_evaluation_meets_the_targets(tmp_path: Path) -> None:
    report = evaluate(tmp_path, days=70, clean=30, seed=11, history_dir=SHIPPED_ELECTIONS).to_dict()
    assert report["clean_days"] == 30
    assert set(report["eras"]) == {"1 zone", "2 zones"}  # even seeds before March 2024, odd seeds after
    # The cross-sectional jump holds each region to its own pace too (a late-voting region beside early
    # ones keeps rising, which is its pace, not news): 0.23 a day here (0.13 and 0.33 by era). The
    # target is 0.5 on the full run (docs/evaluation.md); 30 clean days allow some slack.
    assert report["false_alerts_per_clean_day"] <= 0.6
    certain = {"fall", "over_100", "revision", "time_reversal"}
    assert certain <= {row["kind"] for row in report["suite"]}
    for row in report["suite"]:
        if row["kind"] in certain:
            assert row["recall"] == 1.0 and row["mean_delay"] == 0.0, row
    assert report["baseline_false_alerts_per_clean_day"] > report["false_alerts_per_clean_day"]


def test_evaluate_command_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "report.json"
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("turnout-watch")),
            "evaluate",
            "--days",
            "14",
            "--clean",
            "4",
            "--json",
            str(out),
        ],
        capture_output=True,
        text=True,
        cwd=ROOT,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "| surge |" in result.stdout and "false alerts (warning+) per clean day" in result.stdout
    assert json.loads(out.read_text())["clean_days"] == 4
