"""Observer counts intake: station registry, tokens, validation, durable publish, HTTP API, form."""

from ingest.observers.app import create_app
from ingest.observers.errors import (
    NotDurableError,
    ObserverIntakeError,
    RegistryError,
    SpoolError,
    TokenError,
)

__all__ = ["NotDurableError", "ObserverIntakeError", "RegistryError", "SpoolError", "TokenError", "create_app"]
