"""docker-compose.yml checked statically (no Docker engine here): every part must fit our code."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import click
import pytest
import yaml

from tests.conftest import ROOT
from turnout_watch.cli import cli
from turnout_watch.settings import Settings


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))


def tw_services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: svc for name, svc in compose["services"].items() if svc.get("image") == "turnout-watch:latest"}


def test_kafka_is_kraft_and_workers_scale_out(compose: dict[str, Any]) -> None:
    kafka = compose["services"]["kafka"]
    assert kafka["image"].startswith("apache/kafka:")
    assert "controller" in kafka["environment"]["KAFKA_PROCESS_ROLES"]
    assert kafka["environment"]["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"  # we create topics ourselves
    assert compose["services"]["worker"]["deploy"]["replicas"] >= 2


def test_every_turnout_watch_command_parses(compose: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)  # the image's WORKDIR holds data/ like the repository does
    services = tw_services(compose)
    assert {"worker", "replay"} <= set(services)
    for name, service in services.items():
        try:
            cli.make_context("turnout-watch", list(service["command"]))
        except click.ClickException as exc:  # pragma: no cover - the assertion message is the point
            pytest.fail(f"service {name}: {service['command']} does not parse: {exc.format_message()}")


def test_environment_names_real_settings(compose: dict[str, Any]) -> None:
    for name, service in tw_services(compose).items():
        env = service["environment"]
        assert env["KAFKA_BOOTSTRAP_SERVERS"] == "kafka:9092", name
        fields = {key.removeprefix("TURNOUT_WATCH_").lower() for key in env if key.startswith("TURNOUT_WATCH_")}
        assert fields <= set(Settings.model_fields), fields - set(Settings.model_fields)
        Settings(**{f: env[f"TURNOUT_WATCH_{f.upper()}"] for f in fields})  # values validate too


def test_prometheus_scrapes_the_workers_metrics_port(compose: dict[str, Any]) -> None:
    config_path = ROOT / "dashboards" / "prometheus" / "prometheus.yml"
    mount = compose["services"]["prometheus"]["volumes"][0]
    assert mount.startswith("./dashboards/prometheus/prometheus.yml:")
    config = yaml.safe_load(config_path.read_text(encoding="utf-8"))
    port = int(compose["services"]["worker"]["environment"]["TURNOUT_WATCH_METRICS_PORT"])
    sd = config["scrape_configs"][0]["dns_sd_configs"][0]
    assert sd["names"] == ["worker"] and sd["port"] == port
    promtool = shutil.which("promtool")
    assert promtool, "promtool missing: `make test` installs Debian's prometheus package"
    result = subprocess.run([promtool, "check", "config", str(config_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_dockerfile_copies_every_package() -> None:
    copied = set(re.findall(r"^COPY (\S+)", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M))
    for package in ("turnout_watch", "ingest", "streams", "detectors", "dashboards", "data"):
        assert package in copied
        assert (ROOT / package).is_dir()
    assert "pyproject.toml" in copied
