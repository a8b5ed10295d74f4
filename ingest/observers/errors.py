"""Errors of the observer intake, all under the project's one root `TurnoutWatchError`."""

from __future__ import annotations

from turnout_watch.core.errors import TurnoutWatchError


class ObserverIntakeError(TurnoutWatchError):
    """Root of the observer intake's own errors."""


class RegistryError(ObserverIntakeError):
    """The station registry (or its database) cannot be read, written or imported into."""


class TokenError(ObserverIntakeError):
    """A token cannot be issued or revoked as asked (unknown station or region, unknown token id)."""


class SpoolError(ObserverIntakeError):
    """The local spool cannot be written or read: a report could not be made durable."""


class NotDurableError(ObserverIntakeError):
    """Neither the broker nor the spool took a record; the caller must not be told it was accepted."""
