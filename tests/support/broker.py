"""Pytest plugin: one real tansu broker per session; per-test topics, consumer groups and ports.

Any test that uses the broker (directly or through another fixture) is marked `integration`, so
`pytest -m "not integration"` is the fast loop that needs no broker.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from turnout_watch.core.settings import Settings, load_settings
from turnout_watch.services.broker import EmbeddedBroker, free_port, launch_broker


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


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "broker" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.integration)
