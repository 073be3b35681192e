"""A real uvicorn server on a free loopback port, in a background thread, for HTTP and browser tests.

Running in-process lets the tests hand the app the session's already-loaded ForumQA, so the models
load once; the requests still go through real sockets, uvicorn and the whole ASGI stack.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from types import TracebackType

import httpx
import uvicorn
from fastapi import FastAPI

from rag.config import Settings

ROOT = Path(__file__).resolve().parents[1]


class LiveServer:
    """``with LiveServer(app) as server: httpx.get(server.url + "/healthz")``."""

    def __init__(self, app: FastAPI, startup_timeout: float = 30.0) -> None:
        # Port 0: the OS picks a free port, so parallel runs on one machine never collide.
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, name="live-server", daemon=True)
        self.startup_timeout = startup_timeout
        self.url = ""

    def __enter__(self) -> LiveServer:
        self.thread.start()
        deadline = time.monotonic() + self.startup_timeout
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=15)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServeProcess:
    """``python -m rag.cli serve`` in its own process group, on a free port, uploads allowed: for tests
    that kill the server (SIGKILL) and start another on the same folders."""

    def __init__(self, workspace: Settings, log: Path, start_timeout: float = 600.0) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.start_timeout = start_timeout  # loading three models on a busy two-core machine
        env = {**os.environ, "FORUMQA_ALLOW_UPLOADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(ROOT)}
        env["FORUMQA_EMBEDDERS"] = json.dumps(workspace.embedders)
        self.log = log.open("ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "rag.cli", "serve", "--corpus-dir", str(workspace.corpus_dir),
             "--index-dir", str(workspace.index_dir), "--port", str(self.port)],
            cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + self.start_timeout
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
