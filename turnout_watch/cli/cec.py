"""The commission's site: scrape it (with a pipeline behind), or stand in for it with the simulator."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import datetime
from pathlib import Path

import click

from turnout_watch.cli.params import DATE, settings_for


def _site_time(day_file: Path | None, when: str | None, default_minutes_before: float = 2.0) -> datetime:
    """A simulator's start: HH:MM on the election day, or a little before the day's first release."""
    from datetime import time, timedelta

    from turnout_watch.core.dayfile import load_day

    if day_file is None:
        raise click.UsageError("--speed needs --day (the day file the simulator serves)")
    day = load_day(day_file)
    if when:
        try:
            at = time.fromisoformat(when)
        except ValueError as exc:
            raise click.BadParameter(f"{when!r} is not HH:MM") from exc
        return datetime.combine(day.election.date, at, tzinfo=day.election.tz)
    first = min(release.published_at for release in day.releases())
    return first - timedelta(minutes=default_minutes_before)


@click.command()
@click.option("--source", default="cec-kz", show_default=True, help="A shipped source name or a source TOML file.")
@click.option("--base-url", help="Override the source's address (e.g. a local cec-sim).")
@click.option(
    "--day",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take the election header from this day file.",
)
@click.option("--election", help="Election id (with --date, when there is no --day).")
@click.option("--date", "on", type=DATE, help="Election date.")
@click.option(
    "--archive",
    type=click.Path(file_okay=False, path_type=Path),
    help="Raw archive directory (default: DATA_DIR/archive/ELECTION).",
)
@click.option(
    "--speed", type=click.FloatRange(min=0, min_open=True), help="Follow a cec-sim clock running N times faster."
)
@click.option("--start", metavar="HH:MM", help="With --speed: the simulator's start time (cec-sim prints it).")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=9465, show_default=True)
@click.option(
    "--workers",
    type=click.IntRange(0, 16),
    help="Faust workers to start (default: 1 with the embedded broker, 0 with --broker).",
)
@click.option("--until-done", is_flag=True, help="Stop once every scheduled release is in (demos, benchmarks).")
@click.pass_context
def scrape(
    ctx: click.Context,
    source: str,
    base_url: str | None,
    day: Path | None,
    election: str | None,
    on: datetime | None,
    archive: Path | None,
    speed: float | None,
    start: str | None,
    metrics_port: int,
    workers: int | None,
    until_done: bool,
) -> None:
    """Poll the commission's site and publish each new turnout release to Kafka exactly once.

    Example against the simulator: turnout-watch cec-sim data/elections/kz-2022-11-20-presidential.jsonl
    --speed 600, then the `scrape` line it prints. /metrics is served on --metrics-port.
    """
    from zoneinfo import ZoneInfo

    from ingest.archive import election_header
    from ingest.clock import Clock, RealClock, ScaledClock
    from ingest.sources import load_source
    from turnout_watch.core.dayfile import load_day
    from turnout_watch.services.scrape import run_scrape

    config = load_source(source).with_overrides(base_url)
    if day is not None:
        header = dict(load_day(day).election.raw)
    elif election and on:
        header = election_header(election, on.date(), timezone=config.timezone)
    else:
        raise click.UsageError("say which election: --day DAY_FILE, or --election ID --date YYYY-MM-DD")
    clock: Clock = ScaledClock(_site_time(day, start), speed) if speed else RealClock(ZoneInfo(config.timezone))
    settings = settings_for(ctx)
    if workers is None:
        workers = 0 if settings.broker else 1
    archive_dir = archive or settings.data_dir / "archive" / header["election"]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_scrape(
                config,
                header,
                settings,
                clock,
                archive_dir=archive_dir,
                metrics_port=metrics_port,
                workers=workers,
                until_done=until_done,
                say=click.echo,
            )
        )


@click.command("cec-sim")
@click.argument("day_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--port", type=click.IntRange(0, 65535), default=8088, show_default=True)
@click.option("--speed", type=click.FloatRange(min=0, min_open=True), default=60.0, show_default=True)
@click.option("--start", metavar="HH:MM", help="Site time to start at (default: 2 min before the first release).")
@click.option("--seed", type=int, default=0, show_default=True, help="Chooses each release's wording and format.")
def cec_sim(day_file: Path, port: int, speed: float, start: str | None, seed: int) -> None:
    """Serve DAY_FILE as the CEC site would (ru/kk/en news and release pages), N times faster.

    Inject faults with POST /sim/faults {"kind": "5xx|timeout|hang|truncated|layout|huge|duplicate|correction",
    "count": 1, "path": "/rus/news/"}; GET /sim/state shows the site clock and what is published.
    """
    from aiohttp import web

    from ingest.clock import ScaledClock
    from turnout_watch.core.dayfile import load_day
    from turnout_watch.sim.cec_site import CecSimulator

    begin = _site_time(day_file, start)
    clock = ScaledClock(begin, speed)
    sim = CecSimulator(load_day(day_file), clock, seed=seed)
    click.echo(
        f"CEC simulator on http://127.0.0.1:{port}/rus/news/ (also /kaz/news/, /eng/news/); site time "
        f"{begin:%H:%M} x{speed:g}. Scrape it with:\n  turnout-watch scrape --base-url http://127.0.0.1:{port} "
        f"--day {day_file} --speed {speed:g} --start {begin:%H:%M}"
    )
    web.run_app(sim.app(), host="127.0.0.1", port=port, print=None, access_log=None)
