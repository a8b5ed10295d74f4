"""Commands on election days and their pieces: replay, detect, evaluate, import-csv, parse, regions."""

from __future__ import annotations

import asyncio
import sys
from collections import Counter
from datetime import date, datetime, time, tzinfo
from pathlib import Path
from typing import TYPE_CHECKING

import click

from turnout_watch.cli.params import DATE, Speed, settings_for
from turnout_watch.core.errors import TurnoutWatchError
from turnout_watch.core.settings import SHIPPED_ELECTIONS

if TYPE_CHECKING:  # the parser (lxml) loads only when `parse` runs
    from ingest.parse import Lang


@click.command()
@click.argument("day_file", type=click.Path(exists=True, path_type=Path))
@click.option(
    "--speed",
    type=Speed(),
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

        result = backfill_day(day_file, backfill, history_dir=settings_for(ctx).history_dir)
        click.echo(
            f"{result.election}: {result.samples} samples of {result.series} series, "
            f"{result.start:%Y-%m-%d %H:%M} to {result.end:%H:%M %Z}, imported into {backfill} "
            f"(prometheus --storage.tsdb.path={backfill})"
        )
        return
    settings = settings_for(ctx, metrics_port=metrics_port)
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


@click.command()
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

    settings = settings_for(ctx, history_dir=history)
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


@click.command()
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

    settings = settings_for(ctx)
    with tempfile.TemporaryDirectory(prefix="tw-evaluate-") as tmp:
        folder = out or Path(tmp)
        bar = tqdm(total=days + clean, unit="day", disable=not sys.stderr.isatty(), leave=False)

        def progress(done: int, total: int) -> None:
            bar.update(done - bar.n)

        report = run_evaluation(
            folder,
            days,
            clean,
            seed,
            history_dir=settings.history_dir,
            baseline_rise=baseline_rise,
            progress=progress,
            observers=observers,
        )
        bar.close()
    click.echo(format_report(report))
    if json_out:
        json_out.write_text(json.dumps(report.to_dict(), indent=1), encoding="utf-8")


@click.command("import-csv")
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


@click.command()
@click.argument("file_or_url")
@click.option("--lang", type=click.Choice(["ru", "kk", "en", "auto"]), default="auto", show_default=True)
@click.option("--date", "on", type=DATE, help="Election date (default: the date in the text).")
@click.option("--tz", default="Asia/Almaty", show_default=True, help="Time zone of the times in the release.")
@click.option("--selector", help="CSS selector of the release text on the page (default: the whole page).")
def parse(file_or_url: str, lang: Lang, on: datetime | None, tz: str, selector: str | None) -> None:
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
        charset=charset,
    )
    click.echo(json.dumps(parsed.to_dict(), ensure_ascii=False, indent=2))
    if not parsed.turnout_pct:
        click.echo("error: no region figure found in the release", err=True)
        sys.exit(1)


@click.command()
@click.argument("names", nargs=-1)
@click.option("--on", "on", type=DATE, help="Only regions in force on this date, with their UTC offset that day.")
def regions(names: tuple[str, ...], on: datetime | None) -> None:
    """Resolve region NAMES (any spelling) to ISO 3166-2:KZ codes, or list the regions on a date.

    With --on, each region also shows its UTC offset on that date (its IANA zone, from tzdata).
    """
    from turnout_watch.core.gazetteer import default_gazetteer

    gazetteer = default_gazetteer()
    day: date | None = on.date() if on else None
    if not names:
        units = gazetteer.regions_on(day) if day else [r for r in gazetteer if not r.is_national]
        for region in units:
            click.echo(f"{region.code:<7} {region.name}" + (f"  {_offset(region.zone, day)}" if day else ""))
        return
    for name in names:
        region = gazetteer.resolve(name, on=day)
        click.echo(f"{name!r} -> {region.code} {region.name}" + (f"  {_offset(region.zone, day)}" if day else ""))


def _offset(zone: tzinfo, day: date) -> str:
    """ "UTC+05:00 (Asia/Aqtobe)": the zone's offset at noon on `day`."""
    offset = datetime.combine(day, time(12), zone).strftime("%z")
    return f"UTC{offset[:3]}:{offset[3:]} ({zone})"
