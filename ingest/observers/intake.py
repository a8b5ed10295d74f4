"""The intake's core, HTTP-agnostic: check counts, make the valid ones durable once, remember them.

Per request: check each item (contract, registry, election, the token's scope, what this station
reported before), reserve the valid ones (so a concurrent resend or a lower count cannot slip in
beside them), write their *intents* to SQLite (committed before anything is sent), publish them
(broker ack or fsync'd spool), then mark them done and answer. A resend of an accepted `report_id`
gets the first answer again and publishes nothing.

Write-ahead: a crash after the broker acknowledged a record but before it was marked done leaves an
intent; on start `recover()` hands every intent left to the publisher as *uncertain*, which checks the
topic for it before sending it again, so a crash in any window leaves no duplicate on the topic. The
"done" marks are not fsync'd one by one: they ride on the next intent's commit (or a short timer),
since a lost mark only means one more check of the topic after a crash.

Group commit: the intents of every request that reaches the write-ahead in the same turn of the event
loop are committed in one transaction (one fsync), with the pending "done" marks; each request waits
for that commit before it publishes. Until its intent is resolved a reservation is also kept in memory
(`_reserved`), so the next request's checks see it before the commit does.

Answers live in SQLite; memory holds a bounded cache of recent ones, so it stays flat over the day.
"""

from __future__ import annotations

import asyncio
import json
import logging
import sqlite3
import time
from collections import OrderedDict, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from ingest.observers import store
from ingest.observers.errors import NotDurableError
from ingest.observers.metrics import IntakeMetrics
from ingest.observers.publisher import DurablePublisher
from ingest.observers.registry import Station, load_stations
from ingest.observers.tokens import TokenRecord, authenticate, load_tokens
from ingest.observers.validation import CheckedCount, ItemError, PriorCount, check_count
from turnout_watch.core.dayfile import Election
from turnout_watch.core.records import encode

log = logging.getLogger(__name__)

#: Answers kept in memory for resends; older ones are read back from SQLite.
ANSWER_CACHE = 20_000
#: Seconds a "done" mark may wait for the next intent's commit before it is committed on its own.
DONE_FLUSH_SECONDS = 0.2


@dataclass
class SubmitResult:
    items: list[dict[str, Any]] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    rejected: int = 0

    @property
    def status(self) -> int:
        """200 if anything was taken; 403 if every item was refused for the token's scope; else 422."""
        if self.accepted or self.duplicates:
            return 200
        codes = {e["code"] for item in self.items for e in item.get("errors", ())}
        return 403 if codes == {"forbidden"} else 422

    def to_dict(self) -> dict[str, Any]:
        return {
            "accepted": self.accepted,
            "duplicates": self.duplicates,
            "rejected": self.rejected,
            "items": self.items,
        }


class Intake:
    def __init__(
        self,
        conn: sqlite3.Connection,
        election: Election,
        publisher: DurablePublisher,
        metrics: IntakeMetrics,
        cache_size: int = ANSWER_CACHE,
    ) -> None:
        self.conn, self.election, self.publisher, self.metrics = conn, election, publisher, metrics
        self._tz = election.tz  # (the property looks the zone up on every access)
        self.stations: dict[str, Station] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self._version = -1
        self.cache_size = cache_size
        self._answers: OrderedDict[str, tuple[str, dict[str, Any]]] = OrderedDict()  # report_id -> (fp, answer)
        self._done: dict[str, str] = {}  # report_id -> answer JSON, not yet marked done in SQLite
        self._flush: asyncio.TimerHandle | None = None
        self._queue: list[tuple[list[tuple[Any, ...]], asyncio.Future[None]]] = []  # intents to commit next
        self._commit_soon: asyncio.Handle | None = None
        self._reserved: dict[tuple[str, str], dict[str, PriorCount]] = defaultdict(dict)  # not resolved yet
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self._floor: tuple[dict[int, int], str] = ({}, "{}")  # the publisher's acked offsets, and as JSON
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> None:
        """Reload stations and tokens if another process (the CLI) changed them."""
        version = store.data_version(self.conn)
        if force or version != self._version:
            self.stations = load_stations(self.conn)
            self.tokens = load_tokens(self.conn)
            self._version = version

    async def recover(self) -> int:
        """Hand every intent a crash left to the publisher as uncertain (checked against the topic before
        it is sent again) and mark it done; returns how many there were."""
        rows = self.conn.execute(
            "SELECT report_id, station, record, result, floor FROM reports WHERE state = 'intent' ORDER BY rowid"
        ).fetchall()
        if not rows:
            return 0
        floors = [{int(p): int(o) for p, o in json.loads(floor or "{}").items()} for *_, floor in rows]
        await self.publisher.adopt(
            [(station, json.loads(record), fl) for (_, station, record, _, _), fl in zip(rows, floors, strict=True)]
        )
        done = [(json.dumps({**json.loads(result), "stored": "spool"}), rid) for rid, _, _, result, _ in rows]
        with store.transaction(self.conn):
            self.conn.executemany("UPDATE reports SET state = 'done', result = ? WHERE report_id = ?", done)
        log.warning("%d reports were being published when the intake stopped; checking the topic for them", len(rows))
        return len(rows)

    def close(self) -> None:
        """Commit the pending intents and "done" marks (the app calls this before closing the database)."""
        if self._commit_soon is not None:
            self._commit_soon.cancel()
        self._commit()

    def authenticate(self, header: str | None) -> TokenRecord:
        self.refresh()
        return authenticate(header, self.tokens)

    def station_view(self, station: Station) -> dict[str, Any]:
        last: dict[str, Any] = {}
        for source in ("tally", "commission"):
            row = self.conn.execute(
                "SELECT record FROM reports WHERE station = ? AND source = ? ORDER BY observed_ts DESC, rowid DESC "
                "LIMIT 1",
                (station.station, source),
            ).fetchone()
            last[source] = json.loads(row[0]) if row else None
        return {**station.to_dict(), "last": last}

    def _priors(self, station: str, source: str) -> list[PriorCount]:
        """Accepted and in-flight counts of a station and source (a few per hour of the day)."""
        rows = self.conn.execute(
            "SELECT observed_ts, observed_at, voted, report_id FROM reports WHERE station = ? AND source = ?",
            (station, source),
        )
        return [PriorCount(*row) for row in rows]

    def _answer(self, rid: str) -> tuple[str, dict[str, Any]] | None:
        """The (fingerprint, answer) of an accepted report_id: from the cache, else from SQLite."""
        known = self._answers.get(rid)
        if known is not None:
            self._answers.move_to_end(rid)
            return known
        row = self.conn.execute("SELECT fingerprint, result FROM reports WHERE report_id = ?", (rid,)).fetchone()
        if row is None:
            return None
        pending = self._done.get(rid)
        known = (row[0], json.loads(pending if pending is not None else row[1]))
        self._remember(rid, known)
        return known

    def _remember(self, rid: str, known: tuple[str, dict[str, Any]]) -> None:
        self._answers[rid] = known
        while len(self._answers) > self.cache_size:
            self._answers.popitem(last=False)

    async def submit(
        self, items: Sequence[Any], token: TokenRecord, now: datetime, *, registry_read: bool = False
    ) -> SubmitResult:
        """Check, store and publish the items of one request, against the registry as it is now (the
        CLI may have changed it while the request's body was uploading). `registry_read`: the caller
        authenticated the request after its whole body had arrived and has awaited nothing since, so
        the registry `authenticate` read is already current for it."""
        if not registry_read:
            self.refresh()
        result = SubmitResult()
        answers: list[dict[str, Any] | None] = [None] * len(items)
        fresh: list[tuple[int, CheckedCount, dict[str, Any]]] = []
        waits: list[tuple[int, str, str, asyncio.Future[None]]] = []
        accepted = now.astimezone(self._tz)  # what an accepted record's accepted_at says
        for index, item in enumerate(items):
            outcome = self._check(item, token, now, accepted)
            if isinstance(outcome, list):
                answers[index] = {"status": "rejected", "errors": [e.to_dict() for e in outcome]}
                continue
            rid, fp = outcome.report_id, outcome.fingerprint
            if rid in self._inflight:  # earlier in this batch, or in a request still being stored
                waits.append((index, rid, fp, self._inflight[rid]))
                continue
            if self._answer(rid) is not None:
                answers[index] = self._repeat(rid, fp)
                continue
            self._inflight[rid] = asyncio.get_running_loop().create_future()
            payload = outcome.record.to_dict()  # the topic's payload; its times spelled once, here
            self._reserved[(outcome.station.station, outcome.source)][rid] = PriorCount(
                outcome.observed_ts, payload["observed_at"], outcome.record.voted, rid
            )
            fresh.append((index, outcome, payload))
        if fresh:
            await self._store(fresh, answers)
        for index, rid, fp, fut in waits:
            await asyncio.shield(fut)
            answers[index] = self._repeat(rid, fp)
        outcomes = self.metrics.outcomes
        for index, answer in enumerate(answers):
            assert answer is not None
            if answer["status"] == "rejected":
                result.rejected += 1
                outcomes["rejected"].inc()
                for error in answer["errors"]:
                    self.metrics.rejections.labels(error["code"]).inc()
            elif answer.get("_duplicate"):
                result.duplicates += 1
                outcomes["duplicate"].inc()
            else:
                result.accepted += 1
                outcomes["accepted"].inc()
            result.items.append({"index": index, **{k: v for k, v in answer.items() if k != "_duplicate"}})
        return result

    def _check(
        self, item: Any, token: TokenRecord, now: datetime, accepted: datetime
    ) -> CheckedCount | list[ItemError]:
        station_id = item.get("station") if isinstance(item, Mapping) else None
        station = self.stations.get(station_id) if isinstance(station_id, str) else None
        history: dict[tuple[str, str], list[PriorCount]] = {}
        if station is not None and not token.covers(station):
            scope = "stations" if token.kind == "observer" else "regions"
            return [
                ItemError(
                    "forbidden",
                    "station",
                    f"your token does not cover station {station.station}; it covers the {scope} "
                    f"{', '.join(sorted(token.scope))}",
                    {"station": station.station},
                )
            ]
        if station is not None and isinstance(item, Mapping):
            source = item.get("source", "tally")
            if isinstance(source, str):
                key = (station.station, source)
                known = {prior.report_id: prior for prior in self._priors(*key)}
                history[key] = list({**known, **self._reserved.get(key, {})}.values())
        return check_count(
            item,
            election=self.election,
            stations=self.stations,
            history=history,
            now=now,
            observer=token.name,
            token_id=token.token_id,
            accepted_at=accepted,
        )

    def _repeat(self, rid: str, fingerprint: str) -> dict[str, Any]:
        known = self._answer(rid)
        if known is None:  # the first attempt failed to become durable
            return {
                "status": "rejected",
                "errors": [ItemError("not_stored", None, "not stored; send it again").to_dict()],
            }
        if known[0] != fingerprint:
            shown = known[1].get("report_id", rid)
            error = ItemError(
                "report_id_reused",
                "report_id",
                f"report_id {shown} was already used for a different count; use a new report_id for a new count",
                {"report_id": shown},
            )
            return {"status": "rejected", "errors": [error.to_dict()]}
        return {**known[1], "_duplicate": True}

    def _release(self, fresh: list[tuple[int, CheckedCount, dict[str, Any]]]) -> None:
        for _, checked, _ in fresh:
            key = (checked.station.station, checked.source)
            self._reserved[key].pop(checked.report_id, None)
            if not self._reserved[key]:
                del self._reserved[key]
            self._inflight.pop(checked.report_id).set_result(None)  # waiters look the answer up

    async def _write_ahead(self, intents: list[tuple[Any, ...]]) -> None:
        """Return once these intents are committed, with those of every request of this loop turn."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.append((intents, fut))
        if self._commit_soon is None:
            self._commit_soon = loop.call_soon(self._commit)
        try:
            await fut  # no shield: a cancel before the commit cancels `fut`, which `_commit` then skips
        except asyncio.CancelledError:
            if not fut.done():  # (a cancel not passed on to `fut`) not committed yet, and now never will be
                fut.cancel()
            elif not fut.cancelled():  # committed before the cancel arrived
                self._withdraw([intent[0] for intent in intents])
            raise

    def _commit(self) -> None:
        """Commit the queued intents and the pending "done" marks in one transaction."""
        self._commit_soon = None
        if self._flush is not None:
            self._flush.cancel()
            self._flush = None
        queue, self._queue = [(i, f) for i, f in self._queue if not f.done()], []
        done, self._done = self._done, {}
        if not queue and not done:
            return
        started = time.monotonic()
        try:
            with store.transaction(self.conn):  # the write-ahead: before the broker can acknowledge anything
                if done:
                    self.conn.executemany(
                        "UPDATE reports SET state = 'done', result = ?, floor = NULL WHERE report_id = ?",
                        [(answer, rid) for rid, answer in done.items()],
                    )
                if queue:
                    self.conn.executemany(
                        "INSERT OR REPLACE INTO reports (report_id, station, source, observed_at, observed_ts, "
                        "voted, fingerprint, record, result, state, floor) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 'intent', ?)",
                        [intent for intents, _ in queue for intent in intents],
                    )
        except sqlite3.Error as exc:
            self._done = {**done, **self._done}  # kept for the next commit; a crash meanwhile costs a topic check
            for _, fut in queue:  # every request of the group answers 503: nothing of it was stored
                fut.set_exception(NotDurableError(f"the intake database refused the reports: {exc}"))
            if not queue:
                log.warning("could not mark reports done in the intake database: %s", exc)
            return
        self.metrics.commit_seconds.observe(time.monotonic() - started)
        self.metrics.commit_intents.observe(sum(len(intents) for intents, _ in queue))
        for _, fut in queue:
            fut.set_result(None)

    def _withdraw(self, report_ids: list[str]) -> None:
        """Nothing was stored: the reports may be sent again."""
        try:
            with store.transaction(self.conn):
                self.conn.executemany(
                    "DELETE FROM reports WHERE report_id = ? AND state = 'intent'", [(rid,) for rid in report_ids]
                )
        except sqlite3.Error as exc:
            log.warning("could not withdraw the intents of reports not stored: %s", exc)

    async def _store(
        self, fresh: list[tuple[int, CheckedCount, dict[str, Any]]], answers: list[dict[str, Any] | None]
    ) -> None:
        """Make the checked counts durable (their records carry `accepted_at` already; `payload` is
        each one's `to_dict()`, encoded once here for both the intent and the broker)."""
        keyed = [(checked.station.station, checked.record) for _, checked, _ in fresh]
        acked = self.publisher.acked_offsets()
        if acked != self._floor[0]:  # it moves with the broker's acks; most requests see the last one's
            self._floor = (acked, json.dumps(acked))
        floor = self._floor[1]
        intents, results, encoded = [], [], []
        for _, checked, payload in fresh:
            answer = {
                "status": "accepted",
                "report_id": checked.client_report_id or checked.report_id,
                "station": checked.station.station,
                "source": checked.source,
                "accepted_at": payload["accepted_at"],  # as the record spells it
            }
            results.append(answer)
            value = encode(payload)
            encoded.append(value)
            intents.append(
                (checked.report_id, checked.station.station, checked.source, payload["observed_at"],
                 checked.observed_ts, checked.record.voted, checked.fingerprint, value.decode(),
                 json.dumps(answer), floor)
            )  # fmt: skip
        try:
            await self._write_ahead(intents)
        except BaseException:
            self._release(fresh)
            raise
        try:
            where = await self.publisher.publish(keyed, encoded)
        except BaseException:
            self._withdraw([checked.report_id for _, checked, _ in fresh])
            self._release(fresh)
            raise
        stored_in = self.metrics.stored_in
        for (index, checked, _), answer, stored in zip(fresh, results, where, strict=True):
            answer["stored"] = stored
            answers[index] = answer
            stored_in[stored].inc()
            self._remember(checked.report_id, (checked.fingerprint, answer))
            self._done[checked.report_id] = json.dumps(answer)
        self._release(fresh)
        if self._done and self._flush is None:
            self._flush = asyncio.get_running_loop().call_later(DONE_FLUSH_SECONDS, self._commit)


__all__ = ["Intake", "NotDurableError", "SubmitResult"]
