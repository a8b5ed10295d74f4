"""The long-running pieces of a deployment: a Faust worker, and the embedded broker."""

from __future__ import annotations

import asyncio
import signal
import sys

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
