"""`turnout-watch`: one command for every job. Run `turnout-watch COMMAND --help` for each.

The root group lives here; each command group lives in its own module and calls a service below it:
`day` (replay, detect, evaluate, import-csv, parse, regions), `pipeline` (worker, broker, restore), `cec` (scrape,
cec-sim), `observers` (stations, tokens, observers, observers-sim), `dashboards`, `up` (up, status). Option types
and the settings every command reads are in `params`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from turnout_watch.cli import cec, dashboards, day, observers, pipeline, up
from turnout_watch.cli.params import RootOptions
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.logs import setup_logging

__all__ = ["cli", "main"]


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    envvar="TURNOUT_WATCH_CONFIG",
    help="TOML settings file (same names as the TURNOUT_WATCH_* variables, lower case).",
)
@click.option(
    "--broker",
    metavar="HOST:PORT[,...]",
    help="External Kafka bootstrap servers (env KAFKA_BOOTSTRAP_SERVERS). Default: start the embedded tansu broker.",
)
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
@click.version_option(package_name="turnout-watch")
@click.pass_context
def cli(ctx: click.Context, config: Path | None, broker: str | None, verbose: int) -> None:
    """Real-time turnout monitor for domestic election observers.

    Replays or watches an election day: CEC releases and observers' counts go into Kafka, Faust
    agents run the detectors, flags come out on the `flags` topic and as Prometheus metrics.
    """
    setup_logging(verbose)
    ctx.obj = RootOptions(config=config, broker=broker)


for command in (
    day.replay,
    day.detect,
    day.evaluate,
    dashboards.dashboards,
    pipeline.worker,
    pipeline.broker,
    pipeline.restore,
    day.regions,
    day.import_csv,
    day.parse,
    cec.cec_sim,
    cec.scrape,
    observers.stations,
    observers.tokens,
    observers.observers,
    observers.observers_sim,
    up.up,
    up.status,
):
    cli.add_command(command)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except TurnoutWatchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
