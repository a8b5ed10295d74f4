"""The intake's own database (SQLite in `data_dir`): stations, tokens and accepted reports.

SQLite because one file next to the server is all a deployment for ~10,000 stations needs, it is in
the standard library, and the CLI (`stations import`, `tokens issue/revoke`) and a running server can
share it safely (WAL mode). The server keeps stations and tokens in memory and reloads them when
another process commits (`PRAGMA data_version`), so a revocation takes effect on the next request.
Reports stay on disk (the server caches a bounded number of answers): memory does not grow with the day.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from ingest.observers.errors import RegistryError
from turnout_watch.core.settings import Settings

SCHEMA = """
CREATE TABLE IF NOT EXISTS stations (
    station TEXT PRIMARY KEY,
    region TEXT NOT NULL,          -- as the CSV spelled it
    region_code TEXT NOT NULL,     -- ISO 3166-2:KZ
    registered INTEGER NOT NULL,
    address TEXT,
    lat REAL,
    lon REAL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS stations_region ON stations(region_code);
CREATE TABLE IF NOT EXISTS tokens (
    token_id TEXT PRIMARY KEY,     -- public half of the token, used to find the row
    secret_sha256 TEXT NOT NULL,   -- hash of the secret half; the secret itself is never stored
    kind TEXT NOT NULL CHECK (kind IN ('observer', 'coordinator')),
    name TEXT NOT NULL,
    scope TEXT NOT NULL,           -- JSON list: station ids (observer) or region codes (coordinator)
    created_at TEXT NOT NULL,
    revoked_at TEXT
);
CREATE TABLE IF NOT EXISTS reports (
    report_id TEXT PRIMARY KEY,    -- scoped: <token_id>:<the client's id>, or the id derived from the content
    station TEXT NOT NULL,
    source TEXT NOT NULL,
    observed_at TEXT NOT NULL,     -- ISO, with offset
    observed_ts REAL NOT NULL,     -- unix seconds, for ordering
    voted INTEGER NOT NULL,
    fingerprint TEXT NOT NULL,     -- hash of the report's content: a reused report_id with other content is refused
    record TEXT NOT NULL,          -- the JSON published to the observer-counts topic
    result TEXT NOT NULL,          -- the answer given, repeated verbatim to a resend
    state TEXT NOT NULL DEFAULT 'done',  -- 'intent': written before the send, not known to be durable yet
    floor TEXT                     -- intents: JSON {partition: last offset acknowledged before the send}
);
CREATE INDEX IF NOT EXISTS reports_station ON reports(station, source, observed_ts);
"""


def db_path(settings: Settings) -> Path:
    return settings.observers_db or settings.data_dir / "observers.sqlite3"


def connect(path: Path) -> sqlite3.Connection:
    """Open (creating if needed) the intake database with the schema in place."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")  # a 2xx may rest on this commit (report_id memory)
        conn.execute("PRAGMA busy_timeout=5000")
        conn.executescript(SCHEMA)
        columns = {row[1] for row in conn.execute("PRAGMA table_info(reports)")}
        if "state" not in columns:  # a database from before write-ahead intents
            conn.execute("ALTER TABLE reports ADD COLUMN state TEXT NOT NULL DEFAULT 'done'")
            conn.execute("ALTER TABLE reports ADD COLUMN floor TEXT")
    except (sqlite3.Error, OSError) as exc:
        raise RegistryError(f"cannot open the intake database {path}: {exc}") from exc
    return conn


def data_version(conn: sqlite3.Connection) -> int:
    """Changes whenever another connection commits to the file (not on our own commits)."""
    return int(conn.execute("PRAGMA data_version").fetchone()[0])


@contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One transaction, committed (one fsync) at the end, rolled back on any error.

    The connections run in autocommit mode (`isolation_level=None`), where `with conn:` does not open
    a transaction: each row of an `executemany` would be a commit, and an fsync, of its own."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
        conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            with suppress(sqlite3.Error):  # the original error is the one to report
                conn.execute("ROLLBACK")
        raise
