"""`turnout-watch scrape`: poll a commission's site and publish each new turnout release exactly once.

One aiohttp session, bounded timeouts and response size, conditional GET, jittered exponential
backoff on errors, fast polling only around expected releases (the source's schedule, and the next
release a page announces: "будет представлена в 14.00"). A release is published when it is
complete (every region in force and the national figure) and its numbers are new for its as-of time;
the same numbers again (another language, a mirror, a re-publication) are a duplicate, changed
numbers are a revision (`"revision": n`). A page that is incomplete is retried and published as
partial, its missing regions listed, only after the source's grace period. Nothing a site returns
stops the loop: every failure is counted, logged and, for release pages, archived.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp

from ingest.archive import PUBLISHED, Archive, release_event
from ingest.clock import Clock
from ingest.metrics import ScraperMetrics
from ingest.pages import ReleasePage, discover_links, read_release_page
from ingest.parse import ParsedRelease
from ingest.sources import Source

log = logging.getLogger(__name__)

#: Publishes one `cec_release` event (day format); resolves once the broker acknowledged it.
Sink = Callable[[dict[str, Any]], Awaitable[None]]


@dataclass
class Fetched:
    url: str
    fetched_at: datetime
    status: int = 0
    body: bytes = b""
    charset: str | None = None
    not_modified: bool = False
    error: str | None = None  # a FETCH_ERRORS reason


class Fetcher:
    """GET with validators remembered per URL, a size cap and timeouts; never raises for the site's sake."""

    def __init__(self, session: aiohttp.ClientSession, source: Source, metrics: ScraperMetrics, clock: Clock) -> None:
        self.session, self.source, self.metrics, self.clock = session, source, metrics, clock
        self.validators: dict[str, dict[str, str]] = {}
        polling = source.polling
        self.timeout = aiohttp.ClientTimeout(total=polling.read_timeout, sock_connect=polling.connect_timeout)

    def forget(self, url: str) -> None:
        """Next GET of `url` is unconditional (its last body was not usable)."""
        self.validators.pop(url, None)

    async def get(self, url: str, page: str) -> Fetched:
        self.metrics.requests.labels(self.source.name, page).inc()
        result = Fetched(url, self.clock.now())
        limit = self.source.polling.max_bytes
        try:
            async with self.session.get(url, headers=self.validators.get(url, {}), timeout=self.timeout) as resp:
                result.status = resp.status
                if resp.status == 304:
                    result.not_modified = True
                    return result
                if resp.status >= 400:
                    result.error = "http_5xx" if resp.status >= 500 else "http_4xx"
                    return result
                if (resp.content_length or 0) > limit:
                    result.error = "too_large"
                    resp.close()
                    return result
                body = bytearray()
                async for chunk in resp.content.iter_chunked(1 << 16):
                    body += chunk
                    if len(body) > limit:
                        result.error = "too_large"
                        resp.close()
                        return result
                result.body, result.charset = bytes(body), resp.charset
                validators = {}
                if etag := resp.headers.get("ETag"):
                    validators["If-None-Match"] = etag
                if modified := resp.headers.get("Last-Modified"):
                    validators["If-Modified-Since"] = modified
                self.validators[url] = validators
        except TimeoutError:
            result.error = "timeout"
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            result.error = "connection"
            log.debug("GET %s: %r", url, exc)
        return result


@dataclass
class _Pending:
    """A release page seen on a list but not settled (not yet published, or not a usable release)."""

    lang: str
    first_incomplete: datetime | None = None
    incomplete: tuple[ReleasePage, Fetched, str] | None = None


@dataclass
class Scraper:
    source: Source
    header: dict[str, Any]  # the day file's election header for the election being scraped
    sink: Sink
    metrics: ScraperMetrics
    clock: Clock
    archive: Archive | None = None
    rng: random.Random = field(default_factory=random.Random)

    def __post_init__(self) -> None:
        self.election: str = self.header["election"]
        self.date = date.fromisoformat(self.header["date"])
        self.tz = ZoneInfo(self.source.timezone)
        self.versions: dict[datetime, list[dict[str, float]]] = {}
        self.announced: set[datetime] = set()  # next releases the pages announced
        self.pending: dict[str, _Pending] = {}
        self.done: dict[str, str] = {}  # url -> lang
        self.failures = 0
        self.published = 0
        self.session: aiohttp.ClientSession | None = None
        self.fetcher: Fetcher | None = None
        self.metrics.watch_overdue(self.overdue_seconds)
        if self.archive is not None:
            self._resume(self.archive.entries())

    def _resume(self, entries: list[dict[str, Any]]) -> None:
        """After a restart, what the archive says was published is not published again."""
        for entry in entries:
            if entry.get("outcome") in PUBLISHED and entry.get("figures"):
                as_of = datetime.fromisoformat(entry["as_of"])
                self.versions.setdefault(as_of, []).append(entry["figures"])
                self.done[entry["url"]] = entry.get("lang", "")

    async def __aenter__(self) -> Scraper:
        self.session = aiohttp.ClientSession(headers={"User-Agent": self.source.user_agent})
        self.fetcher = Fetcher(self.session, self.source, self.metrics, self.clock)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self.session is not None:
            await self.session.close()

    # --- cadence -----------------------------------------------------------------------------
    def expected(self) -> list[datetime]:
        """The source's schedule of releases that day (what `overdue_seconds` holds the site to)."""
        return [datetime.combine(self.date, t, tzinfo=self.tz) for t in self.source.polling.schedule]

    def fast_windows(self) -> list[datetime]:
        """Every release to poll fast around: the schedule and each next release a page announced."""
        return sorted({*self.expected(), *self.announced})

    def note_announcement(self, parsed: ParsedRelease) -> None:
        """Remember the next release a page announces (`next_release`), if it falls on the polled day:
        fast polling is scheduled around it as around the source's own schedule."""
        at = parsed.next_release
        if at is not None and at.astimezone(self.tz).date() == self.date and at not in self.announced:
            self.announced.add(at)
            log.info("the site announces its next release at %s", at.isoformat())

    def next_interval(self) -> float:
        """Site seconds to the next poll: fast while an expected release is not in, else slow."""
        polling, now = self.source.polling, self.clock.now()
        until_window = polling.slow_interval
        for as_of in self.fast_windows():
            if as_of in self.versions:
                continue
            start, end = as_of - timedelta(seconds=polling.fast_before), as_of + timedelta(seconds=polling.fast_for)
            if start <= now <= end:
                interval = polling.fast_interval
                break
            if now < start:
                until_window = min(until_window, (start - now).total_seconds())
        else:
            interval = until_window
        if self.failures:
            backoff = min(polling.backoff_max, polling.backoff_base * 2 ** (self.failures - 1))
            interval = max(interval, backoff * self.rng.uniform(0.5, 1.5))
        return interval

    def overdue_seconds(self) -> float:
        """How long the latest release that should be in by now has been due (0 if it is in)."""
        now, due_after = self.clock.now(), timedelta(seconds=self.source.polling.due_after)
        due = [as_of for as_of in self.expected() if as_of + due_after <= now]
        if not due or due[-1] in self.versions:
            return 0.0
        return (now - (due[-1] + due_after)).total_seconds()

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until `stop` is set. Nothing a response contains ends this loop."""
        while not stop.is_set():
            try:
                await self.poll_once()
            except Exception:  # a bug must not end election-day polling; it is logged with its traceback
                log.exception("poll cycle failed; polling continues")
                self.failures += 1
            sleeper = asyncio.ensure_future(self.clock.sleep(self.next_interval()))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, stopper):
                task.cancel()

    # --- one cycle ---------------------------------------------------------------------------
    async def poll_once(self) -> int:
        """Fetch every list page, then every new (or, after a list change, known) release page."""
        assert self.fetcher is not None, "use `async with Scraper(...)`"
        published_before, errors = self.published, 0
        recheck: dict[str, str] = {}
        for page in self.source.lists:
            url = self.source.url(page.url)
            got = await self.fetcher.get(url, "list")
            if got.error:
                errors += 1
                self._error(got)
                continue
            if got.not_modified:
                continue
            links = discover_links(got.body, page, url, got.charset)
            if not links.layout_ok:
                self.metrics.error("layout")
                log.warning("%s: link selector %r found nothing; fell back to all links", url, page.link_selector)
            for link in links.urls:
                if link in self.done:
                    recheck[link] = page.lang
                else:
                    self.pending.setdefault(link, _Pending(page.lang))
        todo = [(url, p.lang) for url, p in self.pending.items()] + list(recheck.items())
        for url, lang in todo:
            if not await self.check_release(url, lang):
                errors += 1
        self.failures = self.failures + 1 if errors else 0
        return self.published - published_before

    def _error(self, got: Fetched) -> None:
        self.metrics.error(got.error or "connection")
        log.warning("GET %s failed: %s%s", got.url, got.error, f" (HTTP {got.status})" if got.status else "")

    async def check_release(self, url: str, lang: str) -> bool:
        """Fetch and settle one release page; False when the request failed."""
        assert self.fetcher is not None
        got = await self.fetcher.get(url, "release")
        if got.error:
            self._error(got)
            return False
        pending = self.pending.get(url)
        if got.not_modified:
            if pending is not None and pending.incomplete is not None:
                page, fetched, sha = pending.incomplete
                outcome, revision = await self._settle(url, page, fetched, sha, lang)
                if outcome in PUBLISHED:  # the grace period ran out: record what was published
                    self._archive(fetched, lang, outcome, page, revision)
            return True
        sha = hashlib.sha256(got.body).hexdigest()
        try:
            page = read_release_page(got.body, self.source, self.date, got.charset)
        except Exception:  # a body that breaks the parser is a parse failure, not a crash
            log.exception("%s: parser failed on the page (archived as %s)", url, sha)
            self.metrics.parse_failure("no_regions")
            self._archive(got, lang, "failed:parser_error")
            return True
        if not page.layout_ok:
            self.metrics.error("layout")
            log.warning("%s: body selector %r found nothing; read the whole page", url, self.source.body_selector)
        outcome, revision = await self._settle(url, page, got, sha, lang)
        self._archive(got, lang, outcome, page, revision)
        return outcome != "failed:publish"

    async def _settle(self, url: str, page: ReleasePage, got: Fetched, sha: str, lang: str) -> tuple[str, int]:
        parsed, pending = page.parsed, self.pending.setdefault(url, _Pending(lang))
        self.note_announcement(parsed)
        if parsed.unknown_regions:
            self.metrics.parse_failure("unknown_region")
            log.warning("%s: unknown region names %s", url, parsed.unknown_regions)
        if parsed.unparsed:
            self.metrics.parse_failure("unparsed")
            log.warning("%s: figures not placed: %s", url, parsed.unparsed)
        if not parsed.figures():
            self.metrics.parse_failure("no_regions")
            log.warning("%s: no region figure found (archived as %s)", url, sha)
            return "failed:no_regions", 0
        if parsed.as_of is None:
            self.metrics.parse_failure("no_as_of")
            log.warning("%s: no 'as of' time found (archived as %s)", url, sha)
            return "failed:no_as_of", 0
        partial = bool(parsed.missing)
        if partial:
            now = self.clock.now()
            pending.first_incomplete = pending.first_incomplete or now
            pending.incomplete = (page, got, sha)
            waited = (now - pending.first_incomplete).total_seconds()
            if waited < self.source.incomplete_grace_seconds:
                self.metrics.parse_failure("incomplete")
                log.warning("%s: incomplete release, missing %s; not published yet", url, parsed.missing)
                self._forget(url)
                return "failed:incomplete", 0
        figures = parsed.figures()
        versions = self.versions.get(parsed.as_of, [])
        if figures in versions:
            self.metrics.outcome("duplicate")
            self._settled(url, lang)
            return "duplicate", 0
        revision = len(versions)
        published_at = page.published_at or got.fetched_at
        event = release_event(self.election, parsed, published_at, url=url, sha256=sha, revision=revision)
        try:
            await self.sink(event)
        except Exception as exc:  # broker down: keep the page pending, try again next cycle
            self.metrics.error("publish")
            log.warning("publishing %s as of %s failed: %r; will retry", url, parsed.as_of, exc)
            self._forget(url)
            return "failed:publish", revision
        self.metrics.lag.labels(self.source.name).observe(max(0.0, time.time() - self.clock.wall(published_at)))
        self.versions.setdefault(parsed.as_of, []).append(figures)
        self.metrics.last_as_of.labels(self.source.name).set(max(v.timestamp() for v in self.versions))
        self.published += 1
        outcome = "partial" if partial else "revision" if revision else "published"
        self.metrics.outcome(outcome)
        log.info("%s release as of %s (%d figures) from %s", outcome, parsed.as_of, len(figures), url)
        if not partial:
            self._settled(url, lang)
        return outcome, revision

    def _forget(self, url: str) -> None:
        if self.fetcher is not None:
            self.fetcher.forget(url)

    def _settled(self, url: str, lang: str) -> None:
        self.pending.pop(url, None)
        self.done[url] = lang

    def _archive(self, got: Fetched, lang: str, outcome: str, page: ReleasePage | None = None, rev: int = 0) -> None:
        if self.archive is None:
            return
        entry: dict[str, Any] = {
            "fetched_at": got.fetched_at.isoformat(),
            "url": got.url,
            "status": got.status,
            "lang": lang,
            "outcome": outcome,
        }
        if page is not None and page.parsed.as_of is not None:
            entry["as_of"] = page.parsed.as_of.isoformat()
            if outcome in PUBLISHED:
                entry["figures"] = page.parsed.figures()
                entry["revision"] = rev
        self.archive.store(got.body, **entry)
