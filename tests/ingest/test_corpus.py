"""Real CEC releases as the media re-published them (2011-2026; ru, kk, Kazakh Latin and Arabic, en).

Each `corpus/<name>.txt` holds the turnout lines of one published release exactly as printed (typos,
dashes, decimal commas and truncation kept); `<name>.json` the figures by ISO code, checked by hand,
with the spelling the text used (`written`), the as-of time and the national figure as the text
states them, and the source's `url` and `notes` (copy errors between sources, truncated excerpts).

The hard rule: nothing is ever placed that the release does not say (a wrong region or a wrong
number). `not_yet` lists, per release, what the parser does not read yet; it must not read anything
else less well, and a release that starts to read fully must have its `not_yet` entry removed.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from ingest.parse import parse_text

CORPUS = Path(__file__).parent / "corpus"
RELEASES = sorted(p.stem for p in CORPUS.glob("*.json"))


def _load(name: str) -> tuple[str, dict[str, Any]]:
    return (CORPUS / f"{name}.txt").read_text(encoding="utf-8"), json.loads((CORPUS / f"{name}.json").read_text())


def test_corpus_covers_every_language() -> None:
    langs = {_load(name)[1]["lang"] for name in RELEASES}
    assert langs == {"ru", "kk", "kk-latn", "kk-arab", "en"}
    assert len(RELEASES) >= 55


@pytest.mark.parametrize("name", RELEASES)
def test_real_release_parses_exactly(name: str) -> None:
    text, expected = _load(name)
    parsed = parse_text(text, on=date.fromisoformat(expected["election_date"]))
    not_yet = expected.get("not_yet", {})
    figures: dict[str, float] = expected["figures"]
    wrong = {code: v for code, v in parsed.turnout_pct.items() if figures.get(code) != v}
    assert wrong == {}, f"placed figures the release does not say: {wrong}"
    unread = sorted(code for code, v in figures.items() if parsed.turnout_pct.get(code) != v)
    assert unread == sorted(not_yet.get("figures", [])), "figures read differ from the recorded state"
    as_of = parsed.as_of.strftime("%H:%M") if parsed.as_of else None
    if not_yet.get("as_of"):
        assert as_of is None, f"a wrong as-of time: {as_of}, not {expected['as_of']}"  # missing, never wrong
    elif expected["as_of"] is None:
        assert as_of is None, f"an as-of time the release does not state: {as_of}"
    else:
        assert as_of == expected["as_of"]
    if expected["national"] is None:
        assert parsed.national is None, "a national figure the release does not state"
    elif not_yet.get("national"):
        assert parsed.national != expected["national"]
        assert parsed.national is None, "a wrong national figure"
    else:
        assert parsed.national == expected["national"]
