"""`Intake.submit`, the intake's core without HTTP: each report made durable once, whatever is resent,
concurrently or after a restart. The publisher runs on its spool (the broker address refuses connections),
so what was published is what the spool holds."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from ingest.observers import store
from ingest.observers.intake import Intake, NotDurableError, SubmitResult
from ingest.observers.metrics import IntakeMetrics
from ingest.observers.publisher import DurablePublisher
from ingest.observers.spool import Spool
from ingest.observers.tokens import TokenRecord
from tests.support.intake import ELECTION, prepare_registry
from turnout_watch.core.settings import Settings

NOW = datetime.fromisoformat("2022-11-20T20:30:00+06:00")


def count(station: str = "75-0001", voted: int = 800, at: str = "12:00", **extra: Any) -> dict[str, Any]:
    return {"station": station, "observed_at": f"2022-11-20T{at}:00+06:00", "voted": voted, **extra}


@dataclass
class Env:
    settings: Settings
    intake: Intake
    spool: Spool
    registry: CollectorRegistry
    tokens: dict[str, str]

    def token(self, name: str) -> TokenRecord:
        return self.intake.authenticate(f"Bearer {self.tokens[name]}")

    async def submit(self, items: list[Any], who: str = "obs1", now: datetime = NOW) -> SubmitResult:
        return await self.intake.submit(items, self.token(who), now)

    def scoped(self, report_id: str, who: str = "obs1") -> str:
        """A client's report_id as the topic carries it: scoped to the token that sent it."""
        return f"{self.token(who).token_id}:{report_id}"

    def records(self) -> list[dict[str, Any]]:
        return [e.value for e in self.spool.pending(1000)]

    def published(self) -> list[tuple[str, str]]:
        return [(e.key, e.value["report_id"]) for e in self.spool.pending(1000)]

    def metric(self, name: str, **labels: str) -> float | None:
        return self.registry.get_sample_value(name, labels)


@asynccontextmanager
async def opened(settings: Settings, tokens: dict[str, str]) -> AsyncIterator[Env]:
    """The intake as the app wires it, on the files under `settings.data_dir` (so it can be opened again)."""
    conn = store.connect(store.db_path(settings))
    spool = Spool(settings.data_dir / "spool")
    assert settings.broker
    publisher = DurablePublisher(settings.broker, settings, "observer-counts", spool)
    await publisher.start()
    registry = CollectorRegistry()
    intake = Intake(conn, ELECTION, publisher, IntakeMetrics(registry))
    try:
        await intake.recover()
        yield Env(settings, intake, spool, registry, tokens)
    finally:
        intake.close()
        await publisher.stop()
        spool.close()
        conn.close()


@pytest.fixture
async def env(offline: Settings) -> AsyncIterator[Env]:
    async with opened(offline, prepare_registry(offline)) as opened_env:
        yield opened_env


def codes(result: SubmitResult) -> list[set[str]]:
    return [{e["code"] for e in item.get("errors", ())} for item in result.items]


async def test_a_resend_gets_the_first_answer_and_publishes_nothing(env: Env) -> None:
    first = await env.submit([count(report_id="phone-1")])
    assert (first.status, first.accepted, first.duplicates) == (200, 1, 0)
    assert first.items == [
        {
            "index": 0,
            "status": "accepted",
            "report_id": "phone-1",
            "station": "75-0001",
            "source": "tally",
            "accepted_at": "2022-11-20T20:30:00.000+06:00",
            "stored": "spool",
        }
    ]
    again = await env.submit([count(report_id="phone-1")], now=datetime.fromisoformat("2022-11-20T20:45:00+06:00"))
    assert (again.status, again.accepted, again.duplicates) == (200, 0, 1)
    assert again.items == first.items  # the first answer, accepted_at included
    assert env.published() == [("75-0001", env.scoped("phone-1"))]


async def test_the_same_count_sent_twice_at_once_is_published_once(env: Env) -> None:
    one, other = await asyncio.gather(env.submit([count(voted=900)]), env.submit([count(voted=900)]))
    assert sorted([(one.accepted, one.duplicates), (other.accepted, other.duplicates)]) == [(0, 1), (1, 0)]
    assert one.items == other.items
    in_one_batch = await env.submit([count(voted=1000, at="14:00")] * 2)
    assert (in_one_batch.accepted, in_one_batch.duplicates) == (1, 1)
    assert in_one_batch.items[0] == {**in_one_batch.items[1], "index": 0}
    assert [key for key, _ in env.published()] == ["75-0001", "75-0001"]


async def test_a_report_id_reused_for_another_count_is_refused(env: Env) -> None:
    await env.submit([count(report_id="phone-1")])
    reused = await env.submit([count(voted=801, report_id="phone-1")])
    assert (reused.status, reused.rejected) == (422, 1) and codes(reused) == [{"report_id_reused"}]
    assert reused.items[0]["errors"][0]["params"] == {"report_id": "phone-1"}
    assert env.published() == [("75-0001", env.scoped("phone-1"))]


async def test_a_batch_is_checked_against_its_own_earlier_items(env: Env) -> None:
    result = await env.submit([count(voted=800, at="12:00"), count(voted=700, at="14:00")])
    assert (result.accepted, result.rejected) == (1, 1) and codes(result) == [set(), {"lower_than_earlier"}]


async def test_requests_arriving_together_share_one_commit_and_see_each_others_counts(env: Env) -> None:
    """Group commit: the intents of concurrent requests are committed in one transaction (one fsync, not
    one per request, nor one per row), and a count not committed yet already bars a conflicting one."""
    statements: list[str] = []
    env.intake.conn.set_trace_callback(statements.append)
    first, lower, *others = await asyncio.gather(
        env.submit([count(voted=900, at="13:00")]),
        env.submit([count(voted=800, at="14:00")]),  # lower than the 13:00 count beside it
        env.submit([count("75-0002", voted=500)], who="obs2"),
        env.submit([count("71-0001", voted=600), count("71-0001", voted=700, at="13:00")], who="obs2"),
    )
    env.intake.conn.set_trace_callback(None)
    assert first.accepted == 1 and codes(lower) == [{"lower_than_earlier"}]
    assert [o.accepted for o in others] == [1, 2]
    assert statements.count("BEGIN IMMEDIATE") == statements.count("COMMIT") == 1
    assert env.intake.conn.execute("SELECT count(*) FROM reports WHERE state = 'intent'").fetchone() == (4,)
    env.intake.close()  # the done marks: one more commit
    assert env.intake.conn.execute("SELECT count(*) FROM reports WHERE state = 'done'").fetchone() == (4,)
    assert len(env.published()) == 4 and not env.intake._reserved


async def test_a_refused_commit_fails_every_request_of_the_group_and_stores_nothing(env: Env) -> None:
    env.intake.conn.execute("PRAGMA busy_timeout=0")
    other = store.connect(store.db_path(env.settings))
    other.execute("BEGIN IMMEDIATE")  # another writer holds the lock: the intents cannot be committed
    results = await asyncio.gather(
        env.submit([count(voted=900)]), env.submit([count("75-0002", voted=5)], who="obs2"), return_exceptions=True
    )
    assert [type(r) for r in results] == [NotDurableError, NotDurableError]
    assert env.published() == [] and not env.intake._reserved and not env.intake._inflight
    other.execute("ROLLBACK")
    other.close()
    again = await env.submit([count(voted=900)])  # sent again: taken, as if the first never happened
    assert (again.accepted, again.duplicates) == (1, 0) and len(env.published()) == 1


async def test_answers_and_history_survive_a_restart(offline: Settings) -> None:
    tokens = prepare_registry(offline)
    async with opened(offline, tokens) as env:
        first = await env.submit([count(report_id="phone-1")])
    async with opened(offline, tokens) as env:
        again = await env.submit([count(report_id="phone-1")])
        assert (again.duplicates, again.items) == (1, first.items)
        lower = await env.submit([count(voted=700, at="14:00")])
        assert codes(lower) == [{"lower_than_earlier"}]
        assert env.published() == [("75-0001", env.scoped("phone-1"))]  # still spooled, once


async def test_status_403_only_when_every_refusal_is_the_tokens_scope(env: Env) -> None:
    assert (await env.submit([count("71-0001"), count("75-0002")])).status == 403
    mixed = await env.submit([count("71-0001"), count(voted=-1)])
    assert mixed.status == 422 and codes(mixed) == [{"forbidden"}, {"negative"}]
    assert (await env.submit([count("71-0001"), count()])).status == 200
    assert (await env.submit([count()])).status == 200  # a duplicate alone is still taken


async def test_station_view_shows_the_latest_count_of_each_source(env: Env) -> None:
    await env.submit([count(voted=900, at="14:00"), count(voted=800, at="12:00")])  # the later one first
    await env.submit([count(voted=850, at="13:00", source="commission")])
    view = env.intake.station_view(env.intake.stations["75-0001"])
    assert view["station"] == "75-0001" and view["region_code"] == "KZ-75" and view["registered"] == 2374
    assert (view["last"]["tally"]["voted"], view["last"]["tally"]["observed_at"]) == (900, "2022-11-20T14:00:00+06:00")
    assert view["last"]["commission"]["voted"] == 850


async def test_outcomes_are_counted(env: Env) -> None:
    await env.submit([count(), count(), count(voted=-1), count("99-9999", colour="red")])
    assert env.metric("turnout_watch_intake_counts_total", outcome="accepted") == 1
    assert env.metric("turnout_watch_intake_counts_total", outcome="duplicate") == 1
    assert env.metric("turnout_watch_intake_counts_total", outcome="rejected") == 2
    assert env.metric("turnout_watch_intake_rejections_total", code="negative") == 1
    assert env.metric("turnout_watch_intake_rejections_total", code="unknown_station") == 1
    assert env.metric("turnout_watch_intake_rejections_total", code="unknown_field") == 1
    assert env.metric("turnout_watch_intake_stored_total", where="spool") == 1
    assert env.metric("turnout_watch_intake_stored_total", where="broker") == 0


async def test_report_ids_are_scoped_to_the_token_so_nobody_can_claim_anothers(env: Env) -> None:
    """Issue 13: one report_id namespace let an observer pre-claim another's ids and turn their real
    counts into "duplicates". The Almaty coordinator also covers 75-0001, and sends first."""
    squatter = await env.submit([count(voted=5, at="09:00", report_id="phone-1")], who="almaty")
    assert (squatter.accepted, squatter.items[0]["report_id"]) == (1, "phone-1")
    real = await env.submit([count(voted=800, at="12:00", report_id="phone-1")], who="obs1")
    assert (real.accepted, real.duplicates) == (1, 0)  # not a "duplicate" of the squatter's count
    assert real.items[0]["report_id"] == "phone-1"  # the client's own id in the answer
    assert env.published() == [("75-0001", env.scoped("phone-1", "almaty")), ("75-0001", env.scoped("phone-1"))]
    again = await env.submit([count(voted=800, at="12:00", report_id="phone-1")], who="obs1")
    assert (again.duplicates, again.items) == (1, real.items)


async def test_registry_owns_registered_region_and_attribution(env: Env) -> None:
    """Issue 13: `registered: 1000000` (or 10) from a body was published as sent, and the body's
    `observer` replaced the token holder's name. Now a disagreeing figure is a per-item 422 and the
    record names the token's holder and id; the body's observer travels only as a note."""
    forged = await env.submit(
        [count(voted=900, registered=1_000_000), count(voted=9, at="13:00", registered=10)], who="obs1"
    )
    assert forged.status == 422 and codes(forged) == [{"registered_mismatch"}, {"registered_mismatch"}]
    assert forged.items[1]["errors"][0]["params"] == {"registered": 10, "station_registered": 2374}
    assert env.published() == []
    ok = await env.submit([count(voted=900, registered=2374, region="Алматы", observer="Someone Else")])
    assert ok.accepted == 1
    [record] = env.records()
    holder = env.token("obs1")
    assert record["registered"] == 2374 and record["region"] == "Almaty" and record["region_code"] == "KZ-75"
    assert (record["observer"], record["token_id"], record["observer_note"]) == (
        "obs-1",
        holder.token_id,
        "Someone Else",
    )
    await env.submit([count(voted=950, at="13:00")])
    assert "observer_note" not in env.records()[1] and env.records()[1]["observer"] == "obs-1"


async def test_answers_come_back_from_sqlite_when_the_cache_has_forgotten_them(env: Env) -> None:
    env.intake.cache_size = 2
    firsts = [await env.submit([count(voted=100 * n, at=f"{8 + n:02d}:00", report_id=f"p-{n}")]) for n in range(1, 6)]
    assert len(env.intake._answers) == 2  # flat memory: the cache is bounded
    env.intake.close()  # the done marks committed, as the timer would
    for n, first in enumerate(firsts, start=1):
        again = await env.submit([count(voted=100 * n, at=f"{8 + n:02d}:00", report_id=f"p-{n}")])
        assert (again.duplicates, again.items) == (1, first.items)
    reused = await env.submit([count(voted=101, at="09:00", report_id="p-1")])
    assert codes(reused) == [{"report_id_reused"}]
    assert len(env.published()) == 5
