"""The observer simulator: realistic stations and counts, and posting them through the real API."""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from pathlib import Path

import numpy as np
import pytest

from ingest.observers import store
from ingest.observers.registry import save_stations
from ingest.observers.tokens import new_tokens_bulk, save_tokens
from tests.support.intake import make_settings, read_topic, running_intake
from tests.support.paths import DAY_2022
from turnout_watch.core.dayfile import load_day, parse_event
from turnout_watch.services.broker import EmbeddedBroker
from turnout_watch.sim.observers import make_stations, official_curves, post_counts, simulate_counts

DAY = load_day(DAY_2022)


def ratio_by_region(events: list[dict], at: str, source: str = "tally") -> dict[str, float]:
    voted: dict[str, float] = defaultdict(float)
    registered: dict[str, float] = defaultdict(float)
    for e in events:
        if e["observed_at"].startswith(at) and e["source"] == source:
            voted[e["code"]] += e["voted"]
            registered[e["code"]] += e["registered"]
    return {code: 100 * voted[code] / registered[code] for code in voted}


def test_stations_are_deterministic_sized_and_spread_by_voters() -> None:
    stations = make_stations(DAY.election, 1000, seed=3)
    assert stations == make_stations(DAY.election, 1000, seed=3)
    assert len(stations) == 1000 and len({s.station for s in stations}) == 1000
    sizes = np.array([s.registered for s in stations])
    assert sizes.min() >= 60 and sizes.max() <= 3000 and 1000 < np.median(sizes) < 1400
    per_region = defaultdict(int)
    for s in stations:
        per_region[s.region_code] += 1
    assert len(per_region) == 20
    assert per_region["KZ-61"] > 2 * per_region["KZ-62"]  # Turkistan has far more voters than Ulytau


def test_counts_follow_each_regions_official_curve_with_spread() -> None:
    stations = make_stations(DAY.election, 2000, seed=1)
    events = simulate_counts(DAY, stations, seed=1)
    codes = {s.station: s.region_code for s in stations}
    for e in events:
        parse_event(e)  # the spec's observer_count
        e["code"] = codes[e["station"]]
    assert events == sorted(events, key=lambda e: e["received_at"])
    series: dict[tuple[str, str], list[tuple[str, int]]] = defaultdict(list)
    for e in events:
        assert 0 <= e["voted"] <= e["registered"]
        assert "07:00" < e["observed_at"][11:16] <= "20:00"
        assert e["received_at"] > e["observed_at"]
        series[(e["station"], e["source"])].append((e["observed_at"], e["voted"]))
    for points in series.values():
        voted = [v for _, v in sorted(points)]
        assert voted == sorted(voted)  # counts never fall
    curves = official_curves(DAY)
    noon = datetime.fromisoformat("2022-11-20T14:00:00+06:00").timestamp()
    estimate = ratio_by_region(events, "2022-11-20T14:00")
    for code, pct in estimate.items():
        xs, ys = curves[code]
        assert abs(pct - np.interp(noon, xs, ys)) < 3.0, code
    late = [
        e
        for e in events
        if (datetime.fromisoformat(e["received_at"]) - datetime.fromisoformat(e["observed_at"])).total_seconds() > 1800
    ]
    assert 0.02 < len(late) / len(events) < 0.10
    spread = [
        100 * e["voted"] / e["registered"]
        for e in events
        if e["code"] == "KZ-75" and e["observed_at"][11:16] == "14:00"
    ]
    assert np.std(spread) > 2.0  # stations differ, as real ones do


def test_inflated_commission_figures_and_official_excess_are_the_known_answer() -> None:
    stations = make_stations(DAY.election, 1500, seed=2)
    events = simulate_counts(DAY, stations, seed=2, inflate_commission={"KZ-75": 8.0}, official_excess={"KZ-71": 6.0})
    codes = {s.station: s.region_code for s in stations}
    for e in events:
        e["code"] = codes[e["station"]]
    tally = ratio_by_region(events, "2022-11-20T20:00", "tally")
    commission = ratio_by_region(events, "2022-11-20T20:00", "commission")
    assert commission["KZ-75"] - tally["KZ-75"] == pytest.approx(8.0, abs=1.0)
    assert abs(commission["KZ-19"] - tally["KZ-19"]) < 0.5
    official_astana = float(official_curves(DAY)["KZ-71"][1][-1])
    assert official_astana - tally["KZ-71"] == pytest.approx(6.0, abs=2.5)


@pytest.mark.integration
async def test_simulated_day_posted_through_the_api_arrives_exactly_once(
    broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = make_settings(broker.bootstrap, tmp_path, observers_rate=1000.0)
    stations = make_stations(DAY.election, 40, seed=5)
    events = simulate_counts(DAY, stations, seed=5, inflate_commission=3.0)
    conn = store.connect(store.db_path(settings))
    save_stations(conn, stations)
    issued = new_tokens_bulk("observer", {s.station: [s.station] for s in stations})
    save_tokens(conn, [record for _, record in issued])
    conn.close()
    tokens = {name: token for (token, record), name in zip(issued, [s.station for s in stations], strict=True)}
    async with running_intake(settings, tokens={}) as env:
        stats = await post_counts(env.url, events, tokens, concurrency=8)
        assert (stats.accepted, stats.rejected, stats.duplicates) == (len(events), 0, 0), stats.errors[:3]
        again = await post_counts(env.url, events[:50], tokens, concurrency=8)  # a phone resending
        assert (again.accepted, again.duplicates) == (0, 50)
        records = await read_topic(broker.bootstrap, env.topic, len(events))
    assert len(records) == len(events)
    # each id is scoped to the token that sent it (`<token_id>:<the phone's id>`), so no one can pre-claim another's
    assert all(r["report_id"] == f"{r['token_id']}:{r['report_id'].split(':', 1)[1]}" for r in records)
    assert sorted(r["report_id"].split(":", 1)[1] for r in records) == sorted(e["report_id"] for e in events)
