"""The typed `web.AppKey`s of the intake's application (aiohttp-demos `polls/typedefs.py`).

A leaf module: `app.py` stores the resources under these keys and `views.py` reads them, so neither
imports the other and `routes.py` (which imports views, and is imported by app) closes no cycle.
"""

from __future__ import annotations

from aiohttp import web
from prometheus_client import CollectorRegistry

from ingest.observers.intake import Intake
from ingest.observers.metrics import IntakeMetrics
from ingest.observers.publisher import DurablePublisher
from ingest.observers.ratelimit import RateLimiter
from turnout_watch.core.dayfile import Election
from turnout_watch.core.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
ELECTION = web.AppKey("election", Election)
REGISTRY = web.AppKey("registry", CollectorRegistry)
METRICS = web.AppKey("metrics", IntakeMetrics)
INTAKE = web.AppKey("intake", Intake)
PUBLISHER = web.AppKey("publisher", DurablePublisher)
LIMITER = web.AppKey("limiter", RateLimiter)
AUTH_LIMITER = web.AppKey("auth_limiter", RateLimiter)  # per client address, for requests without a valid token

__all__ = ["AUTH_LIMITER", "ELECTION", "INTAKE", "LIMITER", "METRICS", "PUBLISHER", "REGISTRY", "SETTINGS"]
