"""One root exception, so callers (CLI, HTTP views, agents) can map every domain error to a clear message."""


class TurnoutWatchError(Exception):
    """Root of every error turnout-watch raises on purpose."""


class ConfigError(TurnoutWatchError):
    """Settings or a config file are invalid."""


class UnknownRegionError(TurnoutWatchError, LookupError):
    """A region name no gazetteer entry knows; carries the closest known spellings."""

    def __init__(self, name: str, suggestions: list[str], on: object = None) -> None:
        self.name = name
        self.suggestions = suggestions
        self.on = on
        hint = f"; closest known spellings: {', '.join(repr(s) for s in suggestions)}" if suggestions else ""
        when = f" (on {on})" if on is not None else ""
        super().__init__(f"unknown region {name!r}{when}{hint}")


class RegionNotInForceError(TurnoutWatchError, LookupError):
    """A known region that did not exist on the date asked (e.g. Turkistan Region before 2018-06-19)."""


class DayFileError(TurnoutWatchError, ValueError):
    """A day file (or flags file) breaks the contract in shared/spec/day-format.md."""


class BrokerError(TurnoutWatchError):
    """The Kafka-compatible broker could not be started, reached or used."""


class RecordError(TurnoutWatchError, ValueError):
    """A topic record (or a spooled one) that breaks its contract: not JSON, or a field missing or mistyped."""
