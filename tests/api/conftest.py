"""Fixtures of the HTTP API tests: the app over the session's ForumQA, in-process and on a real socket."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA

DEV_SET = Path(__file__).resolve().parents[2] / "eval" / "dev.jsonl"  # as in tests/conftest.py


@pytest.fixture(scope="session")
def app(settings: Settings, qa: ForumQA) -> FastAPI:
    return create_app(settings, qa)


@pytest.fixture(scope="session")
def client(app: FastAPI) -> Iterator[TestClient]:
    """In-process client; entering it runs the app's lifespan like a server would."""
    with TestClient(app) as client:
        yield client


@pytest.fixture(scope="session")
def live_url(settings: Settings, qa: ForumQA) -> Iterator[str]:
    """Base URL of a real uvicorn serving its own app instance on a loopback port."""
    with LiveServer(create_app(settings, qa)) as server:
        yield server.url


@pytest.fixture(scope="session")
def dev_items() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
