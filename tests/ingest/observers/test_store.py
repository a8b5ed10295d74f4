"""The intake's SQLite file: schema on first open, and `data_version` telling the server another process
(the CLI) committed, which is how a revocation reaches a running server."""

from __future__ import annotations

from pathlib import Path

import pytest

from ingest.observers import store
from ingest.observers.errors import RegistryError
from ingest.observers.registry import Station, save_stations
from tests.support.intake import make_settings


def test_another_connections_commit_changes_data_version_ours_do_not(tmp_path: Path) -> None:
    path = tmp_path / "nested" / "observers.sqlite3"
    server, cli = store.connect(path), store.connect(path)
    before = store.data_version(server)
    save_stations(server, [Station("75-0001", "Almaty", "KZ-75", 2374)])
    assert store.data_version(server) == before
    save_stations(cli, [Station("71-0001", "Astana", "KZ-71", 1800)])
    assert store.data_version(server) != before
    assert server.execute("SELECT count(*) FROM stations").fetchone() == (2,)
    assert server.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    server.close()
    cli.close()


def test_the_database_lives_in_data_dir_unless_configured(tmp_path: Path) -> None:
    assert store.db_path(make_settings("127.0.0.1:9", tmp_path)) == tmp_path / "observers.sqlite3"
    chosen = tmp_path / "elsewhere.db"
    assert store.db_path(make_settings("127.0.0.1:9", tmp_path, observers_db=chosen)) == chosen


def test_an_unopenable_database_is_a_registry_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(RegistryError, match="cannot open the intake database"):
        store.connect(tmp_path / "file" / "observers.sqlite3")
