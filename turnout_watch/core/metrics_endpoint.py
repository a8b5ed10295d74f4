"""`/metrics` and `/healthz` over aiohttp for a registry: the one endpoint every long-running service serves."""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry
from prometheus_client.aiohttp import make_aiohttp_handler


def metrics_app(registry: CollectorRegistry) -> web.Application:
    """An aiohttp app serving `/metrics` (and `/healthz` for liveness probes)."""
    app = web.Application()
    app.router.add_get("/metrics", make_aiohttp_handler(registry))

    async def healthz(request: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    app.router.add_get("/healthz", healthz)
    return app
