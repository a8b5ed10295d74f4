"""Nothing lost, nothing doubled: the broker stops mid-stream, the spool holds, drains in order.

Each test runs its own tansu broker so it can pause, kill and restart it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.support.intake import Intake, make_settings, read_topic, running_intake
from turnout_watch.services.broker import EmbeddedBroker, launch_broker

pytestmark = pytest.mark.integration

STATIONS = ("75-0001", "75-0002", "71-0001", "71-0002")
OPEN = datetime.fromisoformat("2022-11-20T07:00:00+06:00")


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[EmbeddedBroker]:
    running = launch_broker(log_path=tmp_path / "tansu.log")
    yield running
    if running.process.poll() is None:
        os.kill(running.process.pid, signal.SIGCONT)
    running.stop()


def nth_count(station: str, n: int) -> dict[str, Any]:
    """The station's n-th count of the day: a minute later and one voter more than the one before."""
    return {
        "station": station,
        "observed_at": (OPEN + timedelta(minutes=n)).isoformat(),
        "voted": n,
        "report_id": f"{station}-{n}",
    }


async def health(http: aiohttp.ClientSession, env: Intake) -> dict[str, Any]:
    async with http.get(f"{env.url}/healthz") as response:
        result: dict[str, Any] = await response.json()
        return result


async def wait_drained(http: aiohttp.ClientSession, env: Intake, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        state = await health(http, env)
        if state["spool_depth"] == 0 and state["broker"] == "up":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"spool not drained in {timeout} s: {await health(http, env)}")


async def post_one(http: aiohttp.ClientSession, env: Intake, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{env.url}/v1/counts", json=body, headers=env.auth("all")) as response:
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert answer["accepted"] + answer["duplicates"] == 1, answer
        item: dict[str, Any] = answer["items"][0]
        return item


def assert_exactly_once_in_order(records: list[dict[str, Any]], accepted: set[str]) -> None:
    ids = [r["report_id"] for r in records]
    assert len(ids) == len(set(ids)), "a report reached the topic twice"
    assert set(ids) == accepted, f"lost: {sorted(accepted - set(ids))[:5]}, extra: {sorted(set(ids) - accepted)[:5]}"
    by_station: dict[str, list[int]] = defaultdict(list)
    for r in records:  # one station = one key = one partition: its records must arrive in order
        by_station[r["_key"]].append(r["voted"])
    for station, voted in by_station.items():
        assert voted == sorted(voted), f"{station} out of order: {voted}"


async def test_broker_paused_mid_stream_spool_holds_and_drains_once(own_broker: EmbeddedBroker, tmp_path: Path) -> None:
    settings = make_settings(own_broker.bootstrap, tmp_path, observers_publish_timeout=1.0, observers_rate=1000.0)
    accepted: dict[str, str] = {}
    stop = asyncio.Event()

    async def poster(http: aiohttp.ClientSession, env: Intake, station: str) -> None:
        n = 0
        while not stop.is_set():
            n += 1
            item = await post_one(http, env, nth_count(station, n))
            accepted[item["report_id"]] = item["stored"]
            await asyncio.sleep(0.01)

    async with running_intake(settings) as env, aiohttp.ClientSession() as http:
        posters = [asyncio.create_task(poster(http, env, s)) for s in STATIONS]
        await asyncio.sleep(0.5)
        os.kill(own_broker.process.pid, signal.SIGSTOP)  # the broker stops answering, connections stay open
        await asyncio.sleep(3.0)
        assert (await health(http, env))["broker"] == "down"
        os.kill(own_broker.process.pid, signal.SIGCONT)
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*posters)
        await wait_drained(http, env)
        stored = list(accepted.values())
        assert stored.count("broker") > 10 and stored.count("spool") > 3, stored
        records = await read_topic(own_broker.bootstrap, env.topic, len(accepted))
        assert_exactly_once_in_order(records, set(accepted))
        # Every accepted report sent again: the same answers, nothing new on the topic.
        for report_id in list(accepted)[:20]:
            station, n = report_id.rsplit("-", 1)
            assert (await post_one(http, env, nth_count(station, int(n))))["stored"] == accepted[report_id]
        assert len(await read_topic(own_broker.bootstrap, env.topic, len(accepted))) == len(accepted)


async def test_broker_restarted_spool_survives_server_restart_and_drains(
    own_broker: EmbeddedBroker, tmp_path: Path
) -> None:
    settings = make_settings(own_broker.bootstrap, tmp_path, observers_publish_timeout=1.0, observers_rate=1000.0)
    port = own_broker.port
    async with running_intake(settings) as env, aiohttp.ClientSession() as http:
        tokens = env.tokens
        for n in range(1, 6):
            assert (await post_one(http, env, nth_count("75-0001", n)))["stored"] == "broker"
        own_broker.stop()  # tansu keeps everything in memory: these five are gone with it
        spooled = {}
        for n in range(6, 16):
            item = await post_one(http, env, nth_count("75-0001", n))
            spooled[item["report_id"]] = item
        assert {i["stored"] for i in spooled.values()} == {"spool"}
        assert await health(http, env) == {**await health(http, env), "broker": "down", "spool_depth": 10}
    # The server restarts while the broker is still down: the spool and the report_ids survive.
    async with running_intake(settings, tokens) as env, aiohttp.ClientSession() as http:
        assert (await health(http, env))["spool_depth"] == 10
        again = await post_one(http, env, nth_count("75-0001", 6))
        assert again == spooled["75-0001-6"]  # same answer after the restart
        restarted = launch_broker(port=port, log_path=tmp_path / "tansu2.log")
        try:
            await wait_drained(http, env)
            for n in range(16, 21):
                await post_one(http, env, nth_count("75-0001", n))
            records = await read_topic(restarted.bootstrap, env.topic, 15)
            assert_exactly_once_in_order(records, {f"75-0001-{n}" for n in range(6, 21)})
        finally:
            restarted.stop()
