"""Helpers of the reliability tests: private copies of the corpus and index, and real server processes.

Tests here damage, rebuild and reload indexes, so each gets its own copy of the session index (built
once by ``tests/conftest.py``) in a temporary folder. Servers run as subprocesses of the real CLI
(``forumqa serve``) on 127.0.0.1 so their memory and signals are their own.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag.config import Settings

FORUMQA = Path(sys.executable).with_name("forumqa")
SERVER_START_TIMEOUT = 180.0  # loading the models on a busy 2-core machine


def copy_index(source: Path, target: Path) -> None:
    """Copy a built index folder without its lock file."""
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(".lock", ".CURRENT.*"))


def private_settings(tmp_path: Path, settings: Settings, **overrides: object) -> Settings:
    """Settings over copies of the session's corpus and built index, in ``tmp_path``."""
    corpus, index = tmp_path / "corpus", tmp_path / "index"
    shutil.copytree(settings.corpus_dir, corpus)
    for path in corpus.iterdir():  # the repository's report is read-only; copies must be editable
        path.chmod(0o644)
    copy_index(settings.index_dir, index)
    return settings.model_copy(update={"corpus_dir": corpus, "index_dir": index, **overrides})


def clean_env(**extra: str) -> dict[str, str]:
    """The environment for a child process: no FORUMQA_* from the developer's shell, models offline."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUMQA_")}
    env.update(HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.update(extra)
    return env


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class ServerProcess:
    """``forumqa serve`` on 127.0.0.1 in a subprocess; stopped (and if need be killed) on exit."""

    def __init__(self, settings: Settings, log_path: Path, env: dict[str, str] | None = None) -> None:
        self.settings = settings
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        self._log = log_path.open("wb")
        command = [str(FORUMQA), "serve", "--corpus-dir", str(settings.corpus_dir),
                   "--index-dir", str(settings.index_dir), "--host", "127.0.0.1", "--port", str(self.port)]
        self.process = subprocess.Popen(command, stdout=self._log, stderr=subprocess.STDOUT,
                                        env=env or clean_env(), start_new_session=True)

    @property
    def pid(self) -> int:
        return self.process.pid

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, timeout: float = SERVER_START_TIMEOUT) -> dict[str, object]:
        """Poll /readyz until 200; fail with the server's log if it dies, fails to load or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                pytest.fail(f"server exited with {self.process.returncode}:\n{self.log()[-4000:]}")
            try:
                response = httpx.get(self.url + "/readyz", timeout=5)
                if response.status_code == 200:
                    return dict(response.json())
                if response.json().get("status") == "failed":
                    pytest.fail(f"server failed to load: {response.text}\n{self.log()[-4000:]}")
            except httpx.TransportError:
                pass
            time.sleep(0.5)
        pytest.fail(f"server not ready after {timeout:.0f}s:\n{self.log()[-4000:]}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self._log.close()

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


