"""The site's clock: real time on election day, scaled time against the simulator, manual in tests.

Polling intervals and "when is a release due" are defined in site time, so a day replayed 600x faster
by the simulator is polled 600x faster too, and a test can step time by hand without sleeping.
"""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta, tzinfo
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """The site's current time (aware)."""

    def wall(self, at: datetime) -> float:
        """Unix time (real seconds) at which the site's clock shows `at`: for lags in real seconds."""

    async def sleep(self, site_seconds: float) -> None:
        """Wait `site_seconds` of site time."""


class RealClock:
    def __init__(self, tz: tzinfo) -> None:
        self.tz = tz

    def now(self) -> datetime:
        return datetime.now(self.tz)

    def wall(self, at: datetime) -> float:
        return at.timestamp()

    async def sleep(self, site_seconds: float) -> None:
        await asyncio.sleep(max(0.0, site_seconds))


class ScaledClock:
    """Site time runs `speed` times faster than real time from `start` (shared by simulator and scraper).

    Waits are floored at `min_wall` real seconds, so a fast simulation cannot turn a 3 s poll
    interval into a busy loop.
    """

    def __init__(self, start: datetime, speed: float, *, wall_start: float | None = None, min_wall: float = 0.02):
        self.start, self.speed, self.min_wall = start, speed, min_wall
        self.wall_start = time.time() if wall_start is None else wall_start

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(time.time() - self.wall_start) * self.speed)

    def wall(self, at: datetime) -> float:
        return self.wall_start + (at - self.start).total_seconds() / self.speed

    async def sleep(self, site_seconds: float) -> None:
        await asyncio.sleep(max(self.min_wall, site_seconds / self.speed))


class ManualClock:
    """Time moves only when a test says so; sleeping just yields to the event loop."""

    def __init__(self, now: datetime) -> None:
        self._now = now

    def now(self) -> datetime:
        return self._now

    def set(self, now: datetime) -> None:
        self._now = now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def wall(self, at: datetime) -> float:
        return time.time() - (self._now - at).total_seconds()

    async def sleep(self, site_seconds: float) -> None:
        await asyncio.sleep(0)
