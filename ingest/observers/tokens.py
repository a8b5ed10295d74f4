"""Bearer tokens: observers are bound to their station(s), coordinators to their region(s).

A token is `tw_<id>_<secret>`. The id finds the row; only SHA-256 of the secret is stored, and the
presented secret's hash is compared with `hmac.compare_digest` (constant time). A plain hash (not a
slow password KDF) is right here because the secret is 32 random bytes, not a guessable password.
The whole token is shown once, when issued.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import sqlite3
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from ingest.observers.errors import TokenError
from ingest.observers.registry import Station
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.gazetteer import default_gazetteer

TokenKind = Literal["observer", "coordinator"]
_TOKEN = re.compile(r"^tw_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DUMMY_HASH = hashlib.sha256(b"not a token").hexdigest()


def _hash(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


@dataclass(frozen=True)
class TokenRecord:
    token_id: str
    secret_sha256: str
    kind: TokenKind
    name: str
    scope: frozenset[str]
    created_at: str
    revoked_at: str | None

    def covers(self, station: Station) -> bool:
        """May this token write (and read) counts of `station`?"""
        if self.kind == "observer":
            return station.station in self.scope
        return station.region_code in self.scope


def issue_token(
    conn: sqlite3.Connection,
    kind: TokenKind,
    name: str,
    scope: Iterable[str],
    stations: Mapping[str, Station] | None = None,
) -> tuple[str, TokenRecord]:
    """Create a token; returns the full token (shown once) and its stored record.

    Observer scopes are station ids (each must be in the registry); coordinator scopes are region
    names or codes, stored as ISO codes.
    """
    items = [s.strip() for s in scope if s.strip()]
    if not items:
        raise TokenError(f"a {kind} token needs at least one {'station' if kind == 'observer' else 'region'}")
    if kind == "observer":
        known = stations if stations is not None else {}
        unknown = [s for s in items if s not in known]
        if unknown:
            raise TokenError(
                f"unknown station(s) {', '.join(unknown)}: import them first (turnout-watch stations import)"
            )
        resolved = sorted(set(items))
    else:
        gazetteer, codes = default_gazetteer(), set()
        for item in items:
            try:
                codes.add(gazetteer.resolve(item).code)  # a name or a code, current or old
            except TurnoutWatchError as exc:
                raise TokenError(str(exc)) from exc
        resolved = sorted(codes)
    token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
    record = TokenRecord(
        token_id, _hash(secret), kind, name, frozenset(resolved), datetime.now(UTC).isoformat(timespec="seconds"), None
    )
    save_tokens(conn, [record])
    return f"tw_{token_id}_{secret}", record


def save_tokens(conn: sqlite3.Connection, records: Iterable[TokenRecord]) -> None:
    with conn:
        conn.executemany(
            "INSERT INTO tokens (token_id, secret_sha256, kind, name, scope, created_at, revoked_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (r.token_id, r.secret_sha256, r.kind, r.name, json.dumps(sorted(r.scope)), r.created_at, r.revoked_at)
                for r in records
            ],
        )


def new_tokens_bulk(kind: TokenKind, scopes: Mapping[str, Iterable[str]]) -> list[tuple[str, TokenRecord]]:
    """Many tokens at once without checks (the simulator: one observer per generated station)."""
    now = datetime.now(UTC).isoformat(timespec="seconds")
    out = []
    for name, scope in scopes.items():
        token_id, secret = secrets.token_hex(6), secrets.token_urlsafe(32)
        out.append(
            (f"tw_{token_id}_{secret}", TokenRecord(token_id, _hash(secret), kind, name, frozenset(scope), now, None))
        )
    return out


def revoke_token(conn: sqlite3.Connection, token_id: str) -> TokenRecord:
    """Revoke by id (`tw_<id>_...`'s middle part, or the whole token); effective on the next request."""
    match = _TOKEN.match(token_id)
    token_id = match.group(1) if match else token_id
    with conn:
        cursor = conn.execute(
            "UPDATE tokens SET revoked_at = ? WHERE token_id = ? AND revoked_at IS NULL",
            (datetime.now(UTC).isoformat(timespec="seconds"), token_id),
        )
    tokens = load_tokens(conn)
    if token_id not in tokens:
        raise TokenError(f"no token with id {token_id!r} (turnout-watch tokens list shows them)")
    if cursor.rowcount == 0:
        raise TokenError(f"token {token_id} was already revoked at {tokens[token_id].revoked_at}")
    return tokens[token_id]


def load_tokens(conn: sqlite3.Connection) -> dict[str, TokenRecord]:
    rows = conn.execute("SELECT token_id, secret_sha256, kind, name, scope, created_at, revoked_at FROM tokens")
    return {r[0]: TokenRecord(r[0], r[1], r[2], r[3], frozenset(json.loads(r[4])), r[5], r[6]) for r in rows}


class AuthError(TurnoutWatchError):
    """The request's token is missing, malformed, wrong or revoked (HTTP 401)."""


def authenticate(header: str | None, tokens: Mapping[str, TokenRecord]) -> TokenRecord:
    """The token record for an `Authorization: Bearer tw_...` header, or AuthError saying why not."""
    if not header:
        raise AuthError("no token: send the header 'Authorization: Bearer <your token>'")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        raise AuthError("the Authorization header must be 'Bearer <your token>'")
    match = _TOKEN.match(value.strip())
    if not match:
        raise AuthError("this is not a turnout-watch token (they look like tw_<12 hex>_<43 characters>)")
    record = tokens.get(match.group(1))
    presented = _hash(match.group(2))
    # Compare even for an unknown id, so timing does not tell known ids from unknown ones.
    matches = hmac.compare_digest(presented, record.secret_sha256 if record else _DUMMY_HASH)
    if record is None or not matches:
        raise AuthError("unknown or wrong token: check it was copied whole, or ask your coordinator for a new one")
    if record.revoked_at:
        raise AuthError(f"this token was revoked at {record.revoked_at}; ask your coordinator for a new one")
    return record
