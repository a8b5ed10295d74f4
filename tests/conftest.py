"""Shared fixtures: paths to shipped data, one real tansu broker per session."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from turnout_watch.core.settings import Settings, load_settings
from turnout_watch.services.broker import EmbeddedBroker, free_port, launch_broker

ROOT = Path(__file__).resolve().parents[1]
ELECTIONS = ROOT / "data" / "elections"
DAY_2022 = ELECTIONS / "kz-2022-11-20-presidential.jsonl"
DAY_2023 = ELECTIONS / "kz-2023-03-19-majilis.jsonl"


def shared_data() -> Path:
    """shared/data beside the clone (as CI lays it out), or TURNOUT_WATCH_SHARED_DATA."""
    path = Path(os.environ.get("TURNOUT_WATCH_SHARED_DATA", ROOT.parent / "shared" / "data"))
    if not path.is_dir():
        raise RuntimeError(f"shared data not found at {path}; set TURNOUT_WATCH_SHARED_DATA")
    return path


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedBroker]:
    """The real tansu broker, started once for the session; tests name their own topics and groups."""
    log = tmp_path_factory.mktemp("broker") / "tansu.log"
    running = launch_broker(log_path=log)
    yield running
    running.stop()


def isolated_settings(bootstrap: str, data_dir: Path, **extra: Any) -> Settings:
    """Settings for one test on the shared session broker: its own topics, consumer group and ports."""
    unique = uuid.uuid4().hex[:10]
    chosen: dict[str, Any] = {"metrics_port": free_port(), **extra}
    return load_settings(
        broker=bootstrap, topic_prefix=f"t{unique}.", app_id=f"tw-{unique}", data_dir=data_dir, **chosen
    )


@pytest.fixture
def unique() -> str:
    """A fresh suffix for topic prefixes and consumer groups, so tests never share state on the broker."""
    return uuid.uuid4().hex[:10]
