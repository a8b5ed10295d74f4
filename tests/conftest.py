"""Fixtures live in `tests/support/` and are registered here as plugins; helpers are imported from there."""

pytest_plugins = ["tests.support.broker"]
