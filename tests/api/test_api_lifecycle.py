"""Liveness and readiness while the index loads, following the store (no pid file, no signal), the
docs."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
from core_support import copy_workspace
from fastapi.testclient import TestClient
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.index.build import build_index
from rag.qa import ForumQA


def test_healthz_and_readyz_when_loaded(client: TestClient, qa: ForumQA) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "build_id": qa.index.version}


def test_readyz_is_503_until_loaded_while_healthz_answers(settings: Settings, qa: ForumQA) -> None:
    """The load runs in a thread, so the server is up (and says it is not ready) meanwhile."""
    gate = threading.Event()

    def slow_open(s: Settings) -> ForumQA:
        assert gate.wait(60), "the test never opened the gate"
        return ForumQA.open(s, progress=False)  # the real open: the index exists, the models are cached

    app = create_app(settings, loader=slow_open)
    with LiveServer(app) as server, httpx.Client(base_url=server.url, timeout=10) as http:
        assert http.get("/healthz").status_code == 200
        loading = http.get("/readyz")
        assert loading.status_code == 503
        assert loading.json()["status"] == "loading"
        refused = http.post("/api/answer", json={"question": "When did the forum take place?"})
        assert refused.status_code == 503
        assert refused.json()["error"]["type"] == "unavailable"
        assert refused.headers["retry-after"]

        gate.set()
        deadline = time.monotonic() + 60
        while http.get("/readyz").status_code != 200:
            assert time.monotonic() < deadline, "never became ready"
            time.sleep(0.05)
        assert http.get("/readyz").json()["build_id"] == qa.index.version
        answered = http.post("/api/answer", json={"question": "When did the forum take place?"})
        assert answered.status_code == 200


def test_a_failed_load_is_reported_not_hidden(tmp_path: Path) -> None:
    empty = tmp_path / "empty-corpus"
    empty.mkdir()
    app = create_app(Settings(corpus_dir=empty, index_dir=tmp_path / "index"))
    with TestClient(app) as client:
        deadline = time.monotonic() + 60
        while (ready := client.get("/readyz").json())["status"] == "loading":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert ready["status"] == "failed"
        assert client.get("/readyz").status_code == 503
        response = client.post("/api/answer", json={"question": "When?"})
        assert response.status_code == 503
        assert "failed to load" in response.json()["error"]["message"]
        assert client.get("/healthz").status_code == 200


def test_every_server_follows_the_published_build_and_stops_its_threads(
    settings: Settings, qa: ForumQA, tmp_path: Path
) -> None:
    """A build published by another process (`forumqa reload`, another worker's upload) is served within
    a poll of index/CURRENT; no pid file is written; the app's threads end with it."""
    workspace = copy_workspace(settings, tmp_path).model_copy(update={"poll_seconds": 0.2})
    mine = ForumQA(workspace, qa.index, reader=qa.reader)
    before = {t.name for t in threading.enumerate()}
    with TestClient(create_app(workspace, mine)) as client:
        assert client.get("/readyz").json()["build_id"] == qa.index.version
        report = build_index(workspace, force=True, progress=False)  # as another process would
        deadline = time.monotonic() + 30
        while client.get("/readyz").json()["build_id"] != report.build_dir.name:
            assert time.monotonic() < deadline, "the new build was not picked up"
            time.sleep(0.05)
        assert not (workspace.index_dir / "server.pid").exists()
        assert "forumqa-follow" in {t.name for t in threading.enumerate()}
    deadline = time.monotonic() + 10
    while {t.name for t in threading.enumerate() if t.name.startswith("forumqa-")} - before:
        assert time.monotonic() < deadline, "the app's threads did not stop"
        time.sleep(0.05)


def test_openapi_docs_have_examples(client: TestClient) -> None:
    assert client.get("/docs").status_code == 200
    schema = client.get("/openapi.json").json()
    paths = schema["paths"]
    for path in ("/api/answer", "/api/search", "/api/documents", "/api/documents/{doc_id}",
                 "/v1/chat/completions", "/v1/models", "/healthz", "/readyz"):
        assert path in paths
    components = schema["components"]["schemas"]
    assert components["AnswerRequest"]["examples"][0]["question"]
    assert components["AnswerResponse"]["examples"][0]["citations"]
    assert "ErrorResponse" in components
