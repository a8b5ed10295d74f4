"""The watch room's Grafana, Prometheus and Alertmanager configuration, generated from dashboards/*.py."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
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
