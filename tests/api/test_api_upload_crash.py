"""A server killed (SIGKILL) in the middle of the background build after an upload loses nothing.

A real ``forumqa serve`` process over a private copy of the session's corpus and index: the upload is
accepted, the process is killed while its builder runs, and a new server started on the same folders
rebuilds (the corpus hash no longer matches the serving build) and cites the uploaded document.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from core_support import copy_workspace

from rag.config import Settings
from rag.index.build import current_build_dir
from rag.qa import ForumQA

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT = 600  # loading three models on a busy two-core machine
DOCUMENT = (
    b"Songdo International City\n\n"
    b"Songdo International City is built on land reclaimed from the Yellow Sea near Incheon. Its central "
    b"park covers 41 hectares and was finished in 2009.\n"
)
DOC_ID = "songdo-international-city"
QUESTION = "How large is the central park of Songdo International City?"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Server:
    """``python -m rag.cli serve`` in its own process group, on a free port."""

    def __init__(self, workspace: Settings, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, "FORUMQA_ALLOW_UPLOADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--corpus-dir", str(workspace.corpus_dir),
             "--index-dir", str(workspace.index_dir), "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"the server exited with {self.process.returncode}"
            try:
                if httpx.get(self.url + "/readyz", timeout=5).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        raise AssertionError("the server did not become ready")

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(30)
        self.log.close()


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
    # Kill while the builder is embedding: well before the build could finish and be swapped in.
    deadline = time.monotonic() + 60
    while httpx.get(first.url + "/api/index/status", timeout=10).json()["phase"] != "building the index":
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
    assert not list((workspace.index_dir / "builds").glob(".tmp-*"))  # the dead build's remains are gone
    status = httpx.get(second.url + "/api/index/status", timeout=10).json()
    assert status["pending"] == {"added": [], "removed": []}
    answer = httpx.post(second.url + "/api/answer", json={"question": QUESTION}, timeout=60).json()
    assert answer["citations"][0]["doc_id"] == DOC_ID
    assert "41 hectares" in answer["answer"]
