"""Fixtures of the CLI tests: the shells a test starts are always stopped."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from shell_helpers import Session


@pytest.fixture
def sessions() -> Iterator[list[Session]]:
    """Shells started by a test; any still running at the end is killed."""
    started: list[Session] = []
    yield started
    for session in started:
        session.close()
