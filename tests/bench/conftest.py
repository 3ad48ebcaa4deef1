"""The `bench` marker (registered here, next to its only user)."""

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "bench: runs every bench/ script tiny (they stay runnable; no figure asserted)"
    )
