"""One settings object: file < environment < command line."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from turnout_watch.core.errors import ConfigError
from turnout_watch.core.settings import Settings, load_settings


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


# Sources and their order (core/settings.py: Settings.settings_customise_sources)


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """No TURNOUT_WATCH_* or Kafka variable from the developer's shell leaks into a precedence test."""
    for name in list(os.environ):
        if name.upper().startswith("TURNOUT_WATCH_") or name.upper() in {"KAFKA_BOOTSTRAP_SERVERS", "BROKER"}:
            monkeypatch.delenv(name)
    return monkeypatch


@pytest.mark.parametrize(
    ("in_file", "in_env", "on_cli", "expected"),
    [
        (None, None, None, 9464),  # the default
        (9000, None, None, 9000),  # file over default
        (9000, "9100", None, 9100),  # environment over file
        (None, "9100", None, 9100),
        (9000, "9100", 9200, 9200),  # command line over both
        (9000, None, 9200, 9200),
        (None, None, 9200, 9200),
    ],
)
def test_each_source_beats_the_ones_below(
    tmp_path: Path,
    clean_env: pytest.MonkeyPatch,
    in_file: int | None,
    in_env: str | None,
    on_cli: int | None,
    expected: int,
) -> None:
    config = tmp_path / "tw.toml"
    config.write_text(f"metrics_port = {in_file}\n" if in_file is not None else "", encoding="utf-8")
    if in_env is not None:
        clean_env.setenv("TURNOUT_WATCH_METRICS_PORT", in_env)
    assert load_settings(config, metrics_port=on_cli).metrics_port == expected


def test_none_on_the_command_line_means_not_given(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tw.toml"
    config.write_text('history_dir = "past"\n', encoding="utf-8")
    clean_env.setenv("TURNOUT_WATCH_METRICS_PORT", "9100")
    settings = load_settings(config, metrics_port=None, history_dir=None)
    assert (settings.metrics_port, settings.history_dir) == (9100, Path("past"))


def test_broker_aliases_keep_the_same_order(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tw.toml"
    config.write_text('broker = "file:9092"\n', encoding="utf-8")
    assert load_settings(config).broker == "file:9092"
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "kafka:9092")
    assert load_settings(config).broker == "kafka:9092"
    assert load_settings(config, broker="cli:9092").broker == "cli:9092"
    clean_env.setenv("KAFKA_BOOTSTRAP_SERVERS", "")  # set but empty still beats the file: no external broker
    assert load_settings(config).broker == ""


def test_config_file_named_by_the_environment(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    named, other = tmp_path / "named.toml", tmp_path / "other.toml"
    named.write_text("partitions = 8\n", encoding="utf-8")
    other.write_text("partitions = 2\n", encoding="utf-8")
    clean_env.setenv("TURNOUT_WATCH_CONFIG", str(named))
    assert load_settings().partitions == 8
    assert load_settings(other).partitions == 2  # --config beats TURNOUT_WATCH_CONFIG


def test_a_plain_settings_reads_no_file(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    """The file's path is set for one load_settings call only, also when that call fails."""
    good, bad = tmp_path / "good.toml", tmp_path / "bad.toml"
    good.write_text("partitions = 8\n", encoding="utf-8")
    bad.write_text("partitions = 0\n", encoding="utf-8")
    assert load_settings(good).partitions == 8
    with pytest.raises(ConfigError):
        load_settings(bad)
    assert Settings().partitions == 4
    assert load_settings().partitions == 4


def test_a_directory_is_not_a_config_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="is not a file"):
        load_settings(tmp_path)


def test_every_bad_value_is_reported_at_once(tmp_path: Path, clean_env: pytest.MonkeyPatch) -> None:
    config = tmp_path / "tw.toml"
    config.write_text('metrics_port = "high"\n', encoding="utf-8")
    clean_env.setenv("TURNOUT_WATCH_PARTITIONS", "0")
    with pytest.raises(ConfigError, match="invalid settings") as error:
        load_settings(config)
    assert "metrics_port" in str(error.value) and "partitions" in str(error.value)
