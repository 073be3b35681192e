"""A server killed (SIGKILL) in the middle of the background build after an upload loses nothing.

A real ``forumqa serve`` process over a private copy of the session's corpus and index: the upload is
accepted, the process is killed while its builder runs, and a new server started on the same folders
rebuilds (the corpus hash no longer matches the serving build) and cites the uploaded document.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from core_support import copy_workspace
from server_support import ServeProcess as Server

from rag.config import Settings
from rag.index.publish import current_build_dir
from rag.qa import ForumQA

DOCUMENT = (
    b"Songdo International City\n\n"
    b"Songdo International City is built on land reclaimed from the Yellow Sea near Incheon. Its central "
    b"park covers 41 hectares and was finished in 2009.\n"
)
DOC_ID = "songdo-international-city"
QUESTION = "How large is the central park of Songdo International City?"


@pytest.fixture
def workspace(settings: Settings, qa: ForumQA, tmp_path: Path) -> Settings:
    return copy_workspace(settings, tmp_path)


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    started: list[Server] = []
    yield started
    for server in started:
        server.kill()


def test_a_crash_mid_build_loses_nothing(workspace: Settings, servers: list[Server], tmp_path: Path) -> None:
    first = Server(workspace, tmp_path / "server.log")
    servers.append(first)
    first.wait_ready()
    serving = current_build_dir(workspace.index_dir)
    assert serving is not None

    response = httpx.post(first.url + "/api/documents", files={"file": ("songdo.txt", DOCUMENT)}, timeout=60)
    assert response.status_code == 202, response.text
    # Kill as soon as the builder starts: before its first (answerable) stage could be swapped in. A kill
    # in a later stage is tests/api/test_api_staged.py's.
    deadline = time.monotonic() + 60
    while not str(httpx.get(first.url + "/api/index/status", timeout=10).json()["phase"]).startswith(
        "building the index"
    ):
        assert time.monotonic() < deadline, "the build never started"
        time.sleep(0.05)
    first.kill()

    # The document is in the corpus, whole; the index still points at the complete previous build.
    assert (workspace.corpus_dir / f"{DOC_ID}.txt").read_bytes() == DOCUMENT
    assert current_build_dir(workspace.index_dir) == serving

    second = Server(workspace, tmp_path / "server.log")
    servers.append(second)
    second.wait_ready()  # `serve` rebuilds first: the corpus no longer matches the build
    assert b"index needs a build: corpus hash changed" in (tmp_path / "server.log").read_bytes()
    assert current_build_dir(workspace.index_dir) != serving
    # It serves once answerable and adds e5 and USE in the background: wait for those stages, whose
    # own temporary folder is live meanwhile.
    deadline = time.monotonic() + 600
    while True:
        status = httpx.get(second.url + "/api/index/status", timeout=10).json()
        if status["state"] == "idle" and all(s["state"] == "done" for s in status["stages"]):
            break
        assert time.monotonic() < deadline, status
        time.sleep(0.5)
    assert not list((workspace.index_dir / "builds").glob(".tmp-*"))  # the dead build's remains are gone
    assert status["pending"] == {"added": [], "removed": []}
    answer = httpx.post(second.url + "/api/answer", json={"question": QUESTION}, timeout=60).json()
    assert answer["citations"][0]["doc_id"] == DOC_ID
    assert "41 hectares" in answer["answer"]
