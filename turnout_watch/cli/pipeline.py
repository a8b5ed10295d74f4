"""The long-running pieces of a deployment: a Faust worker, and the embedded broker."""

from __future__ import annotations

import asyncio
import signal
import sys
from pathlib import Path

import click

from turnout_watch.cli.params import settings_for
from turnout_watch.core.errors import TurnoutWatchError


@click.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run one Faust worker (agents + /metrics) against the configured broker.

    Needs --broker / KAFKA_BOOTSTRAP_SERVERS (start one with `turnout-watch broker`). Run several on
    the same broker to share the partitions.
    """
    from streams.worker import run_worker
    from turnout_watch.core.topics import ensure_topics

    settings = settings_for(ctx)
    if not settings.broker:
        raise click.UsageError("a worker needs a broker: --broker HOST:PORT or KAFKA_BOOTSTRAP_SERVERS")
    asyncio.run(ensure_topics(settings.broker, settings))
    run_worker(settings, settings.broker)


@click.command()
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=9092,
    show_default=True,
    help="Loopback port to listen on (0: any free port).",
)
@click.pass_context
def broker(ctx: click.Context, port: int) -> None:
    """Run the embedded Kafka-compatible broker (tansu, in memory) until Ctrl-C, with our topics created."""
    from turnout_watch.core.topics import ensure_topics
    from turnout_watch.services.broker import launch_broker

    settings = settings_for(ctx)
    running = launch_broker(port=port or None)
    try:
        asyncio.run(ensure_topics(running.bootstrap, settings))
        click.echo(f"broker ready: KAFKA_BOOTSTRAP_SERVERS={running.bootstrap} (in memory; Ctrl-C stops it)")
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        running.process.wait()
        raise TurnoutWatchError(f"the broker exited with status {running.process.returncode}")
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()


@click.command()
@click.argument("days", nargs=-1, type=click.Path(exists=True, path_type=Path))
@click.option(
    "--observers-db",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The observer intake's database: every count it accepted is published again.",
)
@click.pass_context
def restore(ctx: click.Context, days: tuple[Path, ...], observers_db: Path | None) -> None:
    """Publish a day again onto a broker that lost it: DAYS (scraper archives or day files) and the
    intake's accepted counts, in the order the watch room learned of them.

    Safe to run on a broker that still has the day: every effect is keyed, so workers ignore what they
    already hold and publish no flag twice. Needs --broker / KAFKA_BOOTSTRAP_SERVERS.

        turnout-watch --broker 127.0.0.1:9092 restore run/archive/kz-2024-... --observers-db run/observers.sqlite3
    """
    from turnout_watch.services.restore import restore as run_restore

    settings = settings_for(ctx)
    if not settings.broker:
        raise click.UsageError("restore needs the broker to publish to: --broker HOST:PORT or KAFKA_BOOTSTRAP_SERVERS")
    if not days and observers_db is None:
        raise click.UsageError("nothing to restore: give scraper archives or day files, and/or --observers-db")

    def progress(done: int, total: int) -> None:
        click.echo(f"\r{done}/{total} events published", nl=done == total, err=True)

    stats = asyncio.run(
        run_restore(settings, settings.broker, days=days, observers_db=observers_db, on_progress=progress)
    )
    for problem in stats.problems:
        click.echo(f"problem: {problem}", err=True)
    click.echo(f"restored {stats.releases} releases and {stats.observer_counts} observer counts to {settings.broker}")
