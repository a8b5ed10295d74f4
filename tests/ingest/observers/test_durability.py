"""Nothing lost, nothing doubled: the broker stops mid-stream, the spool holds, drains in order.

Each test runs its own tansu broker so it can pause, kill and restart it.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest

from tests.support.intake import Intake, make_settings, prepare_registry, read_topic, running_intake
from tests.support.paths import DAY_2022
from turnout_watch.core.settings import Settings
from turnout_watch.core.topics import TopicNames
from turnout_watch.services.broker import EmbeddedBroker, free_port, launch_broker

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


class Served(Protocol):
    """An intake listening on `url` (in this process, or a `turnout-watch observers serve` child)."""

    url: str

    def auth(self, name: str) -> dict[str, str]: ...


def nth_count(station: str, n: int) -> dict[str, Any]:
    """The station's n-th count of the day: a minute later and one voter more than the one before."""
    return {
        "station": station,
        "observed_at": (OPEN + timedelta(minutes=n)).isoformat(),
        "voted": n,
        "report_id": f"{station}-{n}",
    }


async def health(http: aiohttp.ClientSession, env: Served) -> dict[str, Any]:
    async with http.get(f"{env.url}/healthz") as response:
        result: dict[str, Any] = await response.json()
        return result


async def wait_drained(http: aiohttp.ClientSession, env: Served, timeout: float = 30) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while asyncio.get_running_loop().time() < deadline:
        state = await health(http, env)
        if state["spool_depth"] == 0 and state["broker"] == "up":
            return
        await asyncio.sleep(0.2)
    raise AssertionError(f"spool not drained in {timeout} s: {await health(http, env)}")


async def post_one(http: aiohttp.ClientSession, env: Served, body: dict[str, Any]) -> dict[str, Any]:
    async with http.post(f"{env.url}/v1/counts", json=body, headers=env.auth("all")) as response:
        assert response.status == 200, await response.text()
        answer = await response.json()
        assert answer["accepted"] + answer["duplicates"] == 1, answer
        item: dict[str, Any] = answer["items"][0]
        return item


def client_id(record: dict[str, Any]) -> str:
    """The report_id the client chose (the topic's is scoped to the token: `<token_id>:<report_id>`)."""
    token_id, _, report_id = str(record["report_id"]).partition(":")
    assert token_id == record["token_id"], record
    return report_id


def assert_exactly_once_in_order(records: list[dict[str, Any]], accepted: set[str]) -> None:
    ids = [client_id(r) for r in records]
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


class Server:
    """`turnout-watch observers serve` as a real process on the test's data dir, to be SIGKILLed."""

    def __init__(self, settings: Settings, tokens: dict[str, str], log_path: Path) -> None:
        self.settings, self.tokens, self.log_path = settings, tokens, log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen[bytes] | None = None

    def auth(self, name: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[name]}"}

    async def start(self) -> None:
        env = {**os.environ, "TURNOUT_WATCH_TOPIC_PREFIX": self.settings.topic_prefix,
               "TURNOUT_WATCH_DATA_DIR": str(self.settings.data_dir), "TURNOUT_WATCH_OBSERVERS_RATE": "100000",
               "TURNOUT_WATCH_OBSERVERS_BURST": "100000", "TURNOUT_WATCH_OBSERVERS_PUBLISH_TIMEOUT": "1.0"}  # fmt: skip
        cmd = [sys.executable, "-m", "turnout_watch.cli", "--broker", self.settings.broker or "", "observers", "serve",
               "--day", str(DAY_2022), "--port", str(self.port)]  # fmt: skip
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT)
        deadline = asyncio.get_running_loop().time() + 30
        async with aiohttp.ClientSession() as http:
            while True:
                try:
                    async with http.get(f"{self.url}/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                assert self.process.poll() is None, self.log_path.read_text()
                assert asyncio.get_running_loop().time() < deadline, "server did not start"
                await asyncio.sleep(0.2)

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)


async def post_until_killed(http: aiohttp.ClientSession, server: Server, station: str, sent: list[str]) -> None:
    n = 0
    while True:
        n += 1
        sent.append(f"{station}-{n}")
        try:
            async with http.post(
                f"{server.url}/v1/counts", json=nth_count(station, n), headers=server.auth("all")
            ) as r:
                assert r.status == 200, await r.text()
        except aiohttp.ClientError:
            return


async def resend_all(http: aiohttp.ClientSession, server: Server, sent: list[str]) -> None:
    """Every count ever sent, again, as phones that never heard back (or did) would: each is taken once."""
    for report_id in sorted(sent, key=lambda rid: (rid.rsplit("-", 1)[0], int(rid.rsplit("-", 1)[1]))):
        station, n = report_id.rsplit("-", 1)
        item = await post_one(http, server, nth_count(station, int(n)))
        assert item["status"] == "accepted", item


@pytest.mark.parametrize("pause_broker", [False, True], ids=["broker-up", "broker-paused"])
async def test_intake_sigkilled_mid_stream_leaves_no_duplicate(
    own_broker: EmbeddedBroker, tmp_path: Path, pause_broker: bool
) -> None:
    """Issue 13: a crash between the broker's ack and the SQLite commit, and uncertain sends re-sent
    blindly after a restart while the paused broker also writes the original, doubled counts. The
    intake is SIGKILLed mid-stream (with the broker answering, or paused so sends hang in limbo),
    started again, and every count is sent again: each is on the topic exactly once, in order."""
    settings = make_settings(own_broker.bootstrap, tmp_path)
    server = Server(settings, prepare_registry(settings), tmp_path / "serve.log")
    sent: list[str] = []
    try:
        await server.start()
        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as http:
            posters = [asyncio.create_task(post_until_killed(http, server, s, sent)) for s in STATIONS]
            await asyncio.sleep(1.5)
            if pause_broker:
                os.kill(own_broker.process.pid, signal.SIGSTOP)
                await asyncio.sleep(0.5)
            server.kill()
            await asyncio.gather(*posters)
        await server.start()  # the broker may still be paused: the spool takes over
        if pause_broker:
            await asyncio.sleep(0.5)
            os.kill(own_broker.process.pid, signal.SIGCONT)
        async with aiohttp.ClientSession() as http:
            await resend_all(http, server, sent)
            await wait_drained(http, server, 60)
        records = await read_topic(own_broker.bootstrap, TopicNames.from_settings(settings).observer_counts, len(sent))
        assert len(sent) > 40
        assert_exactly_once_in_order(records, set(sent))
        log = server.log_path.read_text()
        assert "were being published when the intake stopped" in log, log  # the crash window was hit
        assert "uncertain sends had landed" in log, log  # and checked against the topic
    finally:
        server.stop()
