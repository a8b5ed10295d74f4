"""The poller polls fast around the next release a page announces, besides the source's own schedule."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry

from ingest.clock import ManualClock
from ingest.metrics import ScraperMetrics
from ingest.parse import parse_text
from ingest.poller import Scraper
from ingest.sources import Source, load_source
from tests.support.paths import DAY_2023
from turnout_watch.core.dayfile import load_day
from turnout_watch.services.broker import free_port
from turnout_watch.sim.cec_site import CecSimulator

DAY = load_day(DAY_2023)
AT = datetime.fromisoformat
COMMISSION_AT_10 = (
    "ЦИК сообщает, что согласно данным, представленным областными, городов республиканского значения, "
    "столицы избирательными комиссиями по состоянию на 10 часов времени столицы 19 марта 2023 года "
    "избирательные бюллетени получили 18,2% от общего количества избирателей, включенных в списки.\n"
    '"Информация о явке избирателей будет представлена в 13.30 ч"'
)


def scraper_for(source: Source, clock: ManualClock, events: list[dict[str, Any]]) -> Scraper:
    async def sink(event: dict[str, Any]) -> None:
        events.append(event)

    return Scraper(source, dict(DAY.election.raw), sink, ScraperMetrics(CollectorRegistry(), "cec-kz"), clock)


def test_an_announced_release_gets_fast_polling_like_a_scheduled_one() -> None:
    clock = ManualClock(AT("2023-03-19T13:29:30+06:00"))
    source = load_source("cec-kz")  # schedule: every two hours from 10:00; 13:30 is not on it
    polling = source.polling
    scraper = scraper_for(source, clock, [])
    assert scraper.next_interval() == polling.slow_interval  # 14:00's window opens in 29.5 minutes
    parsed = parse_text(COMMISSION_AT_10, on=date(2023, 3, 19))
    assert parsed.next_release == AT("2023-03-19T13:30:00+06:00")
    scraper.note_announcement(parsed)
    assert scraper.fast_windows() == sorted([*scraper.expected(), AT("2023-03-19T13:30:00+06:00")])
    assert scraper.next_interval() == polling.fast_interval
    clock.set(AT("2023-03-19T13:28:55+06:00"))
    assert scraper.next_interval() == 65 - polling.fast_before  # sleeps only until 13:30's window opens
    assert AT("2023-03-19T13:30:00+06:00") not in scraper.expected()  # the schedule alone says what is overdue
    # An announcement for another day is not this day's release.
    other = scraper_for(source, clock, [])
    other.note_announcement(parse_text(COMMISSION_AT_10, on=date(2023, 3, 20)))
    assert other.announced == set()


async def test_the_site_announcing_its_next_release_schedules_fast_polling() -> None:
    """Against the simulator over loopback HTTP, with no schedule at all: only the announcement counts."""
    clock = ManualClock(AT("2023-03-19T10:30:00+06:00"))
    runners = []
    try:
        polled = {}
        for seed in (1, 3):  # seed 1 writes the 10:00 release in the commission's template in Russian; 3 never
            sim = CecSimulator(DAY, clock, seed=seed)
            runner = web.AppRunner(sim.app(), access_log=None)
            await runner.setup()
            runners.append(runner)
            port = free_port()
            await web.TCPSite(runner, "127.0.0.1", port).start()
            source = load_source("cec-kz").with_overrides(f"http://127.0.0.1:{port}", schedule=())
            events: list[dict[str, Any]] = []
            scraper = scraper_for(source, clock, events)
            async with scraper:
                assert await scraper.poll_once() == 1
            polled[seed] = scraper
        announcing, silent = polled[1], polled[3]
        assert announcing.announced == {AT("2023-03-19T12:00:00+06:00")} and silent.announced == set()
        clock.set(AT("2023-03-19T11:59:30+06:00"))
        polling = announcing.source.polling
        assert announcing.next_interval() == polling.fast_interval
        assert silent.next_interval() == polling.slow_interval
    finally:
        for runner in runners:
            await runner.cleanup()
