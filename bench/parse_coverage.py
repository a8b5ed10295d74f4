"""How much of the real releases the parser reads, per language: figures placed exactly, the national
figure and the as-of time found where the text states them, and every wrong value (a figure, a national
figure or a time the release does not say; the corpus test fails on any). Runs on the corpus in the
repository by default, or on any directory of `<name>.txt` + `<name>.json` in the corpus format (a
held-out set). Reproduce:

    .venv/bin/python bench/parse_coverage.py [DIR]
"""

from __future__ import annotations

import argparse
import json
from collections import defaultdict
from datetime import date
from pathlib import Path

from ingest.parse import parse_text

CORPUS = Path(__file__).resolve().parents[1] / "tests" / "ingest" / "corpus"


def coverage(directory: Path) -> dict[str, dict[str, int]]:
    stats: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for meta in sorted(directory.glob("*.json")):
        expected = json.loads(meta.read_text(encoding="utf-8"))
        parsed = parse_text(
            meta.with_suffix(".txt").read_text(encoding="utf-8"), on=date.fromisoformat(expected["election_date"])
        )
        as_of = parsed.as_of.strftime("%H:%M") if parsed.as_of else None
        figures: dict[str, float] = expected["figures"]
        for key in (expected["lang"], "all"):
            s = stats[key]
            s["releases"] += 1
            s["figures"] += len(figures)
            s["placed"] += sum(parsed.turnout_pct.get(code) == value for code, value in figures.items())
            s["wrong_figures"] += sum(figures.get(code) != value for code, value in parsed.turnout_pct.items())
            s["national_stated"] += expected["national"] is not None
            s["national_found"] += expected["national"] is not None and parsed.national == expected["national"]
            s["wrong_national"] += parsed.national is not None and parsed.national != expected["national"]
            s["as_of_stated"] += expected["as_of"] is not None
            s["as_of_found"] += expected["as_of"] is not None and as_of == expected["as_of"]
            s["wrong_as_of"] += as_of is not None and as_of != expected["as_of"]
    return stats


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", nargs="?", type=Path, default=CORPUS)
    stats = coverage(parser.parse_args().directory)

    def share(found: int, of: int) -> str:
        return f"{found}/{of} {100 * found / of:5.1f} %" if of else "-"

    print(f"{'lang':8} {'releases':>8} {'figures':>18} {'national':>16} {'as-of':>16}  wrong (figure/national/as-of)")
    for lang, s in sorted(stats.items(), key=lambda item: (item[0] == "all", item[0])):
        print(
            f"{lang:8} {s['releases']:8} {share(s['placed'], s['figures']):>18} "
            f"{share(s['national_found'], s['national_stated']):>16} {share(s['as_of_found'], s['as_of_stated']):>16}"
            f"  {s['wrong_figures']}/{s['wrong_national']}/{s['wrong_as_of']}"
        )


if __name__ == "__main__":
    main()
