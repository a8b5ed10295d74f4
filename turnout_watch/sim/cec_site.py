"""A local stand-in for the CEC site: a recorded day's releases, published on schedule, with faults.

Serves a news list and one page per release in Russian, Kazakh and English (the paths and layout of
`ingest/sources/cec-kz.toml`), each release written in a style drawn per release and language
(`turnout_watch/sim/render.py`). Tests and the demo point the scraper here; faults are injected over HTTP
(`POST /sim/faults`) so a test can break the site exactly when it wants:

| kind        | effect on the next `count` matching requests                            |
|-------------|--------------------------------------------------------------------------|
| `5xx`       | 503 Service Unavailable                                                   |
| `timeout`   | headers and part of the body, then silence (read timeout)                |
| `hang`      | the connection is accepted and nothing is ever sent                      |
| `truncated` | a complete response whose HTML stops half-way (no validators)            |
| `layout`    | the page in a changed layout (other classes and elements)                |
| `huge`      | an endless body (tens of MB)                                              |
| `duplicate` | (action) the latest release is published again as a new news item       |
| `correction`| (action) the latest release's first region figure changes by `delta`     |
"""

from __future__ import annotations

import asyncio
import hashlib
import html
import random
from dataclasses import dataclass, field
from datetime import datetime
from email.utils import format_datetime
from typing import Any

from aiohttp import web

from ingest.clock import Clock
from turnout_watch.core.dayfile import DayFile
from turnout_watch.core.gazetteer import default_gazetteer
from turnout_watch.core.normalize import normalize_release
from turnout_watch.sim.render import Lang, Style, render_release

UPDATED = {"ru": "обновлено", "kk": "жаңартылды", "en": "updated"}
SITE_LANG: dict[str, Lang] = {"rus": "ru", "kaz": "kk", "eng": "en"}
FAULTS = ("5xx", "timeout", "hang", "truncated", "layout", "huge", "duplicate", "correction")
OTHER_NEWS = {
    "ru": ("Заседание Центральной избирательной комиссии", "Аккредитация иностранных наблюдателей"),
    "kk": ("Орталық сайлау комиссиясының отырысы", "Шетелдік байқаушыларды аккредиттеу"),
    "en": ("Meeting of the Central Election Commission", "Accreditation of foreign observers"),
}


@dataclass
class Item:
    """One news item: a turnout release (with figures by code) or other news."""

    id: int
    published_at: datetime
    as_of: datetime | None = None
    figures: dict[str, float] = field(default_factory=dict)
    other: int | None = None  # index into OTHER_NEWS
    modified: float = 0.0  # wall time of the last change, for Last-Modified


@dataclass
class Fault:
    kind: str
    count: int
    path: str = ""  # only requests whose path starts with this


class CecSimulator:
    """The site's state; `app()` serves it. Items appear when the clock passes their publication."""

    def __init__(self, day: DayFile, clock: Clock, *, seed: int = 0, hold_seconds: float = 60.0) -> None:
        self.day, self.clock, self.seed, self.hold = day, clock, seed, hold_seconds
        self.gazetteer = default_gazetteer()
        self.faults: list[Fault] = []
        self.requests = 0
        start = min((e.published_at for e in day.releases()), default=clock.now())
        self.items = [Item(n + 1, start.replace(hour=0, minute=n + 1), other=n) for n in range(len(OTHER_NEWS["ru"]))]
        for release in sorted(day.releases(), key=lambda r: r.published_at):
            normalized = normalize_release(release, day.election.date, self.gazetteer)
            if normalized.release is not None:
                figures = dict(normalized.release.turnout)
                self.items.append(Item(len(self.items) + 1, release.published_at, release.as_of, figures))

    # --- state -------------------------------------------------------------------------------
    def visible(self) -> list[Item]:
        now = self.clock.now()
        return [item for item in self.items if item.published_at <= now]

    def style(self, item: Item, lang: Lang) -> Style:
        return Style.pick(random.Random(f"{self.seed}-{item.id}-{lang}"))

    def inject(self, kind: str, count: int = 1, path: str = "", delta: float = 1.0) -> dict[str, Any]:
        if kind not in FAULTS:
            raise ValueError(f"unknown fault {kind!r}; known: {', '.join(FAULTS)}")
        releases = [i for i in self.visible() if i.as_of is not None]
        if kind in ("duplicate", "correction"):
            if not releases:
                raise ValueError(f"{kind}: no release published yet")
            latest = releases[-1]
            if kind == "duplicate":
                copy = Item(len(self.items) + 1, self.clock.now(), latest.as_of, dict(latest.figures))
                self.items.append(copy)
                return {"id": copy.id}
            code = sorted(c for c in latest.figures if c != "KZ")[0]
            latest.figures[code] = round(latest.figures[code] + delta, 2)
            latest.modified = self.clock.wall(self.clock.now())
            return {"id": latest.id, "region": code, "value": latest.figures[code]}
        self.faults.append(Fault(kind, count, path))
        return {"queued": kind, "count": count}

    def take_fault(self, path: str) -> str | None:
        for fault in self.faults:
            if path.startswith(fault.path) and fault.count > 0:
                fault.count -= 1
                if fault.count == 0:
                    self.faults.remove(fault)
                return fault.kind
        return None

    # --- pages -------------------------------------------------------------------------------
    def list_page(self, site: str, layout: bool) -> str:
        lang = SITE_LANG[site]
        entries = []
        for item in reversed(self.visible()):
            title = OTHER_NEWS[lang][item.other] if item.other is not None else self._rendered(item, lang).title
            href = f"/{site}/news/{item.id}/"
            stamp = f'<time datetime="{item.published_at.isoformat()}">{item.published_at:%d.%m.%Y %H:%M}</time>'
            if item.modified:
                stamp += f' <span class="updated">({UPDATED[lang]})</span>'
            if layout:
                entries.append(f'<div class="entry"><h3><a href="{href}">{html.escape(title)}</a></h3>{stamp}</div>')
            else:
                entries.append(f'<li><a href="{href}">{html.escape(title)}</a> {stamp}</li>')
        joined = "".join(entries)
        body = f'<div class="feed">{joined}</div>' if layout else f'<ul class="news-list">{joined}</ul>'
        return self._page(lang, "ЦИК РК", body)

    def release_page(self, site: str, item: Item, layout: bool) -> str:
        lang = SITE_LANG[site]
        if item.other is not None:
            title = OTHER_NEWS[lang][item.other]
            article = f'<article><h1>{title}</h1><div class="article-body"><p>…</p></div></article>'
            return self._page(lang, title, article)
        rendered = self._rendered(item, lang)
        stamp = f'<time datetime="{item.published_at.isoformat()}">{item.published_at:%d.%m.%Y %H:%M}</time>'
        title, body = html.escape(rendered.title), rendered.body_html
        if layout:
            article = f'<main><h2>{title}</h2>{stamp}<section class="content">{body}</section></main>'
        else:
            body = f'<div class="article-body">{body}</div>'
            article = f'<article class="news-item"><h1>{title}</h1>{stamp}{body}</article>'
        return self._page(lang, rendered.title, article)

    def _rendered(self, item: Item, lang: Lang) -> Any:
        assert item.as_of is not None
        local = item.as_of.astimezone(self.day.election.tz)
        # The commission's template announces its next release: the next one of the day, if any.
        later = [i.as_of for i in self.items if i.as_of is not None and i.as_of > item.as_of]
        next_at = min(later).astimezone(self.day.election.tz).time() if later else None
        style = self.style(item, lang)
        return render_release(item.figures, local.time(), lang, style, on=local.date(), next_at=next_at)

    def _page(self, lang: str, title: str, main: str) -> str:
        nav = " | ".join(f'<a href="/{s}/news/">{s.upper()}</a>' for s in SITE_LANG)
        return (
            f'<!doctype html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
            f"<body><nav>{nav}</nav>{main}<footer>© ЦИК РК</footer></body></html>"
        )

    # --- HTTP --------------------------------------------------------------------------------
    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_get("/{site}/news/", self._list)
        app.router.add_get("/{site}/news/{id}/", self._release)
        app.router.add_post("/sim/faults", self._faults)
        app.router.add_get("/sim/state", self._state)
        return app

    async def _list(self, request: web.Request) -> web.StreamResponse:
        site = request.match_info["site"]
        if site not in SITE_LANG:
            raise web.HTTPNotFound()
        return await self._serve(request, lambda layout: self.list_page(site, layout), self.visible())

    async def _release(self, request: web.Request) -> web.StreamResponse:
        site, ident = request.match_info["site"], request.match_info["id"]
        item = next((i for i in self.visible() if str(i.id) == ident), None)
        if site not in SITE_LANG or item is None:
            raise web.HTTPNotFound()
        return await self._serve(request, lambda layout: self.release_page(site, item, layout), [item])

    async def _serve(self, request: web.Request, page: Any, items: list[Item]) -> web.StreamResponse:
        self.requests += 1
        fault = self.take_fault(request.path)
        if fault == "5xx":
            return web.Response(status=503, text="Service Unavailable")
        if fault == "hang":
            await asyncio.sleep(self.hold)
            raise web.HTTPServiceUnavailable()
        body = page(fault == "layout").encode()
        if fault in ("timeout", "huge"):
            response = web.StreamResponse(headers={"Content-Type": "text/html; charset=utf-8"})
            await response.prepare(request)
            await response.write(body[:200])
            if fault == "timeout":
                await asyncio.sleep(self.hold)
            else:
                padding = b"<!--" + b"x" * 65_536 + b"-->"
                try:
                    for _ in range(1000):  # ~64 MB unless the client hangs up first
                        await response.write(padding)
                except ConnectionError:
                    pass
            return response
        if fault == "truncated":
            return web.Response(body=body[: len(body) // 2], content_type="text/html", charset="utf-8")
        etag = '"' + hashlib.sha256(body).hexdigest()[:32] + '"'
        modified = max((i.modified or self.clock.wall(i.published_at) for i in items), default=0.0)
        headers = {"ETag": etag, "Last-Modified": format_datetime(datetime.fromtimestamp(modified).astimezone(), True)}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=body, content_type="text/html", charset="utf-8", headers=headers)

    async def _faults(self, request: web.Request) -> web.Response:
        try:
            spec = await request.json()
            result = self.inject(
                str(spec["kind"]), int(spec.get("count", 1)), str(spec.get("path", "")), float(spec.get("delta", 1.0))
            )
        except (ValueError, KeyError, TypeError) as exc:
            return web.json_response({"error": str(exc)}, status=400)
        return web.json_response(result)

    async def _state(self, request: web.Request) -> web.Response:
        return web.json_response(
            {
                "now": self.clock.now().isoformat(),
                "published": [
                    {"id": i.id, "as_of": i.as_of.isoformat(), "published_at": i.published_at.isoformat()}
                    for i in self.visible()
                    if i.as_of is not None
                ],
                "faults": [f.__dict__ for f in self.faults],
                "requests": self.requests,
            }
        )
