"""One settings object: file < environment < command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from turnout_watch.core.errors import ConfigError
from turnout_watch.core.settings import load_settings


def test_defaults_mean_embedded_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KAFKA_BOOTSTRAP_SERVERS", raising=False)
    monkeypatch.delenv("TURNOUT_WATCH_BROKER", raising=False)
    settings = load_settings()
    assert settings.broker is None and not settings.external_broker
    assert settings.metrics_port == 9464


def test_kafka_bootstrap_servers_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    assert load_settings().broker == "kafka:9092"
    assert load_settings(broker="other:9092").broker == "other:9092"


def test_file_then_env_then_flags(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tw.toml"
    config.write_text('partitions = 8\nmetrics_port = 9000\ntopic_prefix = "x."\n', encoding="utf-8")
    monkeypatch.setenv("TURNOUT_WATCH_METRICS_PORT", "9100")
    settings = load_settings(config, topic_prefix="y.")
    assert (settings.partitions, settings.metrics_port, settings.topic_prefix) == (8, 9100, "y.")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("partitions = 0", "invalid settings"),
        ("no_such_setting = 1", "invalid settings"),
        ("partitions = ", "not valid TOML"),
    ],
)
def test_bad_config_is_a_clear_error(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "tw.toml"
    config.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError, match=message):
        load_settings(config)


def test_missing_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_settings(tmp_path / "missing.toml")
