"""The intake's core, HTTP-agnostic: check counts, make the valid ones durable once, remember them.

Per request: check each item (contract, registry, election, the token's scope, what this station
reported before), reserve the valid ones (so a concurrent resend or a lower count cannot slip in
beside them), publish them (broker ack or fsync'd spool), then record them (SQLite) and answer.
A resend of an accepted `report_id` gets the first answer again and publishes nothing.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
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
        self, conn: sqlite3.Connection, election: Election, publisher: DurablePublisher, metrics: IntakeMetrics
    ) -> None:
        self.conn, self.election, self.publisher, self.metrics = conn, election, publisher, metrics
        self.stations: dict[str, Station] = {}
        self.tokens: dict[str, TokenRecord] = {}
        self._version = -1
        self.history: dict[tuple[str, str], list[PriorCount]] = defaultdict(list)
        self.last: dict[tuple[str, str], dict[str, Any]] = {}  # (station, source) -> latest accepted record
        self.answers: dict[str, tuple[str, dict[str, Any]]] = {}  # report_id -> (fingerprint, answer)
        self._inflight: dict[str, asyncio.Future[None]] = {}
        self.refresh(force=True)
        self._load_reports()

    def refresh(self, force: bool = False) -> None:
        """Reload stations and tokens if another process (the CLI) changed them."""
        version = store.data_version(self.conn)
        if force or version != self._version:
            self.stations = load_stations(self.conn)
            self.tokens = load_tokens(self.conn)
            self._version = version

    def _load_reports(self) -> None:
        rows = self.conn.execute(
            "SELECT report_id, station, source, observed_at, observed_ts, voted, fingerprint, record, result "
            "FROM reports ORDER BY observed_ts"
        )
        for rid, station, source, observed_at, ts, voted, fingerprint, record, result in rows:
            self.history[(station, source)].append(PriorCount(ts, observed_at, voted, rid))
            self.last[(station, source)] = json.loads(record)
            self.answers[rid] = (fingerprint, json.loads(result))

    def authenticate(self, header: str | None) -> TokenRecord:
        self.refresh()
        return authenticate(header, self.tokens)

    def station_view(self, station: Station) -> dict[str, Any]:
        return {
            **station.to_dict(),
            "last": {source: self.last.get((station.station, source)) for source in ("tally", "commission")},
        }

    async def submit(self, items: Sequence[Any], token: TokenRecord, now: datetime) -> SubmitResult:
        self.refresh()
        result = SubmitResult()
        answers: list[dict[str, Any] | None] = [None] * len(items)
        fresh: list[tuple[int, CheckedCount]] = []
        waits: list[tuple[int, str, str, asyncio.Future[None]]] = []
        for index, item in enumerate(items):
            outcome = self._check(item, token, now)
            if isinstance(outcome, list):
                answers[index] = {"status": "rejected", "errors": [e.to_dict() for e in outcome]}
                continue
            rid, fp = outcome.report_id, outcome.fingerprint
            if rid in self._inflight:  # earlier in this batch, or in a request still being stored
                waits.append((index, rid, fp, self._inflight[rid]))
                continue
            if rid in self.answers:
                answers[index] = self._repeat(rid, fp)
                continue
            self._reserve(outcome)
            fresh.append((index, outcome))
        if fresh:
            await self._store(fresh, answers, now)
        for index, rid, fp, fut in waits:
            await asyncio.shield(fut)
            answers[index] = self._repeat(rid, fp)
        for index, answer in enumerate(answers):
            assert answer is not None
            if answer["status"] == "rejected":
                result.rejected += 1
                self.metrics.counts.labels("rejected").inc()
                for error in answer["errors"]:
                    self.metrics.rejections.labels(error["code"]).inc()
            elif answer.get("_duplicate"):
                result.duplicates += 1
                self.metrics.counts.labels("duplicate").inc()
            else:
                result.accepted += 1
                self.metrics.counts.labels("accepted").inc()
            result.items.append({"index": index, **{k: v for k, v in answer.items() if k != "_duplicate"}})
        return result

    def _check(self, item: Any, token: TokenRecord, now: datetime) -> CheckedCount | list[ItemError]:
        station_id = item.get("station") if isinstance(item, Mapping) else None
        station = self.stations.get(station_id) if isinstance(station_id, str) else None
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
        return check_count(
            item, election=self.election, stations=self.stations, history=self.history, now=now, observer=token.name
        )

    def _repeat(self, rid: str, fingerprint: str) -> dict[str, Any]:
        known = self.answers.get(rid)
        if known is None:  # the first attempt failed to become durable
            return {
                "status": "rejected",
                "errors": [ItemError("not_stored", None, "not stored; send it again").to_dict()],
            }
        if known[0] != fingerprint:
            error = ItemError(
                "report_id_reused",
                "report_id",
                f"report_id {rid} was already used for a different count; use a new report_id for a new count",
                {"report_id": rid},
            )
            return {"status": "rejected", "errors": [error.to_dict()]}
        return {**known[1], "_duplicate": True}

    def _reserve(self, checked: CheckedCount) -> None:
        self._inflight[checked.report_id] = asyncio.get_running_loop().create_future()
        prior = PriorCount(
            checked.observed_ts, checked.record.observed_at.isoformat(), checked.record.voted, checked.report_id
        )
        self.history[(checked.station.station, checked.source)].append(prior)

    def _release(self, checked: CheckedCount, error: BaseException | None) -> None:
        fut = self._inflight.pop(checked.report_id)
        if error is None:
            fut.set_result(None)
        else:
            fut.set_result(None)  # waiters then find no answer and are told to send again
            entries = self.history[(checked.station.station, checked.source)]
            entries[:] = [p for p in entries if p.report_id != checked.report_id]

    async def _store(
        self, fresh: list[tuple[int, CheckedCount]], answers: list[dict[str, Any] | None], now: datetime
    ) -> None:
        accepted = now.astimezone(self.election.tz)
        accepted_at = accepted.isoformat(timespec="milliseconds")  # as the record spells it
        keyed = [(checked.station.station, replace(checked.record, accepted_at=accepted)) for _, checked in fresh]
        try:
            where = await self.publisher.publish(keyed)
        except BaseException as exc:
            for _, checked in fresh:
                self._release(checked, exc)
            raise
        rows = []
        for (index, checked), (_, record), stored in zip(fresh, keyed, where, strict=True):
            answer = {
                "status": "accepted",
                "report_id": checked.report_id,
                "station": checked.station.station,
                "source": checked.source,
                "accepted_at": accepted_at,
                "stored": stored,
            }
            answers[index] = answer
            self.metrics.stored.labels(stored).inc()
            self.answers[checked.report_id] = (checked.fingerprint, answer)
            key = (checked.station.station, checked.source)
            latest = self.last.get(key)
            if latest is None or datetime.fromisoformat(latest["observed_at"]).timestamp() <= checked.observed_ts:
                self.last[key] = record.to_dict()
            rows.append(
                (checked.report_id, checked.station.station, checked.source, record.observed_at.isoformat(),
                 checked.observed_ts, record.voted, checked.fingerprint, encode(record).decode(), json.dumps(answer))
            )  # fmt: skip
            self._release(checked, None)
        with self.conn:
            self.conn.executemany("INSERT OR REPLACE INTO reports VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)


__all__ = ["Intake", "NotDurableError", "SubmitResult"]
