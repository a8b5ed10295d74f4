"""Bearer tokens: issued bound to stations or regions, only a hash stored, every refusal says why."""

from __future__ import annotations

import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from ingest.observers import store
from ingest.observers.errors import TokenError
from ingest.observers.registry import Station, load_stations, save_stations
from ingest.observers.tokens import (
    AuthError,
    TokenRecord,
    authenticate,
    issue_token,
    load_tokens,
    new_tokens_bulk,
    revoke_token,
)

ALMATY = Station("75-0001", "Almaty", "KZ-75", 2374)
ASTANA = Station("71-0001", "Astana", "KZ-71", 1800)


@pytest.fixture
def conn(tmp_path: Path) -> Iterator[sqlite3.Connection]:
    conn = store.connect(tmp_path / "observers.sqlite3")
    save_stations(conn, [ALMATY, ASTANA])
    yield conn
    conn.close()


def test_an_observer_token_covers_its_stations_only(conn: sqlite3.Connection) -> None:
    token, record = issue_token(conn, "observer", "obs-1", [" 75-0001 ", ""], load_stations(conn))
    assert record.scope == {"75-0001"} and record.kind == "observer" and record.revoked_at is None
    assert token.startswith(f"tw_{record.token_id}_")
    assert record.covers(ALMATY) and not record.covers(ASTANA)
    assert authenticate(f"Bearer {token}", load_tokens(conn)) == record


def test_a_coordinator_token_covers_regions_in_any_spelling(conn: sqlite3.Connection) -> None:
    _, record = issue_token(conn, "coordinator", "HQ", ["Алматы", "KZ-71"])
    assert record.scope == {"KZ-75", "KZ-71"}
    assert record.covers(ALMATY) and record.covers(ASTANA)
    assert not record.covers(Station("19-0001", "Almaty Region", "KZ-19", 1200))


@pytest.mark.parametrize(
    ("kind", "scope", "message"),
    [
        ("observer", ["99-9999", "75-0001"], "unknown station(s) 99-9999"),
        ("observer", [" "], "needs at least one station"),
        ("coordinator", [], "needs at least one region"),
        ("coordinator", ["Atlantis"], "Atlantis"),
    ],
)
def test_issue_refuses_an_unknown_scope(conn: sqlite3.Connection, kind: str, scope: list[str], message: str) -> None:
    with pytest.raises(TokenError, match=re.escape(message)):
        issue_token(conn, kind, "x", scope, load_stations(conn))  # type: ignore[arg-type]
    assert load_tokens(conn) == {}


def test_only_the_hash_of_the_secret_is_stored(conn: sqlite3.Connection) -> None:
    token, record = issue_token(conn, "observer", "obs-1", ["75-0001"], load_stations(conn))
    secret = token.split("_", 2)[2]
    assert len(secret) == 43
    stored = conn.execute("SELECT * FROM tokens").fetchall()
    assert secret not in repr(stored) and record.secret_sha256 in repr(stored)


def test_every_refusal_says_why(conn: sqlite3.Connection) -> None:
    token, _ = issue_token(conn, "observer", "obs-1", ["75-0001"], load_stations(conn))
    tokens = load_tokens(conn)
    token_id, secret = token.split("_", 2)[1:]
    other_id = "0" * 12 if token_id != "0" * 12 else "1" * 12
    refusals = {
        None: "no token",
        "": "no token",
        f"Basic {token}": "must be 'Bearer <your token>'",
        "Bearer ": "must be 'Bearer <your token>'",
        "Bearer tw_short": "not a turnout-watch token",
        f"Bearer {token}x": "not a turnout-watch token",
        f"Bearer tw_{other_id}_{secret}": "unknown or wrong token",  # an id that is not ours
        f"Bearer {token[:-1]}{'A' if token[-1] != 'A' else 'B'}": "unknown or wrong token",  # our id, wrong secret
    }
    for header, message in refusals.items():
        with pytest.raises(AuthError, match=re.escape(message)):
            authenticate(header, tokens)
    assert authenticate(f"bearer {token} ", tokens).token_id == token_id  # the scheme in any case


def test_revoke_by_id_or_whole_token_takes_effect_and_only_once(conn: sqlite3.Connection) -> None:
    first, _ = issue_token(conn, "observer", "obs-1", ["75-0001"], load_stations(conn))
    second, _ = issue_token(conn, "observer", "obs-2", ["75-0001"], load_stations(conn))
    revoked = revoke_token(conn, first)  # the whole token
    assert revoked.revoked_at is not None
    assert revoke_token(conn, second.split("_")[1]).revoked_at is not None  # its id
    tokens = load_tokens(conn)
    with pytest.raises(AuthError, match=re.escape(f"revoked at {revoked.revoked_at};")):
        authenticate(f"Bearer {first}", tokens)
    with pytest.raises(TokenError, match="already revoked"):
        revoke_token(conn, first)
    with pytest.raises(TokenError, match="no token with id 'feedfeedfeed'"):
        revoke_token(conn, "feedfeedfeed")


def test_bulk_tokens_authenticate_once_saved() -> None:
    issued = new_tokens_bulk("observer", {"obs-a": ["75-0001"], "obs-b": ["71-0001"]})
    tokens: dict[str, TokenRecord] = {record.token_id: record for _, record in issued}
    for token, record in issued:
        assert authenticate(f"Bearer {token}", tokens) == record
    assert [record.scope for _, record in issued] == [{"75-0001"}, {"71-0001"}]
