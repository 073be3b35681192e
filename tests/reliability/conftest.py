"""Fixtures of the reliability tests (helpers in :mod:`support`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from rag.config import Settings
from rag.qa import ForumQA

from .support import ServerProcess, private_settings


@pytest.fixture
def private(tmp_path: Path, settings: Settings, qa: ForumQA) -> Settings:
    """A corpus and a complete index of this test's own (``qa`` guarantees the session index is built)."""
    return private_settings(tmp_path, settings)


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator[Callable[..., ServerProcess]]:
    """``start_server(settings, env=None)`` starts a server; every one is stopped when the test ends."""
    started: list[ServerProcess] = []

    def start(settings: Settings, env: dict[str, str] | None = None) -> ServerProcess:
        server = ServerProcess(settings, tmp_path / f"server-{len(started)}.log", env)
        started.append(server)
        return server

    yield start
    for server in started:
        server.stop()
