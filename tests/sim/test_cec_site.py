"""The CEC site simulator over real HTTP: schedule, conditional GET, fault control, the commands' help."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import aiohttp
import pytest
from aiohttp import web

from ingest.clock import ManualClock
from tests.support.paths import DAY_2023
from turnout_watch.core.dayfile import load_day
from turnout_watch.services.broker import free_port
from turnout_watch.sim.cec_site import CecSimulator


async def test_pages_follow_the_clock_validators_and_faults() -> None:
    clock = ManualClock(datetime.fromisoformat("2023-03-19T10:09:00+06:00"))
    sim = CecSimulator(load_day(DAY_2023), clock)
    runner = web.AppRunner(sim.app(), access_log=None)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"{base}/rus/news/") as response:
                assert response.status == 200
                etag = response.headers["ETag"]
                assert "Явка" not in await response.text()  # 2023 releases came out at HH:10
            clock.set(datetime.fromisoformat("2023-03-19T10:10:00+06:00"))
            async with session.get(f"{base}/rus/news/", headers={"If-None-Match": etag}) as response:
                assert response.status == 200 and "Явка избирателей" in await response.text()
                etag = response.headers["ETag"]
            async with session.get(f"{base}/rus/news/", headers={"If-None-Match": etag}) as response:
                assert response.status == 304
            async with session.post(f"{base}/sim/faults", json={"kind": "5xx", "count": 2, "path": "/kaz/"}) as r:
                assert r.status == 200
            statuses = []
            for _ in range(3):
                async with session.get(f"{base}/kaz/news/") as response:
                    statuses.append(response.status)
            assert statuses == [503, 503, 200]
            async with session.post(f"{base}/sim/faults", json={"kind": "meteor"}) as response:
                assert response.status == 400 and "unknown fault" in (await response.json())["error"]
            async with session.get(f"{base}/sim/state") as response:
                state = await response.json()
            assert [p["as_of"][11:16] for p in state["published"]] == ["10:00"]
            async with session.get(f"{base}/eng/news/999/") as response:
                assert response.status == 404
    finally:
        await runner.cleanup()


@pytest.mark.parametrize("command", ["parse", "scrape", "cec-sim"])
def test_scraper_commands_explain_themselves(command: str) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "turnout_watch.cli", command, "--help"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and len(result.stdout.splitlines()) > 5
