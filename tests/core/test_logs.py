"""One logging setup: a command's level from -v, a worker's from its settings, with its pid on each line."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest

from turnout_watch.core.logs import FORMAT, WORKER_FORMAT, level_for, setup_logging


@pytest.fixture
def root() -> Iterator[logging.Logger]:
    """The root logger, handed back to pytest as it was (a worker's setup replaces its handlers)."""
    logger = logging.getLogger()
    handlers, level = logger.handlers[:], logger.level
    yield logger
    for handler in logger.handlers:
        if handler not in handlers:
            handler.close()
    logger.handlers[:] = handlers
    logger.setLevel(level)


@pytest.mark.parametrize(
    ("verbosity", "level"), [(0, logging.WARNING), (1, logging.INFO), (2, logging.DEBUG), (5, logging.DEBUG)]
)
def test_each_v_is_one_level_more(verbosity: int, level: int) -> None:
    assert level_for(verbosity) == level


def test_a_command_configures_an_unconfigured_root(root: logging.Logger) -> None:
    root.handlers.clear()
    setup_logging(1)
    assert root.level == logging.INFO
    [handler] = root.handlers
    assert handler.formatter is not None and handler.formatter._fmt == FORMAT


def test_a_command_leaves_a_configured_root_alone(root: logging.Logger) -> None:
    before = root.handlers[:]
    root.handlers.append(logging.NullHandler())
    setup_logging(2)
    assert root.handlers[: len(before)] == before and len(root.handlers) == len(before) + 1


def test_a_worker_replaces_the_commands_setup(root: logging.Logger) -> None:
    root.handlers.clear()  # pytest's own handlers stay open for the tests after this one
    setup_logging(0)
    [commands] = root.handlers
    setup_logging(2, level="info", worker=True)  # the setting's level wins over -v
    assert root.level == logging.INFO
    [handler] = root.handlers
    assert handler is not commands
    assert handler.formatter is not None and handler.formatter._fmt == WORKER_FORMAT
