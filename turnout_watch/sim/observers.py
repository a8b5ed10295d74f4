"""Observer simulator: realistic stations and counts for a recorded day, posted through the real API.

The pure part (`make_stations`, `simulate_counts`) is reusable without a server: the detector
evaluation feeds its events straight into the pipeline. The model:

- station sizes: lognormal around 1,200 voters on the list (Kazakhstan has about 10,000 stations for
  12 million voters), clipped to 60..3,000; stations are spread over regions by registered voters;
- each region's official cumulative curve, interpolated linearly between the day's releases from 0 %
  at polls_open (and made non-decreasing: counts cannot fall even where the CEC's figures did);
- station-to-station spread: each station's turnout is the region's curve times a lognormal factor
  (mean 1, sd `spread`), so the ratio estimator over stations is unbiased for the region's curve;
- the truth the observers see can sit below the official curve (`official_excess`, points at close,
  scaled along the day), and the commission's figure can sit above the observers' own tally
  (`inflate_commission`, points at close, at a share `inflate_share` of stations);
- reports at each release's "as of" time: a tally, and (80 %) the commission's figure; delays
  lognormal around 4 min, some late by 30-150 min, some missing, a few stations silent all day.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import aiohttp
import numpy as np

from ingest.observers import store
from ingest.observers.registry import Station, save_stations
from ingest.observers.tokens import new_tokens_bulk, save_tokens
from turnout_watch.core.dayfile import DayFile, Election
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.settings import Settings

MEDIAN_STATION = 1200
STATION_SIZE_SIGMA = 0.55


def _region_weights(election: Election) -> list[tuple[str, str, float]]:
    """(spelling, code, weight) of each sub-national region the election lists (weight: registered voters)."""
    gazetteer = default_gazetteer()
    out = []
    for entry in election.regions:
        region = gazetteer.try_resolve(entry["region"], election.date)
        if region is None or region.is_national:
            continue
        out.append((entry["region"], region.code, float(entry.get("registered") or 1.0)))
    if not out:  # no region list: every region in force, equally
        out = [(r.name, r.code, 1.0) for r in gazetteer.regions_on(election.date)]
    return out


def make_stations(election: Election, n_stations: int, seed: int) -> list[Station]:
    """`n_stations` stations spread over the election's regions by registered voters (deterministic)."""
    rng = np.random.default_rng(seed)
    regions = _region_weights(election)
    weights = np.array([w for _, _, w in regions])
    counts = np.floor(weights / weights.sum() * n_stations).astype(int)
    for i in np.argsort(-(weights / weights.sum() * n_stations - counts))[: n_stations - counts.sum()]:
        counts[i] += 1
    stations = []
    for (name, code, _), count in zip(regions, counts, strict=True):
        sizes = np.clip(rng.lognormal(np.log(MEDIAN_STATION), STATION_SIZE_SIGMA, count), 60, 3000).astype(int)
        prefix = code.split("-", 1)[1]
        for i, size in enumerate(sizes, start=1):
            stations.append(Station(f"{prefix}-{i:04d}", name, code, int(size)))
    return stations


def official_curves(day: DayFile) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per region code: (unix times, cumulative turnout %) from polls_open (0 %) through each release."""
    election, gazetteer = day.election, default_gazetteer()
    opens = election.opens.timestamp()
    points: dict[str, dict[float, float]] = {}
    for release in day.releases():
        for name, pct in release.turnout_pct.items():
            region = gazetteer.try_resolve(name, election.date)
            if region is not None and not region.is_national:
                points.setdefault(region.code, {opens: 0.0})[release.as_of.timestamp()] = pct
    curves = {}
    for code, values in points.items():
        times = np.array(sorted(values))
        curves[code] = (times, np.maximum.accumulate(np.array([values[t] for t in times])))
    return curves


def _at_close_scaled(points: float, curve: float, final: float) -> float:
    return points * curve / final if final > 0 else 0.0


def simulate_counts(
    day: DayFile,
    stations: Sequence[Station],
    seed: int,
    *,
    inflate_commission: float | Mapping[str, float] = 0.0,
    inflate_share: float = 1.0,
    official_excess: Mapping[str, float] | None = None,
    spread: float = 0.12,
    missing: float = 0.05,
    late: float = 0.05,
    silent: float = 0.02,
    commission_share: float = 0.8,
) -> list[dict[str, Any]]:
    """Spec `observer_count` events (plus `report_id`) for `stations` over `day`, sorted by received_at.

    `inflate_commission`: points (at close) added to the commission's figure, everywhere or per region
    code; `official_excess`: points (at close) by which the official curve exceeds what observers see.
    """
    rng = random.Random(seed)
    election = day.election
    curves = official_curves(day)
    opens, closes = election.opens, election.closes
    times = sorted({r.as_of for r in day.releases() if opens < r.as_of <= closes})
    excess = official_excess or {}
    events: list[dict[str, Any]] = []
    for station in stations:
        if station.region_code not in curves or rng.random() < silent:
            continue
        xs, ys = curves[station.region_code]
        final = float(ys[-1])
        factor = float(np.exp(rng.gauss(0.0, spread) - spread * spread / 2))
        inflate = (
            inflate_commission.get(station.region_code, 0.0)
            if isinstance(inflate_commission, Mapping)
            else inflate_commission
        )
        inflated = rng.random() < inflate_share
        for at in times:
            official = float(np.interp(at.timestamp(), xs, ys))
            true_pct = max(0.0, official - _at_close_scaled(excess.get(station.region_code, 0.0), official, final))
            voted = min(station.registered, round(station.registered * min(0.995, true_pct / 100 * factor)))
            reports = [("tally", voted)]
            if rng.random() < commission_share:
                extra = _at_close_scaled(inflate, official, final) if inflated else 0.0
                reports.append(("commission", min(station.registered, voted + round(station.registered * extra / 100))))
            for source, figure in reports:
                if rng.random() < missing:
                    continue
                delay = rng.lognormvariate(np.log(4.0), 0.7)
                if rng.random() < late:
                    delay += rng.uniform(30, 150)
                events.append(
                    {
                        "type": "observer_count",
                        "election": election.election,
                        "station": station.station,
                        "region": station.region,
                        "observer": f"obs-{station.station}",
                        "observed_at": at.isoformat(),
                        "received_at": (at + timedelta(minutes=delay)).isoformat(timespec="seconds"),
                        "registered": station.registered,
                        "voted": figure,
                        "source": source,
                        "report_id": f"sim{seed}-{station.station}-{at:%H%M}-{source}",
                    }
                )
    events.sort(key=lambda e: e["received_at"])
    return events


@dataclass
class PostStats:
    """What posting through the API gave: outcomes and each request's latency (POST to answer)."""

    sent: int = 0
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0
    spooled: int = 0
    retries: int = 0
    latencies: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> str:
        lat = np.array(self.latencies) * 1000 if self.latencies else np.array([0.0])
        rate = self.accepted / self.seconds if self.seconds else 0.0
        return (
            f"{self.sent} sent: {self.accepted} accepted ({self.spooled} spooled), {self.duplicates} duplicates, "
            f"{self.rejected} rejected, {self.retries} retries in {self.seconds:.1f} s ({rate:.0f} accepted/s); "
            f"latency p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms"
        )


def register_observers(settings: Settings, stations: list[Station], name: str = "obs") -> dict[str, str]:
    """Save the stations and one observer token each in the intake's database; station -> token."""
    conn = store.connect(store.db_path(settings))
    try:
        save_stations(conn, stations)
        issued = new_tokens_bulk("observer", {f"{name}-{s.station}": [s.station] for s in stations})
        save_tokens(conn, [record for _, record in issued])
    finally:
        conn.close()
    return {next(iter(record.scope)): token for token, record in issued}


async def post_counts(
    base_url: str,
    events: Sequence[Mapping[str, Any]],
    tokens: Mapping[str, str],
    *,
    speed: float | None = None,
    concurrency: int = 32,
    attempts: int = 5,
    origin: datetime | None = None,
) -> PostStats:
    """POST each event alone (as a phone would) with its station's token; pace by `received_at`/speed.

    `origin` is the moment of the day that is "now" at the start (a drill follows the CEC simulator's
    clock): events received before it are posted at once, later ones when their time comes.
    Default: the first event's time."""
    stats = PostStats()
    gate = asyncio.Semaphore(concurrency)
    start_wall = time.monotonic()
    first = origin or (datetime.fromisoformat(events[0]["received_at"]) if events else None)

    async def one(session: aiohttp.ClientSession, event: Mapping[str, Any]) -> None:
        if speed and first is not None:
            due = (datetime.fromisoformat(event["received_at"]) - first).total_seconds() / speed
            await asyncio.sleep(max(0.0, due - (time.monotonic() - start_wall)))
        headers = {"Authorization": f"Bearer {tokens[event['station']]}"}
        async with gate:
            for attempt in range(attempts):
                began = time.monotonic()
                try:
                    async with session.post(f"{base_url}/v1/counts", json=event, headers=headers) as response:
                        body = await response.json(content_type=None)
                        status = response.status
                        retry_after = float(response.headers.get("Retry-After", "1"))
                except (aiohttp.ClientError, TimeoutError) as exc:
                    status, body, retry_after = 0, {"error": {"message": str(exc)}}, 1.0
                if status in (429, 503, 0) and attempt + 1 < attempts:
                    stats.retries += 1
                    await asyncio.sleep(retry_after)
                    continue
                stats.latencies.append(time.monotonic() - began)
                stats.sent += 1
                items = body.get("items") if isinstance(body, dict) else None
                if not items:
                    stats.rejected += 1
                    stats.errors.append(f"{event['report_id']}: HTTP {status} {body}")
                    return
                item = items[0]
                if item["status"] == "accepted":
                    if body.get("duplicates"):
                        stats.duplicates += 1
                    else:
                        stats.accepted += 1
                        stats.spooled += item.get("stored") == "spool"
                else:
                    stats.rejected += 1
                    stats.errors.append(f"{event['report_id']}: {[e['message'] for e in item['errors']]}")
                return

    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        await asyncio.gather(*(one(session, event) for event in events))
    stats.seconds = time.monotonic() - start_wall
    return stats
