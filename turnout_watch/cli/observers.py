"""The observers' side: the station registry, intake tokens, the intake server, and the count simulator."""

from __future__ import annotations

import asyncio
import sys
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

import click

from turnout_watch.cli.params import DATE, Speed, settings_for

if TYPE_CHECKING:  # the intake's modules load only when a command runs
    from ingest.observers.tokens import TokenKind
    from turnout_watch.services.broker import EmbeddedBroker


@click.group()
def stations() -> None:
    """The polling-station registry the observer intake checks counts against."""


@stations.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--on", "on", type=DATE, help="Election date: region names must exist then.")
@click.option("--dry-run", is_flag=True, help="Only check the file and print the report.")
@click.pass_context
def stations_import(ctx: click.Context, file: Path, on: datetime | None, dry_run: bool) -> None:
    """Import a CSV of stations (station, region, registered[, address, lat, lon]) with a validation report.

    Good rows are saved (known ids updated); bad rows are listed by line and left out; exit status 1
    if any row was rejected.
    """
    from ingest.observers import store
    from ingest.observers.registry import import_stations

    settings = settings_for(ctx)
    conn = store.connect(store.db_path(settings))
    report = import_stations(conn, file, on.date() if on else None, dry_run=dry_run)
    click.echo(report.format() + (" (dry run: nothing saved)" if dry_run else f"; registry: {store.db_path(settings)}"))
    if report.rejected:
        sys.exit(1)


@click.group()
def tokens() -> None:
    """Observer and coordinator tokens for the intake API (stored hashed; shown once when issued)."""


@tokens.command("issue")
@click.argument("kind", type=click.Choice(["observer", "coordinator"]))
@click.argument("name")
@click.argument("scope", nargs=-1, required=True)
@click.pass_context
def tokens_issue(ctx: click.Context, kind: TokenKind, name: str, scope: tuple[str, ...]) -> None:
    """Issue a token: `observer NAME STATION...` or `coordinator NAME REGION...` (any spelling or code)."""
    from ingest.observers import store
    from ingest.observers.registry import load_stations
    from ingest.observers.tokens import issue_token

    conn = store.connect(store.db_path(settings_for(ctx)))
    token, record = issue_token(conn, kind, name, scope, load_stations(conn))
    click.echo(f"{token}\n(id {record.token_id}, {kind} {name}: {', '.join(sorted(record.scope))}; shown only now)")


@tokens.command("revoke")
@click.argument("token_id")
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token by its id (or the whole token); a running server refuses it from the next request."""
    from ingest.observers import store
    from ingest.observers.tokens import revoke_token

    record = revoke_token(store.connect(store.db_path(settings_for(ctx))), token_id)
    click.echo(f"revoked {record.token_id} ({record.kind} {record.name}) at {record.revoked_at}")


@tokens.command("list")
@click.pass_context
def tokens_list(ctx: click.Context) -> None:
    """List tokens (ids, holders, scopes, revocation); secrets are not stored, so not shown."""
    from ingest.observers import store
    from ingest.observers.tokens import load_tokens

    for r in load_tokens(store.connect(store.db_path(settings_for(ctx)))).values():
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        click.echo(f"{r.token_id}  {r.kind:<11} {r.name:<24} {state:<28} {', '.join(sorted(r.scope))}")


@click.group()
def observers() -> None:
    """The observer counts intake API."""


@observers.command("serve")
@click.option("--day", type=click.Path(exists=True, dir_okay=False, path_type=Path), help="Day file of the election.")
@click.option("--host", help="Interface to listen on (default: observers_host).")
@click.option("--port", type=click.IntRange(0, 65535), help="Port (default: observers_port).")
@click.pass_context
def observers_serve(ctx: click.Context, day: Path | None, host: str | None, port: int | None) -> None:
    """Serve the intake API, the form at / and /metrics; starts the embedded broker unless --broker is given.

    Counts are acknowledged only once the broker (acks=all) or the local spool (fsync) has them.
    """
    from aiohttp import web

    from ingest.observers.app import create_app
    from turnout_watch.services.broker import launch_broker

    settings = settings_for(ctx, observers_day=day, observers_host=host, observers_port=port)
    running: EmbeddedBroker | None = None
    if not settings.broker:
        running = launch_broker(log_path=settings.data_dir / "tansu.log" if settings.data_dir.is_dir() else None)
        settings = settings.model_copy(update={"broker": running.bootstrap})
        click.echo(f"embedded broker: KAFKA_BOOTSTRAP_SERVERS={running.bootstrap} (in memory)")
    try:
        app = create_app(settings)
        click.echo(f"observer intake on http://{settings.observers_host}:{settings.observers_port}/ (Ctrl-C stops)")
        web.run_app(app, host=settings.observers_host, port=settings.observers_port, print=None, access_log=None)
    finally:
        if running:
            running.stop()


@click.command("observers-sim")
@click.argument("day_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stations", "n_stations", type=click.IntRange(1), default=500, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--inflate-commission",
    type=float,
    default=0.0,
    show_default=True,
    help="Points (at close) added to the commission's figures over the observers' tallies.",
)
@click.option("--url", help="Intake API base URL (default: http://OBSERVERS_HOST:OBSERVERS_PORT).")
@click.option("--speed", type=Speed(), default="max", show_default=True, help="Compress the day N-fold, or max.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True)
@click.option(
    "--start",
    metavar="HH:MM",
    help="With --speed: the day's time at the start (cec-sim's --start; default: the first count).",
)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the events as a day file."
)
@click.option("--no-post", is_flag=True, help="Only generate (with -o); post nothing.")
@click.pass_context
def observers_sim(
    ctx: click.Context,
    day_file: Path,
    n_stations: int,
    seed: int,
    inflate_commission: float,
    url: str | None,
    speed: float | None,
    concurrency: int,
    start: str | None,
    output: Path | None,
    no_post: bool,
) -> None:
    """Generate realistic observer counts for DAY_FILE's stations and post them through the intake API.

    Registers the generated stations and one observer token per station in the intake's database
    (the server picks them up on its next request), then posts each count alone, as phones do.
    """
    from turnout_watch.core.dayfile import load_day, write_day
    from turnout_watch.sim.observers import make_stations, post_counts, register_observers, simulate_counts

    settings = settings_for(ctx)
    day = load_day(day_file)
    generated = make_stations(day.election, n_stations, seed)
    events = simulate_counts(day, generated, seed, inflate_commission=inflate_commission)
    click.echo(f"{len(generated)} stations, {len(events)} counts")
    if output:
        write_day(output, dict(day.election.raw), events)
        click.echo(f"wrote {output}")
    if no_post:
        return
    by_station = register_observers(settings, generated, name=f"sim{seed}-obs")
    base = (url or f"http://{settings.observers_host}:{settings.observers_port}").rstrip("/")
    origin = None
    if start:
        from datetime import time

        try:
            origin = datetime.combine(day.election.date, time.fromisoformat(start), tzinfo=day.election.tz)
        except ValueError as exc:
            raise click.BadParameter(f"{start!r} is not HH:MM", param_hint="--start") from exc
    stats = asyncio.run(post_counts(base, events, by_station, speed=speed, concurrency=concurrency, origin=origin))
    click.echo(stats.summary())
    for problem in stats.errors[:10]:
        click.echo(f"problem: {problem}", err=True)
