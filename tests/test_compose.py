"""docker-compose.yml checked statically (no Docker engine here): every part must fit our code."""

from __future__ import annotations

import re
import shutil
import subprocess
from typing import Any

import click
import pytest
import yaml

from tests.support.paths import ROOT
from turnout_watch.cli import cli
from turnout_watch.core.settings import Settings


def interpolate(value: Any) -> Any:
    """Compose's `${NAME:-default}` / `${NAME}` with nothing set: what `docker compose config` gives
    on a machine without those variables (the defaults are what must work)."""
    if isinstance(value, str):
        return re.sub(r"\$\{(\w+)(?::?-([^}]*))?\}", lambda m: m.group(2) or "", value)
    if isinstance(value, list):
        return [interpolate(v) for v in value]
    if isinstance(value, dict):
        return {k: interpolate(v) for k, v in value.items()}
    return value


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return interpolate(yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8")))


def parse_command(command: list[str]) -> click.Context:
    """The leaf command's context, its options parsed and converted (paths checked) as at run time."""
    group: click.Command = cli
    args, names = list(command), ["turnout-watch"]
    while isinstance(group, click.Group):
        name = args.pop(0)
        sub = group.get_command(click.Context(group), name)
        assert sub is not None, f"no command {name!r} in {' '.join(names)}"
        group, names = sub, [*names, name]
    return group.make_context(" ".join(names), args)


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
    assert {"worker", "replay", "scraper", "observers"} <= set(services)
    for name, service in services.items():
        try:
            parse_command(list(service["command"]))
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


def served_port(name: str, service: dict[str, Any]) -> int:
    """The port a turnout-watch service serves /metrics on, read the way the program reads it."""
    params = parse_command(list(service["command"])).params
    if name == "worker":
        return int(service["environment"]["TURNOUT_WATCH_METRICS_PORT"])
    if name == "scraper":
        return int(params["metrics_port"])
    if name == "observers":  # the intake serves /metrics beside its API
        return int(params["port"])
    raise AssertionError(f"no rule for the /metrics port of service {name}")


def test_prometheus_scrapes_every_service_on_its_port(compose: dict[str, Any]) -> None:
    config = yaml.safe_load((ROOT / "dashboards" / "prometheus" / "prometheus.yml").read_text(encoding="utf-8"))
    scraped = {}
    for job in config["scrape_configs"]:
        for sd in job["dns_sd_configs"]:
            (name,) = sd["names"]
            assert name in compose["services"], f"job {job['job_name']} scrapes {name}, not a compose service"
            scraped[name] = sd["port"]
    long_running = {n for n, s in tw_services(compose).items() if not s.get("profiles")}
    assert set(scraped) == long_running  # every service scraped, nothing else
    for name, port in scraped.items():
        service = compose["services"][name]
        assert served_port(name, service) == port, name
        reachable = [str(p).split(":")[-1] for p in service.get("expose", []) + service.get("ports", [])]
        assert str(port) in reachable, f"{name} does not expose {port}"
        if name != "worker":  # listens on all interfaces inside its container
            host = parse_command(list(service["command"])).params.get("host")
            metrics_host = service["environment"].get("TURNOUT_WATCH_METRICS_HOST")
            assert "0.0.0.0" in (host, metrics_host), name


def test_grafana_and_alertmanager_mount_the_generated_files(compose: dict[str, Any]) -> None:
    grafana = compose["services"]["grafana"]
    assert grafana["image"].startswith("grafana/grafana:11.")  # the schema grafana-foundation-sdk targets
    mounts = {m.split(":")[0]: m.split(":")[1] for m in grafana["volumes"] if m.startswith("./")}
    assert mounts["./dashboards/grafana/provisioning"] == "/etc/grafana/provisioning"
    provider = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/dashboards/turnout-watch.yaml").read_text(encoding="utf-8")
    )
    path = provider["providers"][0]["options"]["path"]
    assert mounts["./dashboards/grafana/dashboards"] == path  # where the provider looks for dashboard JSON
    for source in mounts:
        assert (ROOT / source).exists(), source
    datasource = yaml.safe_load(
        (ROOT / "dashboards/grafana/provisioning/datasources/prometheus.yaml").read_text(encoding="utf-8")
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    alertmanager = compose["services"]["alertmanager"]
    assert alertmanager["profiles"] == ["alertmanager"]
    config_mount = next(m for m in alertmanager["volumes"] if m.startswith("./"))
    assert (ROOT / config_mount.split(":")[0].removeprefix("./")).is_file()
    assert f"--config.file={config_mount.split(':')[1]}" in alertmanager["command"]
    prometheus = yaml.safe_load((ROOT / "dashboards/prometheus/prometheus.yml").read_text(encoding="utf-8"))
    targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"] and "9093:9093" in alertmanager["ports"]
    rule_mounts = [m for m in compose["services"]["prometheus"]["volumes"] if "rules.yml" in m]
    assert rule_mounts == ["./dashboards/prometheus/rules.yml:/etc/prometheus/rules.yml:ro"]
    assert prometheus["rule_files"] == ["rules.yml"]  # relative to /etc/prometheus/prometheus.yml


def test_dockerfile_copies_every_package() -> None:
    copied = set(re.findall(r"^COPY (\S+)", (ROOT / "Dockerfile").read_text(encoding="utf-8"), re.M))
    for package in ("turnout_watch", "ingest", "streams", "detectors", "dashboards", "data"):
        assert package in copied
        assert (ROOT / package).is_dir()
    assert "pyproject.toml" in copied
