"""How long offline `detect` takes for a day with many observed stations' hourly counts.

Writes one synthetic day (seeded) with N observed stations reporting a tally and the commission's
figure at each release hour (10:00..20:00: 12 counts a station), then times loading the day file and
running `detect_day` on it, separately. Reproduce:

    .venv/bin/python bench/detect_observers.py --stations 10000

Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

from turnout_watch.core.dayfile import load_day, write_day
from turnout_watch.core.settings import SHIPPED_ELECTIONS
from turnout_watch.services.detect import detect_day
from turnout_watch.sim.synth import make_day


def main(stations: int, seed: int) -> dict[str, float | int]:
    header, events = make_day(seed, "protocol", observers=stations)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "day.jsonl"
        write_day(path, header, events)
        t0 = time.perf_counter()
        day = load_day(path)
        t1 = time.perf_counter()
        result = detect_day(day, history_dir=SHIPPED_ELECTIONS)
        t2 = time.perf_counter()
    return {
        "stations": stations,
        "observer_counts": result.observer_counts,
        "releases": result.releases,
        "flags": len(result.flags),
        "load_seconds": round(t1 - t0, 3),
        "detect_seconds": round(t2 - t1, 3),
        "counts_per_second": round(result.observer_counts / (t2 - t1)),
    }


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stations", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    print(json.dumps(main(args.stations, args.seed)))
