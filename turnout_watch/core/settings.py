"""One settings object for every command, read from (highest first) CLI flags, environment, a TOML file.

Environment variables are `TURNOUT_WATCH_<FIELD>` (e.g. `TURNOUT_WATCH_METRICS_PORT=9464`); the broker
also honours the Kafka-ecosystem convention `KAFKA_BOOTSTRAP_SERVERS`. The config file is named by
`--config` or `TURNOUT_WATCH_CONFIG` and holds the same field names at top level.

Each of the three is one of pydantic-settings' own sources, ordered in `Settings.settings_customise_sources`:
the command line's values are the init kwargs, then `EnvSettingsSource`, then `TomlConfigSettingsSource`;
fields none of them sets keep their defaults.
"""

from __future__ import annotations

import os
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, ValidationError
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from turnout_watch.core.errors import ConfigError

__all__ = ["SHIPPED_ELECTIONS", "Settings", "load_settings"]

#: The shipped day files: data/elections in a checkout (or an editable install); in a wheel the same files are
#: package data of `turnout_watch.elections` (pyproject.toml maps the folder to that package).
_CHECKOUT_ELECTIONS = Path(__file__).resolve().parents[2] / "data" / "elections"
SHIPPED_ELECTIONS = (
    _CHECKOUT_ELECTIONS if _CHECKOUT_ELECTIONS.is_dir() else Path(__file__).resolve().parents[1] / "elections"
)

#: The TOML file the Settings being built reads. pydantic-settings takes a TOML source's path from the class,
#: not from the call (pydantic/pydantic-settings#259), so `load_settings` sets it for one construction; a
#: plain `Settings()` reads no file.
_config_file: ContextVar[Path | None] = ContextVar("turnout_watch_config_file", default=None)


class Settings(BaseSettings):
    """Where the broker is, how topics are laid out, how the Faust worker behaves, where metrics go."""

    model_config = SettingsConfigDict(env_prefix="TURNOUT_WATCH_", extra="forbid", populate_by_name=True)

    broker: str | None = Field(
        default=None,
        validation_alias=AliasChoices("broker", "TURNOUT_WATCH_BROKER", "KAFKA_BOOTSTRAP_SERVERS"),
        description="Kafka bootstrap servers (host:port[,host:port]); unset = start the embedded tansu broker",
    )
    app_id: str = Field("turnout-watch", description="Faust app id: consumer group and internal topic prefix")
    topic_prefix: str = Field("tw.", description="prefix of every topic this deployment uses")
    partitions: int = Field(4, ge=1, le=1024, description="partitions of every keyed topic (one value for all)")
    metrics_host: str = Field("127.0.0.1", description="interface the worker serves /metrics on")
    metrics_port: int = Field(9464, ge=0, le=65535, description="port of the worker's /metrics (0 = any free)")
    batch_size: int = Field(5000, ge=1, description="max events per agent batch (stream.take)")
    batch_within: float = Field(0.05, gt=0, description="max seconds an agent waits to fill a batch")
    fetch_max_wait: float = Field(
        0.05,
        gt=0,
        le=30,
        description=(
            "max seconds a worker's consumer fetch waits for data (Faust hard-codes 1.5). tansu holds a fetch of a "
            "quiet partition for all of it, so it bounds how late an idle worker sees a record; Kafka answers "
            "as soon as data arrives"
        ),
    )
    session_timeout: float = Field(6.0, gt=0, description="consumer session timeout, seconds (startup speed)")
    heartbeat_interval: float = Field(0.5, gt=0, description="consumer heartbeat interval, seconds")
    rebalance_timeout: float = Field(6.0, gt=0, description="consumer rebalance timeout, seconds")
    reset_check_interval: float = Field(
        5.0, gt=0, description="seconds between a worker's checks that the broker still holds what it read"
    )
    worker_log_level: str = Field("warning", description="log level of the Faust worker")
    timezone: str = Field("Asia/Almaty", description="IANA zone the watch room reads times in (station flags)")
    history_dir: Path | None = Field(
        SHIPPED_ELECTIONS,
        description="past day files the expected-curve detector learns from (the watched election excluded)",
    )
    data_dir: Path = Field(Path("run"), description="working files: Faust data dir, broker and worker logs")
    observers_host: str = Field("127.0.0.1", description="interface the observer intake API listens on")
    observers_port: int = Field(8080, ge=0, le=65535, description="port of the observer intake API (0 = any free)")
    observers_db: Path | None = Field(
        None, description="SQLite file of stations, tokens and accepted reports; unset = DATA_DIR/observers.sqlite3"
    )
    observers_day: Path | None = Field(
        None, description="day file whose first line (the election) says which election the intake accepts counts for"
    )
    observers_spool_dir: Path | None = Field(
        None, description="where reports wait, fsync'd, while the broker is down; unset = DATA_DIR/spool"
    )
    observers_rate: float = Field(5.0, gt=0, description="requests per second each token may make (sustained)")
    observers_burst: int = Field(30, ge=1, description="requests a token may make at once before the rate applies")
    observers_max_body: int = Field(1_048_576, ge=1024, description="largest request body accepted, bytes")
    observers_max_batch: int = Field(1000, ge=1, description="most counts in one request (JSON batch or CSV)")
    observers_publish_timeout: float = Field(
        3.0, gt=0, description="seconds to wait for the broker's acks=all before spooling a report instead"
    )
    grafana_url: str | None = Field(
        None,
        description="Grafana base URL; set (with grafana_token) to annotate each release and critical flag",
    )
    grafana_token: SecretStr | None = Field(None, description="Grafana service-account token for the annotations")
    grafana_timeout: float = Field(
        5.0, gt=0, description="seconds one annotation post may take before it counts as failed"
    )
    grafana_queue: int = Field(
        1000, ge=1, description="annotations waiting for Grafana before new ones are dropped (and counted)"
    )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        """Highest first: the command line (init kwargs), the environment, the TOML file. No .env, no secrets dir."""
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=_config_file.get()))

    @property
    def external_broker(self) -> bool:
        return bool(self.broker)


def load_settings(config: Path | str | None = None, **overrides: Any) -> Settings:
    """Build Settings from the command line's values (`overrides`; None = not given), the environment and
    a TOML file (`config`, else `TURNOUT_WATCH_CONFIG`, else none). Any problem is one ConfigError."""
    path = config or os.environ.get("TURNOUT_WATCH_CONFIG")
    file = Path(path) if path else None
    if file is not None and not file.is_file():
        # The TOML source skips a missing file silently; a file the user named must exist.
        raise ConfigError(
            f"config file not found: {path}" if not file.exists() else f"config file {path} is not a file"
        )
    token = _config_file.set(file)
    try:
        return Settings(**{k: v for k, v in overrides.items() if v is not None})
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    except ValidationError as exc:
        raise ConfigError(f"invalid settings: {exc}") from exc
    finally:
        _config_file.reset(token)
