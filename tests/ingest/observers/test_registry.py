"""The station registry import (validation report) and the tokens CLI."""

from __future__ import annotations

import hashlib
import sqlite3
from pathlib import Path

from click.testing import CliRunner

from turnout_watch.cli import cli

BAD_AND_GOOD = """station,region,registered,address,lat,lon
75-0001,Almaty,2374,Abai ave 10,43.24,76.91
75-0002,Almatty,1500,,,
75-0001,Almaty,2000,,,
71-0001,Astana,lots,,,
71-0002,Astana,900,,71.43,51.17
,Astana,900,,,
19-0001,Almaty Region,1200,,,
"""


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, list(args), env={"TURNOUT_WATCH_DATA_DIR": str(tmp_path)})
    return result.exit_code, result.output + (str(result.exception) if result.exception else "")


def test_import_keeps_good_rows_and_reports_each_bad_one(tmp_path: Path) -> None:
    csv_path = tmp_path / "stations.csv"
    csv_path.write_text(BAD_AND_GOOD, encoding="utf-8")
    code, out = run(tmp_path, "stations", "import", str(csv_path), "--on", "2022-11-20")
    assert code == 1
    assert "7 rows: 2 imported (2 new, 0 updated), 5 rejected" in out
    assert "line 3: station 75-0002: unknown region 'Almatty'" in out and "'Almaty'" in out  # with suggestions
    assert "line 4: station 75-0001: station 75-0001 is already on line 2" in out
    assert "line 5: station 71-0001: registered voters 'lots' is not a whole number" in out
    assert "line 6: station 71-0002: coordinates 71.43, 51.17 are outside Kazakhstan (swapped?)" in out
    assert "line 7: station ?: no station id" in out
    db = sqlite3.connect(tmp_path / "observers.sqlite3")
    assert sorted(r[0] for r in db.execute("SELECT station FROM stations")) == ["19-0001", "75-0001"]
    csv_path.write_text("station,region,registered\n75-0001,KZ-75,2400\n", encoding="utf-8")
    code, out = run(tmp_path, "stations", "import", str(csv_path))
    assert code == 0 and "1 imported (0 new, 1 updated)" in out


def test_tokens_issue_list_revoke_and_only_a_hash_is_stored(tmp_path: Path) -> None:
    csv_path = tmp_path / "stations.csv"
    csv_path.write_text("station,region,registered\n75-0001,Almaty,2374\n", encoding="utf-8")
    run(tmp_path, "stations", "import", str(csv_path))
    code, out = run(tmp_path, "tokens", "issue", "observer", "obs-1", "75-0001")
    assert code == 0
    token = out.split()[0]
    assert token.startswith("tw_")
    code, out = run(tmp_path, "tokens", "issue", "observer", "obs-2", "99-9999")
    assert code != 0 and "unknown station(s) 99-9999" in out
    code, out = run(tmp_path, "tokens", "issue", "coordinator", "Almaty HQ", "Алматы", "Astana")
    assert code == 0 and "KZ-71, KZ-75" in out
    db = sqlite3.connect(tmp_path / "observers.sqlite3")
    stored = db.execute("SELECT secret_sha256 FROM tokens").fetchall()
    secret = token.split("_", 2)[2]
    assert token not in str(stored) and secret not in str(stored)
    assert (hashlib.sha256(secret.encode()).hexdigest(),) in stored
    token_id = token.split("_")[1]
    code, out = run(tmp_path, "tokens", "revoke", token_id)
    assert code == 0 and f"revoked {token_id}" in out
    code, out = run(tmp_path, "tokens", "list")
    assert "revoked" in out and "active" in out
