"""What every command group shares: option types, the date format, and settings read with the root options."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click

from turnout_watch.core.settings import Settings, load_settings

#: Dates on the command line, as in the day files: an election day, not a moment.
DATE = click.DateTime(["%Y-%m-%d"])


class Speed(click.ParamType):
    """How much faster than real time to run a day: a positive number, or `max` (None: no waiting at all)."""

    name = "N|max"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float | None:
        if value is None or str(value).lower() == "max":
            return None
        try:
            speed = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'max'", param, ctx)
        if speed <= 0:
            self.fail("speed must be positive", param, ctx)
        return speed


@dataclass(frozen=True)
class RootOptions:
    """The root group's options that shape every command's settings (`ctx.obj`)."""

    config: Path | None = None
    broker: str | None = None


def settings_for(ctx: click.Context, **overrides: Any) -> Settings:
    """Settings for this command: its own flags (`overrides`, None = not given), then --broker, env, --config."""
    root = ctx.find_root().obj
    options = root if isinstance(root, RootOptions) else RootOptions()
    return load_settings(options.config, broker=options.broker, **overrides)
