"""Fixtures of the observer intake tests (helpers in `tests/support/intake.py`).

`offline` is the fast loop's intake: settings whose broker refuses every connection, so the app starts,
answers and makes each accepted count durable in its spool, with no broker process at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.intake import make_settings, unreachable_broker
from turnout_watch.core.settings import Settings


@pytest.fixture
def no_broker() -> Iterator[str]:
    with unreachable_broker() as address:
        yield address


@pytest.fixture
def offline(no_broker: str, tmp_path: Path) -> Settings:
    return make_settings(no_broker, tmp_path)
