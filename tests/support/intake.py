"""Helpers for the observer intake tests: a registry, tokens, the app under pytest-aiohttp's client, a
running server on loopback (for what needs a real URL: the browser, the durability tests), and a broker
address that refuses every connection (the intake then runs on its spool, with no broker at all)."""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient
from aiokafka import AIOKafkaConsumer
from pytest_aiohttp import AiohttpClient

from ingest.observers import store
from ingest.observers.app import create_app, load_election
from ingest.observers.registry import import_stations, load_stations
from ingest.observers.tokens import issue_token, revoke_token
from tests.support.broker import isolated_settings
from tests.support.paths import DAY_2022
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames

ELECTION = load_election(DAY_2022)

STATIONS_CSV = """station,region,registered,address,lat,lon
75-0001,Almaty,2374,"Abai ave 10, Almaty",43.24,76.91
75-0002,Алматы,1500,,,
71-0001,Astana,1800,,51.17,71.43
71-0002,KZ-71,900,,,
19-0001,Almaty Region,1200,,,
"""


def make_settings(bootstrap: str, data_dir: Path, **extra: Any) -> Settings:
    return isolated_settings(bootstrap, data_dir, **extra)


@dataclass
class _Tokens:
    settings: Settings
    tokens: dict[str, str]

    @property
    def topic(self) -> str:
        return TopicNames.from_settings(self.settings).observer_counts

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}


@dataclass
class Intake(_Tokens):
    """The app served on a real loopback port (`url`)."""

    url: str = ""
    app: web.Application | None = None


@dataclass
class IntakeClient(_Tokens):
    """The app under pytest-aiohttp's test client: requests by path (`client.post("/v1/counts")`)."""

    client: TestClient[web.Request, web.Application] = field(kw_only=True)


@contextmanager
def unreachable_broker() -> Iterator[str]:
    """A loopback address where no broker will ever answer: the port is bound (so nothing else can take
    it) but never listened on, so every connection is refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        yield f"127.0.0.1:{sock.getsockname()[1]}"


def prepare_registry(settings: Settings) -> dict[str, str]:
    """Import the test stations and issue the tokens the tests use; returns name -> token."""
    csv_path = settings.data_dir / "stations.csv"
    csv_path.parent.mkdir(parents=True, exist_ok=True)
    csv_path.write_text(STATIONS_CSV, encoding="utf-8")
    conn = store.connect(store.db_path(settings))
    report = import_stations(conn, csv_path, ELECTION.date)
    assert not report.rejected, report.format()
    stations = load_stations(conn)
    tokens = {
        "obs1": issue_token(conn, "observer", "obs-1", ["75-0001"], stations)[0],
        "obs2": issue_token(conn, "observer", "obs-2", ["75-0002", "71-0001"], stations)[0],
        "almaty": issue_token(conn, "coordinator", "Almaty coordinator", ["Almaty"], stations)[0],
        "all": issue_token(conn, "coordinator", "HQ", ["KZ-75", "KZ-71", "KZ-19"], stations)[0],
        "revoked": issue_token(conn, "observer", "obs-gone", ["75-0001"], stations)[0],
    }
    revoke_token(conn, tokens["revoked"])
    conn.close()
    return tokens


async def intake_client(
    aiohttp_client: AiohttpClient, settings: Settings, tokens: dict[str, str] | None = None
) -> IntakeClient:
    """`aiohttp_client(create_app(settings))` with the test registry; closed by the fixture after the test."""
    tokens = tokens if tokens is not None else prepare_registry(settings)
    client = await aiohttp_client(create_app(settings, ELECTION))
    return IntakeClient(settings, tokens, client=client)


@asynccontextmanager
async def running_intake(settings: Settings, tokens: dict[str, str] | None = None) -> AsyncIterator[Intake]:
    """The real app on a real loopback port."""
    tokens = tokens if tokens is not None else prepare_registry(settings)
    app = create_app(settings, ELECTION)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    try:
        yield Intake(settings, tokens, f"http://127.0.0.1:{port}", app)
    finally:
        await runner.cleanup()


async def read_topic(bootstrap: str, topic: str, expect: int, timeout: float = 10.0) -> list[dict[str, Any]]:
    """Every record on the topic (waits until `expect` arrived, then a little longer for extras)."""
    consumer = AIOKafkaConsumer(
        topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    await consumer.start()
    records: list[dict[str, Any]] = []
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        quiet_until = None
        while loop.time() < deadline:
            batch = await consumer.getmany(timeout_ms=200)
            for messages in batch.values():
                for m in messages:
                    value = json.loads(m.value)
                    value["_key"] = m.key.decode()
                    records.append(value)
            if len(records) >= expect:
                quiet_until = quiet_until or loop.time() + 0.5
                if loop.time() >= quiet_until:
                    break
    finally:
        await consumer.stop()
    return records
