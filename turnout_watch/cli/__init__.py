"""`turnout-watch`: one command for every job. Run `turnout-watch COMMAND --help` for each."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import sys
from collections import Counter
from datetime import date
from pathlib import Path
from typing import Any

import click

from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.settings import SHIPPED_ELECTIONS, Settings, load_settings


class _Speed(click.ParamType):
    name = "N|max"

    def convert(self, value: Any, param: Any, ctx: Any) -> float | None:
        if value is None or str(value).lower() == "max":
            return None
        try:
            speed = float(value)
        except ValueError:
            self.fail(f"{value!r} is neither a number nor 'max'", param, ctx)
        if speed <= 0:
            self.fail("speed must be positive", param, ctx)
        return speed


def _settings(ctx: click.Context, **overrides: Any) -> Settings:
    obj = ctx.find_root().obj or {}
    return load_settings(obj.get("config"), broker=obj.get("broker"), **overrides)


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
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    ctx.obj = {"config": config, "broker": broker}


@cli.command()
@click.argument("day_file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--speed",
    type=_Speed(),
    default="600",
    show_default=True,
    help="Compress the day N-fold (600: 10 h in 1 min), or 'max' for as fast as possible.",
)
@click.option(
    "--workers",
    type=click.IntRange(0, 16),
    default=1,
    show_default=True,
    help="Faust worker processes to run for the replay; 0 = use the workers already running on --broker.",
)
@click.option("--metrics-port", type=click.IntRange(0, 65535), help="Port of the first worker's /metrics.")
@click.option("--hold", is_flag=True, help="Keep the pipeline (and /metrics) running after the day, until Ctrl-C.")
@click.option("--no-progress", is_flag=True, help="No progress bar (flags and summary are still printed).")
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the flags the pipeline published to this flags file.",
)
@click.option(
    "--backfill",
    type=click.Path(file_okay=False, path_type=Path),
    metavar="DIR",
    help="Instead of a live replay: write the day's metrics with their original timestamps into the Prometheus "
    "TSDB directory DIR (OpenMetrics + promtool; offline, no broker).",
)
@click.pass_context
def replay(
    ctx: click.Context,
    day_file: Path,
    speed: float | None,
    workers: int,
    metrics_port: int | None,
    hold: bool,
    no_progress: bool,
    output: Path | None,
    backfill: Path | None,
) -> None:
    """Replay DAY_FILE (or a scraper's archive directory) through the whole pipeline.

    Prints each flag as it is raised, then a summary. Example:
    turnout-watch replay data/elections/kz-2022-11-20-presidential.jsonl --speed max

    With --backfill DIR the day goes into Prometheus on its real date instead (start Prometheus with
    --storage.tsdb.path=DIR, or move DIR's blocks into a running server's data directory).
    """
    from turnout_watch.core.dayfile import write_flags
    from turnout_watch.services.replay import run_replay

    if backfill is not None:
        from turnout_watch.services.backfill import backfill_day

        result = backfill_day(day_file, backfill, history_dir=_settings(ctx).history_dir)
        click.echo(
            f"{result.election}: {result.samples} samples of {result.series} series, "
            f"{result.start:%Y-%m-%d %H:%M} to {result.end:%H:%M %Z}, imported into {backfill} "
            f"(prometheus --storage.tsdb.path={backfill})"
        )
        return
    settings = _settings(ctx, metrics_port=metrics_port)
    if workers == 0 and not settings.broker:
        raise click.UsageError("--workers 0 needs an external --broker whose workers are already running")
    outcome = asyncio.run(
        run_replay(
            day_file,
            settings,
            speed=speed,
            workers=workers,
            out=sys.stdout,
            progress=not no_progress and sys.stdout.isatty(),
            hold=hold,
        )
    )
    if output:
        with output.open("w", encoding="utf-8") as fh:
            write_flags(fh, outcome.flags)


@cli.command()
@click.argument("day_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Flags file to write (default: standard output).",
)
@click.option(
    "--history",
    type=click.Path(file_okay=False, path_type=Path),
    help="Folder of past day files for expected curves (default: the shipped days; the day itself is excluded).",
)
@click.pass_context
def detect(ctx: click.Context, day_file: Path, output: Path | None, history: Path | None) -> None:
    """Run the detectors on DAY_FILE offline (no broker) and write flags in the spec's format.

    Gives the same flags as `replay` of the same day: both run the same tracker and detectors.
    """
    from turnout_watch.core.dayfile import write_flags
    from turnout_watch.services.detect import detect_day

    settings = _settings(ctx, history_dir=history)
    result = detect_day(day_file, history_dir=settings.history_dir)
    for problem in result.problems:
        click.echo(f"problem: {problem}", err=True)
    flags = [flag.to_dict() for flag in result.flags]
    if output:
        with output.open("w", encoding="utf-8") as fh:
            write_flags(fh, flags)
    else:
        write_flags(sys.stdout, flags)
    counts = Counter(flag["severity"] for flag in flags)
    click.echo(
        f"{result.releases} releases, {len(flags)} flags "
        f"({', '.join(f'{n} {s}' for s, n in sorted(counts.items())) or 'none'})",
        err=True,
    )


@cli.command()
@click.option("--days", type=click.IntRange(0), default=700, show_default=True, help="Days with one injected anomaly.")
@click.option("--clean", type=click.IntRange(0), default=300, show_default=True, help="Days with none.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the first day (day i uses seed+i).")
@click.option(
    "--observers",
    type=click.IntRange(0),
    default=400,
    show_default=True,
    help="Observed stations per day (0: no observer counts, no observer anomalies).",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    help="Keep the generated day files here (default: a temporary folder, removed afterwards).",
)
@click.option("--json", "json_out", type=click.Path(dir_okay=False, path_type=Path), help="Write the report as JSON.")
@click.option(
    "--baseline-rise", type=float, default=20.0, show_default=True, help="Naive baseline: flag rises over N points."
)
@click.pass_context
def evaluate(
    ctx: click.Context,
    days: int,
    clean: int,
    seed: int,
    observers: int,
    out: Path | None,
    json_out: Path | None,
    baseline_rise: float,
) -> None:
    """Measure the detectors on seeded synthetic days: recall and delay per anomaly kind and size,
    false alerts per clean day, beside a naive baseline. See turnout_watch/sim/synth.py for the model.
    """
    import json
    import tempfile

    from tqdm import tqdm

    from turnout_watch.sim.evaluate import evaluate as run_evaluation
    from turnout_watch.sim.evaluate import format_report

    settings = _settings(ctx)
    with tempfile.TemporaryDirectory(prefix="tw-evaluate-") as tmp:
        folder = out or Path(tmp)
        bar = tqdm(total=days + clean, unit="day", disable=not sys.stderr.isatty(), leave=False)
        report = run_evaluation(
            folder,
            days,
            clean,
            seed,
            history_dir=settings.history_dir,
            baseline_rise=baseline_rise,
            progress=lambda n, total: bar.update(n - bar.n),
            observers=observers,
        )
        bar.close()
    click.echo(format_report(report))
    if json_out:
        json_out.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")


@cli.group()
def dashboards() -> None:
    """Grafana dashboards, alert rules, contact points and notification policies as code."""


@dashboards.command("build")
@click.option(
    "--coordinators",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Who is notified of what (TOML; default: dashboards/config/coordinators.example.toml).",
)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), help="Where to write (default: dashboards/).")
@click.option("--check", is_flag=True, help="Write nothing; exit 1 if a generated file is missing or stale.")
def dashboards_build(coordinators: Path | None, out: Path | None, check: bool) -> None:
    """Generate Grafana provisioning (datasource, dashboards, alert rules, contact points, policies),
    the Prometheus rule file and an alertmanager.yml, all from dashboards/*.py."""
    from dashboards.build import EXAMPLE_COORDINATORS, ROOT, build

    changed = build(out or ROOT, coordinators or EXAMPLE_COORDINATORS, check=check)
    for path in changed:
        click.echo(f"{'stale' if check else 'wrote'} {path}")
    if check and changed:
        raise click.exceptions.Exit(1)
    if not changed:
        click.echo("all generated files are up to date")


@cli.command()
@click.pass_context
def worker(ctx: click.Context) -> None:
    """Run one Faust worker (agents + /metrics) against the configured broker.

    Needs --broker / KAFKA_BOOTSTRAP_SERVERS (start one with `turnout-watch broker`). Run several on
    the same broker to share the partitions.
    """
    from streams.worker import run_worker
    from turnout_watch.core.topics import ensure_topics

    settings = _settings(ctx)
    if not settings.broker:
        raise click.UsageError("a worker needs a broker: --broker HOST:PORT or KAFKA_BOOTSTRAP_SERVERS")
    asyncio.run(ensure_topics(settings.broker, settings))
    run_worker(settings, settings.broker)


@cli.command()
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

    settings = _settings(ctx)
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


@cli.command()
@click.argument("names", nargs=-1)
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), help="Only regions in force on this date.")
def regions(names: tuple[str, ...], on: Any) -> None:
    """Resolve region NAMES (any spelling) to ISO 3166-2:KZ codes, or list the regions on a date."""
    from turnout_watch.core.gazetteer import default_gazetteer

    gazetteer = default_gazetteer()
    day: date | None = on.date() if on else None
    if not names:
        units = gazetteer.regions_on(day) if day else [r for r in gazetteer if not r.is_national]
        for region in units:
            click.echo(f"{region.code:<7} {region.name}")
        return
    for name in names:
        region = gazetteer.resolve(name, on=day)
        click.echo(f"{name!r} -> {region.code} {region.name}")


@cli.command("import-csv")
@click.option(
    "--from",
    "source",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=Path("../shared/data"),
    show_default=True,
    help="Folder with the CEC CSV tables.",
)
@click.option(
    "--out",
    type=click.Path(file_okay=False, path_type=Path),
    default=SHIPPED_ELECTIONS,
    show_default=True,
    help="Where to write the day files.",
)
def import_csv(source: Path, out: Path) -> None:
    """Convert the shipped CEC turnout tables (shared/data) into replayable day files."""
    from ingest.csv_import import SHIPPED_DAYS, convert

    for spec in SHIPPED_DAYS:
        path = convert(spec, source, out / f"{spec.election}.jsonl")
        click.echo(f"wrote {path}")


def _site_time(day_file: Path | None, when: str | None, default_minutes_before: float = 2.0) -> Any:
    """A simulator's start: HH:MM on the election day, or a little before the day's first release."""
    from datetime import datetime, time, timedelta

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


@cli.command()
@click.argument("file_or_url")
@click.option("--lang", type=click.Choice(["ru", "kk", "en", "auto"]), default="auto", show_default=True)
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Election date (default: the date in the text).")
@click.option("--tz", default="Asia/Almaty", show_default=True, help="Time zone of the times in the release.")
@click.option("--selector", help="CSS selector of the release text on the page (default: the whole page).")
def parse(file_or_url: str, lang: str, on: Any, tz: str, selector: str | None) -> None:
    """Parse one turnout release (HTML or text, a file or a URL) and print it as JSON.

    Figures are keyed by ISO 3166-2:KZ code; values that could not be placed are in `unparsed`, unknown
    names in `unknown_regions` with the closest known spellings. Exit status 1 when no region was found.
    """
    import json

    from ingest.parse import parse_release

    if file_or_url.startswith(("http://", "https://")):
        import aiohttp

        async def fetch() -> tuple[bytes, str | None]:
            timeout = aiohttp.ClientTimeout(total=30)
            async with aiohttp.ClientSession(timeout=timeout) as session, session.get(file_or_url) as response:
                response.raise_for_status()
                return await response.read(), response.charset

        try:
            content, charset = asyncio.run(fetch())
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise TurnoutWatchError(f"cannot fetch {file_or_url}: {exc or type(exc).__name__}") from exc
    else:
        try:
            content, charset = Path(file_or_url).read_bytes(), None
        except OSError as exc:
            raise click.BadParameter(str(exc), param_hint="FILE_OR_URL") from exc
    parsed = parse_release(
        content,
        on=on.date() if on else None,
        tz=tz,
        lang=lang,
        selector=selector,
        charset=charset,  # type: ignore[arg-type]
    )
    click.echo(json.dumps(parsed.to_dict(), ensure_ascii=False, indent=2))
    if not parsed.turnout_pct:
        click.echo("error: no region figure found in the release", err=True)
        sys.exit(1)


@cli.command("cec-sim")
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


@cli.command()
@click.option("--source", default="cec-kz", show_default=True, help="A shipped source name or a source TOML file.")
@click.option("--base-url", help="Override the source's address (e.g. a local cec-sim).")
@click.option(
    "--day",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Take the election header from this day file.",
)
@click.option("--election", help="Election id (with --date, when there is no --day).")
@click.option("--date", "on", type=click.DateTime(["%Y-%m-%d"]), help="Election date.")
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
    on: Any,
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
    from ingest.clock import RealClock, ScaledClock
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
    clock = ScaledClock(_site_time(day, start), speed) if speed else RealClock(ZoneInfo(config.timezone))
    settings = _settings(ctx)
    if workers is None:
        workers = 0 if settings.broker else 1
    archive_dir = archive or settings.data_dir / "archive" / header["election"]
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_scrape(
                config, header, settings, clock, archive_dir=archive_dir, metrics_port=metrics_port,
                workers=workers, until_done=until_done, say=click.echo,
            )
        )  # fmt: skip


@cli.group()
def stations() -> None:
    """The polling-station registry the observer intake checks counts against."""


@stations.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--on", "on", type=click.DateTime(["%Y-%m-%d"]), help="Election date: region names must exist then.")
@click.option("--dry-run", is_flag=True, help="Only check the file and print the report.")
@click.pass_context
def stations_import(ctx: click.Context, file: Path, on: Any, dry_run: bool) -> None:
    """Import a CSV of stations (station, region, registered[, address, lat, lon]) with a validation report.

    Good rows are saved (known ids updated); bad rows are listed by line and left out; exit status 1
    if any row was rejected.
    """
    from ingest.observers import store
    from ingest.observers.registry import import_stations

    settings = _settings(ctx)
    conn = store.connect(store.db_path(settings))
    report = import_stations(conn, file, on.date() if on else None, dry_run=dry_run)
    click.echo(report.format() + (" (dry run: nothing saved)" if dry_run else f"; registry: {store.db_path(settings)}"))
    if report.rejected:
        sys.exit(1)


@cli.group()
def tokens() -> None:
    """Observer and coordinator tokens for the intake API (stored hashed; shown once when issued)."""


@tokens.command("issue")
@click.argument("kind", type=click.Choice(["observer", "coordinator"]))
@click.argument("name")
@click.argument("scope", nargs=-1, required=True)
@click.pass_context
def tokens_issue(ctx: click.Context, kind: str, name: str, scope: tuple[str, ...]) -> None:
    """Issue a token: `observer NAME STATION...` or `coordinator NAME REGION...` (any spelling or code)."""
    from ingest.observers import store
    from ingest.observers.registry import load_stations
    from ingest.observers.tokens import issue_token

    conn = store.connect(store.db_path(_settings(ctx)))
    token, record = issue_token(conn, kind, name, scope, load_stations(conn))  # type: ignore[arg-type]
    click.echo(f"{token}\n(id {record.token_id}, {kind} {name}: {', '.join(sorted(record.scope))}; shown only now)")


@tokens.command("revoke")
@click.argument("token_id")
@click.pass_context
def tokens_revoke(ctx: click.Context, token_id: str) -> None:
    """Revoke a token by its id (or the whole token); a running server refuses it from the next request."""
    from ingest.observers import store
    from ingest.observers.tokens import revoke_token

    record = revoke_token(store.connect(store.db_path(_settings(ctx))), token_id)
    click.echo(f"revoked {record.token_id} ({record.kind} {record.name}) at {record.revoked_at}")


@tokens.command("list")
@click.pass_context
def tokens_list(ctx: click.Context) -> None:
    """List tokens (ids, holders, scopes, revocation); secrets are not stored, so not shown."""
    from ingest.observers import store
    from ingest.observers.tokens import load_tokens

    for r in load_tokens(store.connect(store.db_path(_settings(ctx)))).values():
        state = f"revoked {r.revoked_at}" if r.revoked_at else "active"
        click.echo(f"{r.token_id}  {r.kind:<11} {r.name:<24} {state:<28} {', '.join(sorted(r.scope))}")


@cli.group()
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

    settings = _settings(ctx, observers_day=day, observers_host=host, observers_port=port)
    running = None
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


@cli.command("observers-sim")
@click.argument("day_file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--stations", "n_stations", type=click.IntRange(1), default=500, show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option(
    "--inflate-commission", type=float, default=0.0, show_default=True,
    help="Points (at close) added to the commission's figures over the observers' tallies.",
)  # fmt: skip
@click.option("--url", help="Intake API base URL (default: http://OBSERVERS_HOST:OBSERVERS_PORT).")
@click.option("--speed", type=_Speed(), default="max", show_default=True, help="Compress the day N-fold, or max.")
@click.option("--concurrency", type=click.IntRange(1, 1024), default=32, show_default=True)
@click.option(
    "-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="Also write the events as a day file."
)
@click.option("--no-post", is_flag=True, help="Only generate (with -o); post nothing.")
@click.pass_context
def observers_sim(
    ctx: click.Context, day_file: Path, n_stations: int, seed: int, inflate_commission: float, url: str | None,
    speed: float | None, concurrency: int, output: Path | None, no_post: bool,
) -> None:  # fmt: skip
    """Generate realistic observer counts for DAY_FILE's stations and post them through the intake API.

    Registers the generated stations and one observer token per station in the intake's database
    (the server picks them up on its next request), then posts each count alone, as phones do.
    """
    from turnout_watch.core.dayfile import load_day, write_day
    from turnout_watch.sim.observers import make_stations, post_counts, register_observers, simulate_counts

    settings = _settings(ctx)
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
    stats = asyncio.run(post_counts(base, events, by_station, speed=speed, concurrency=concurrency))
    click.echo(stats.summary())
    for problem in stats.errors[:10]:
        click.echo(f"problem: {problem}", err=True)


def main() -> None:
    try:
        cli(standalone_mode=True)
    except TurnoutWatchError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
