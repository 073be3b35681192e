"""A real uvicorn server on a free loopback port, in a background thread, for HTTP and browser tests.

Running in-process lets the tests hand the app the session's already-loaded ForumQA, so the models
load once; the requests still go through real sockets, uvicorn and the whole ASGI stack.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType

import uvicorn
from fastapi import FastAPI


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
