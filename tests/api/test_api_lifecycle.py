"""Liveness and readiness while the index loads, the pid file, SIGHUP reload, and the docs."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from server_support import LiveServer

from api import lifecycle
from api.main import create_app
from rag.config import Settings
from rag.index import servers
from rag.qa import ForumQA


def test_healthz_and_readyz_when_loaded(client: TestClient, qa: ForumQA) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json() == {"status": "ok", "build_id": qa.index.build_id}


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
        assert http.get("/readyz").json()["build_id"] == qa.index.build_id
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


def test_the_server_lists_its_pid_while_it_runs(settings: Settings, qa: ForumQA, tmp_path: Path) -> None:
    own = Settings(corpus_dir=settings.corpus_dir, index_dir=tmp_path)
    pid_file = tmp_path / "server.pid"
    with TestClient(create_app(own, qa)):
        assert str(os.getpid()) in pid_file.read_text().split()
    assert not pid_file.exists()  # the last server out removes the file: `forumqa reload` finds none


def test_register_keeps_live_servers_and_drops_dead_ones(tmp_path: Path) -> None:
    dead = 2**22 + 12345  # above the kernel's default pid_max, so no process has it
    (tmp_path / "server.pid").write_text(f"{dead}\n{os.getppid()}\n")
    servers.register_pid(tmp_path, os.getpid())
    assert (tmp_path / "server.pid").read_text().split() == [str(os.getppid()), str(os.getpid())]
    servers.unregister_pid(tmp_path, os.getpid())
    assert (tmp_path / "server.pid").read_text().split() == [str(os.getppid())]


def test_sighup_runs_reload_in_the_background() -> None:
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("signal handlers can only be installed from the main thread")
    reloaded = threading.Event()

    def reload() -> bool:
        reloaded.set()
        return False

    restore = lifecycle.install_reload_on_sighup(reload)
    try:
        os.kill(os.getpid(), signal.SIGHUP)
        assert reloaded.wait(10)
    finally:
        restore()
    assert signal.getsignal(signal.SIGHUP) is not None


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
