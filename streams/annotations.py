"""Grafana annotations for each CEC release and each critical flag, posted without ever blocking the agent.

The watch room reads the turnout panels against marks of what happened when: a vertical line at each
release (from its "as of" hour to its publication), one at each critical flag with the detector's
explanation. The agent only calls `Annotator.release()`, which queues and returns at once; a background
task posts through `grafana-client` with a timeout. When Grafana is slow or down the bounded queue fills
and further annotations are dropped and counted (`turnout_watch_annotations_total{outcome="dropped"}`):
an annotation is a convenience for the screen, the flag itself is already on the flags topic and in the
metrics, so the pipeline never waits for Grafana.

Tags let a panel filter its annotations (Grafana's "filter by tags"): `election:ID`, `region:CODE`,
`detector:NAME`, `severity:LEVEL`, and `turnout-watch` plus `cec-release` or `flag`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from zoneinfo import ZoneInfo

from grafana_client.api import AsyncGrafanaApi
from prometheus_client import Counter

from turnout_watch.core.gazetteer import NATIONAL
from turnout_watch.core.records import Flag, Release

log = logging.getLogger(__name__)

DEFAULT_QUEUE_SIZE = 1000


@dataclass(frozen=True)
class Annotation:
    """One Grafana annotation: times in epoch milliseconds (Grafana's unit), tags, text."""

    time_ms: int
    time_end_ms: int | None
    tags: tuple[str, ...]
    text: str


def release_annotation(release: Release) -> Annotation:
    national = release.turnout.get(NATIONAL)
    figure = f"; national turnout {national:.2f}%" if national is not None else ""
    revision = f" (revision {release.revision})" if release.revision else ""
    local = release.as_of.astimezone(_zone(release.timezone))
    return Annotation(
        time_ms=int(release.as_of.timestamp() * 1000),
        time_end_ms=int(release.published_at.timestamp() * 1000),
        tags=("turnout-watch", "cec-release", f"election:{release.election}", f"region:{NATIONAL}"),
        text=f"CEC release as of {local:%H:%M}{revision}: {len(release.turnout)} figures{figure}",
    )


def flag_annotation(flag: Flag) -> Annotation:
    return Annotation(
        time_ms=int(datetime.fromisoformat(flag.as_of).timestamp() * 1000),
        time_end_ms=None,
        tags=(
            "turnout-watch",
            "flag",
            f"election:{flag.election}",
            f"region:{flag.region_code}",
            f"detector:{flag.detector}",
            f"severity:{flag.severity}",
        ),
        text=f"{flag.severity.upper()} {flag.region} ({flag.region_code}) {flag.detector}: {flag.message}",
    )


def _zone(name: str | None) -> tzinfo:
    return ZoneInfo(name) if name else UTC


class Annotator:
    """A bounded queue in front of Grafana's `POST /api/annotations`, drained by one background task.

    `release()` and `submit()` never wait: they are called from the agent's batch loop. Each post is
    bounded by `timeout` (the client's own and an asyncio one around it), so a hung Grafana holds one
    queued item at a time, never the pipeline.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        counter: Counter,
        *,
        queue_size: int = DEFAULT_QUEUE_SIZE,
        timeout: float = 5.0,
        dashboard_uid: str | None = None,
    ) -> None:
        self.url, self.timeout, self.dashboard_uid = url, timeout, dashboard_uid
        self._token = token
        self._counter = counter
        self.queue: asyncio.Queue[Annotation] = asyncio.Queue(maxsize=queue_size)
        self._api: AsyncGrafanaApi | None = None
        self._task: asyncio.Task[None] | None = None

    def release(self, release: Release, flags: Sequence[Flag]) -> None:
        """Annotate a release and its critical flags (warnings stay on the flags panel, not the timeline)."""
        self.submit(release_annotation(release))
        for flag in flags:
            if flag.severity == "critical":
                self.submit(flag_annotation(flag))

    def submit(self, annotation: Annotation) -> bool:
        try:
            self.queue.put_nowait(annotation)
        except asyncio.QueueFull:
            self._counter.labels("dropped").inc()
            return False
        return True

    async def start(self) -> None:
        self._api = AsyncGrafanaApi.from_url(self.url, credential=self._token, timeout=self.timeout)
        self._task = asyncio.create_task(self._run(), name="grafana-annotations")

    async def stop(self, drain: float = 0.0) -> None:
        """Stop posting; with `drain` > 0, first give the queue that many seconds to empty."""
        if drain > 0 and self._task is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.queue.join(), drain)
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        if self._api is not None:
            # AsyncGrafanaClient swaps in a niquests.AsyncSession, typed as the sync Session it replaced
            await self._api.client.s.close()  # type: ignore[func-returns-value, misc]
            self._api = None

    async def _run(self) -> None:
        assert self._api is not None
        while True:
            annotation = await self.queue.get()
            try:
                await asyncio.wait_for(self._post(annotation), self.timeout)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # any failure of Grafana or the network: count it, keep going
                self._counter.labels("failed").inc()
                log.warning("grafana annotation not posted to %s: %s", self.url, exc or type(exc).__name__)
            else:
                self._counter.labels("posted").inc()
            finally:
                self.queue.task_done()

    async def _post(self, annotation: Annotation) -> None:
        assert self._api is not None
        await self._api.annotations.add_annotation(  # type: ignore[no-untyped-call]  # grafana-client is untyped
            dashboard_uid=self.dashboard_uid,
            time_from=annotation.time_ms,
            time_to=annotation.time_end_ms,
            tags=list(annotation.tags),
            text=annotation.text,
        )
