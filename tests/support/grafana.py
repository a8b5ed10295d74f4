"""A tiny stand-in for Grafana's annotations HTTP API (Grafana's server cannot run here).

It answers `POST /api/annotations` as Grafana does (docs: "Annotations HTTP API", handler
`PostAnnotation`): a bearer token or 401 `{"message": "Unauthorized"}`; a JSON body whose `text` must
not be empty (400 `Text field should not be empty`), `time`/`timeEnd` epoch milliseconds, `tags` a list
of strings, optional `dashboardUID`/`panelId`; 200 `{"message": "Annotation added", "id": N}`. It records
what arrived. `delay` makes it slow (every request waits that long before the answer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web


@dataclass
class GrafanaStandIn:
    token: str
    delay: float = 0.0
    received: list[dict[str, Any]] = field(default_factory=list)
    arrived: int = 0  # requests that reached the handler (a slow stand-in answers them later, or never)
    unauthorized: int = 0
    url: str = ""

    async def post_annotation(self, request: web.Request) -> web.Response:
        self.arrived += 1
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            self.unauthorized += 1
            return web.json_response({"message": "Unauthorized", "statusCode": 401}, status=401)
        if self.delay:
            await asyncio.sleep(self.delay)
        try:
            body = await request.json()
        except ValueError:
            return web.json_response({"message": "bad request data"}, status=400)
        if not isinstance(body, dict) or not body.get("text"):
            return web.json_response({"message": "Text field should not be empty"}, status=400)
        tags = body.get("tags") or []
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            return web.json_response({"message": "bad request data"}, status=400)
        for key in ("time", "timeEnd"):
            if body.get(key) is not None and not isinstance(body[key], int):
                return web.json_response({"message": "bad request data"}, status=400)
        self.received.append(body)
        return web.json_response({"message": "Annotation added", "id": len(self.received)})

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/annotations", self.post_annotation)
        return app


@contextlib.asynccontextmanager
async def serve(standin: GrafanaStandIn) -> AsyncIterator[GrafanaStandIn]:
    runner = web.AppRunner(standin.app(), access_log=None, shutdown_timeout=0.1)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    standin.url = f"http://127.0.0.1:{port}"
    try:
        yield standin
    finally:
        await runner.cleanup()
