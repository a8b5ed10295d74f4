"""URL map of the intake (views live in views.py)."""

from __future__ import annotations

from aiohttp import web
from prometheus_client.aiohttp import make_aiohttp_handler

from ingest.observers import views
from ingest.observers.typedefs import REGISTRY


def setup_routes(app: web.Application) -> None:
    app.router.add_get("/", views.form, name="form")
    app.router.add_get("/healthz", views.health, name="health")
    app.router.add_get("/metrics", make_aiohttp_handler(app[REGISTRY]), name="metrics")
    app.router.add_get("/openapi.yaml", views.openapi_yaml, name="openapi_yaml")
    app.router.add_get("/openapi.json", views.openapi_json, name="openapi_json")
    app.router.add_post("/v1/counts", views.post_counts, name="counts")
    app.router.add_post("/v1/counts.csv", views.post_counts_csv, name="counts_csv")
    app.router.add_get("/v1/stations/{station}", views.get_station, name="station")
