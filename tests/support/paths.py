"""Where the tests find the shipped days and the shared reference data."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
ELECTIONS = ROOT / "data" / "elections"
DAY_2022 = ELECTIONS / "kz-2022-11-20-presidential.jsonl"
DAY_2023 = ELECTIONS / "kz-2023-03-19-majilis.jsonl"
FIXTURES = ROOT / "tests" / "fixtures"


def shared_data() -> Path:
    """shared/data beside the clone (as CI lays it out), or TURNOUT_WATCH_SHARED_DATA; missing fails, never skips."""
    path = Path(os.environ.get("TURNOUT_WATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        raise RuntimeError(f"shared data not found at {path}; set TURNOUT_WATCH_SHARED_DATA")
    return path
