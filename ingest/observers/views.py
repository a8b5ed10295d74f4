"""Thin views: parse the request, call the intake, map domain errors to HTTP answers.

Every error answer is JSON `{"error": {"code", "message"}}` (validation problems are per item inside
a normal answer), so a phone, a script and the form all read errors the same way.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Any

import yaml
from aiohttp import web

from ingest.observers.bodies import BodyError, read_csv, read_json
from ingest.observers.errors import NotDurableError
from ingest.observers.metrics import ROUTES
from ingest.observers.tokens import AuthError, TokenRecord
from ingest.observers.typedefs import AUTH_LIMITER, ELECTION, INTAKE, LIMITER, METRICS, PUBLISHER, SETTINGS

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status, headers=headers)


@web.middleware
async def errors_and_metrics(request: web.Request, handler: Handler) -> web.StreamResponse:
    started = time.monotonic()
    route = request.match_info.route.name if request.match_info.route else None
    label = route if route in ROUTES else "other"
    try:
        response = await handler(request)
    except web.HTTPRequestEntityTooLarge:
        limit = request.app[SETTINGS].observers_max_body
        response = error(413, "too_large", f"the request is larger than the {limit} bytes allowed; split it")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        response = error(exc.status, exc.reason.lower().replace(" ", "_"), exc.text or exc.reason)
        for name in ("Allow",):
            if name in exc.headers:
                response.headers[name] = exc.headers[name]
    except BodyError as exc:
        response = error(exc.status, exc.code, exc.message)
    except NotDurableError as exc:
        log.error("could not make a report durable: %s", exc)
        response = error(503, "not_stored", f"nothing was stored, send again shortly: {exc}", {"Retry-After": "5"})
    request.app[METRICS].request_done(label, response.status, time.monotonic() - started)
    return response


def middlewares() -> list[Any]:
    return [errors_and_metrics]


def _too_many(request: web.Request, wait: float, whose: str) -> web.Response:
    request.app[METRICS].rate_limited.inc()
    seconds = max(1, round(wait + 0.5))
    return error(429, "rate_limited", f"too many requests {whose}; retry in {seconds} s", {"Retry-After": str(seconds)})


def _authorise(request: web.Request) -> TokenRecord | web.Response:
    """The request's token, or the answer: 401, or 429 once its address (without a valid token) or
    its token (with one) has made too many requests."""
    try:
        token = request.app[INTAKE].authenticate(request.headers.get("Authorization"))
    except AuthError as exc:
        wait = request.app[AUTH_LIMITER].take(request.remote or "?")
        if wait > 0:
            return _too_many(request, wait, "without a valid token from your address")
        return error(401, "unauthorized", str(exc), {"WWW-Authenticate": 'Bearer realm="turnout-watch"'})
    wait = request.app[LIMITER].take(token.token_id)
    if wait > 0:
        return _too_many(request, wait, "for this token")
    return token


async def _submit(
    request: web.Request,
    token: TokenRecord,
    items: list[Any],
    lines: list[int] | None = None,
    *,
    registry_read: bool = False,
) -> web.Response:
    settings = request.app[SETTINGS]
    if not items:
        return error(400, "empty", "no counts in the request")
    if len(items) > settings.observers_max_batch:
        return error(413, "too_many", f"{len(items)} counts in one request; at most {settings.observers_max_batch}")
    if not registry_read:  # the body took its time: the token may have been revoked meanwhile
        try:
            token = request.app[INTAKE].authenticate(request.headers.get("Authorization"))
        except AuthError as exc:
            return error(401, "unauthorized", str(exc), {"WWW-Authenticate": 'Bearer realm="turnout-watch"'})
    # nothing awaits between that registry read (or the one before the body) and the counts' checks
    result = await request.app[INTAKE].submit(items, token, datetime.now(UTC), registry_read=True)
    body = result.to_dict()
    if lines is not None:
        for item in body["items"]:
            item["line"] = lines[item["index"]]
    return web.json_response(body, status=result.status)


async def post_counts(request: web.Request) -> web.Response:
    # A body that had all arrived before `_authorise` read the registry is read below without waiting,
    # and nothing else awaits before the intake checks its counts: the registry read is current for
    # them, and the intake need not ask SQLite again (it does when the body was still uploading).
    uploaded = request.content.is_eof()
    token = _authorise(request)
    if isinstance(token, web.Response):
        return token
    body = read_json(await request.read(), request.content_type, request.charset)
    items = body if isinstance(body, list) else [body]
    return await _submit(request, token, items, registry_read=uploaded)


async def post_counts_csv(request: web.Request) -> web.Response:
    token = _authorise(request)
    if isinstance(token, web.Response):
        return token
    items, lines = read_csv(await request.read(), request.content_type, request.charset)
    return await _submit(request, token, list(items), lines)


async def get_station(request: web.Request) -> web.Response:
    token = _authorise(request)
    if isinstance(token, web.Response):
        return token
    intake = request.app[INTAKE]
    station = intake.stations.get(request.match_info["station"])
    if station is None:
        return error(404, "unknown_station", f"there is no station {request.match_info['station']} in the registry")
    if not token.covers(station):
        return error(403, "forbidden", f"your token does not cover station {station.station}")
    return web.json_response(intake.station_view(station))


async def health(request: web.Request) -> web.Response:
    publisher = request.app[PUBLISHER]
    return web.json_response(
        {
            "status": "ok",
            "election": request.app[ELECTION].election,
            "broker": "up" if publisher.broker_up else "down",
            "spool_depth": len(publisher.spool),
        }
    )


@cache
def _openapi_text() -> str:
    return resources.files("ingest.observers").joinpath("openapi.yaml").read_text(encoding="utf-8")


async def openapi_yaml(request: web.Request) -> web.Response:
    return web.Response(text=_openapi_text(), content_type="application/yaml")


@cache
def _openapi_document() -> dict[str, Any]:
    return dict(yaml.safe_load(_openapi_text()))


async def openapi_json(request: web.Request) -> web.Response:
    return web.json_response(_openapi_document())


@cache
def _form_text() -> str:
    return resources.files("ingest.observers").joinpath("form.html").read_text(encoding="utf-8")


async def form(request: web.Request) -> web.Response:
    election = request.app[ELECTION]
    offset = election.opens.utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    config = {
        "election": election.election,
        "name": election.name,
        "date": election.date.isoformat(),
        "offset": f"{'+' if minutes >= 0 else '-'}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}",
        "polls_open": f"{election.polls_open:%H:%M}",
        "polls_close": f"{election.polls_close:%H:%M}",
    }
    page = _form_text().replace("/*CONFIG*/{}", json.dumps(config, ensure_ascii=False).replace("</", "<\\/"))
    return web.Response(text=page, content_type="text/html", headers={"Cache-Control": "no-store"})
