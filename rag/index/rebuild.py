"""Background rebuilds: after documents are added or removed, one thread rebuilds the index and swaps.

:meth:`Rebuilder.request` returns at once. A single builder thread runs :func:`rag.index.build.build_index`,
which builds in stages and publishes (repoints ``CURRENT`` atomically) as soon as the index answers
(text, chunks, BM25, MiniLM) and again after each slower model (e5, USE); after each publication the
``swap`` callback (``ForumQA.reload``) serves it. The previous build serves every request meanwhile.
Requests that arrive while a build runs are coalesced into one more build after it; one arriving during
a slow model stage cancels that stage between batches (its vectors are already in the cache), so a new
document becomes answerable without waiting for the last one's e5 and USE vectors.

Nothing is lost if the process dies mid-build: the documents are already in the corpus folder, the
half-written build is a ``builds/.tmp-*`` folder that the next build deletes, and the next start finds
the corpus hash changed and builds (:func:`rag.index.build.ensure_index`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from rag.config import Settings
from rag.index.build import StageStatus, build_index

log = logging.getLogger(__name__)

State = Literal["idle", "building", "failed"]


@dataclass(frozen=True, slots=True)
class BuildStatus:
    """What the builder is doing, for the status endpoint and the page."""

    state: State
    phase: str | None  # "building the index", "loading the new index"; None when idle
    done: int | None  # progress of the running stage (texts or documents)
    total: int | None
    queued: int  # changes waiting for the build after the current one
    builds: int  # builds finished (successfully) by this process's builder
    build_id: str | None  # the last build this builder made
    last_error: str | None
    started_at: float | None  # Unix time the current (or last) build started
    seconds: float | None  # how long the last finished build took
    # The stages of the running (or last) build: name, state, done, total, rate, seconds.
    stages: list[StageStatus] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "stages": [s.to_dict() for s in self.stages]}


class Rebuilder:
    """Runs rebuilds one at a time in a daemon thread; ``swap`` is called after each successful build."""

    def __init__(
        self,
        settings: Settings,
        swap: Callable[[], object],
        build: Callable[..., Any] | None = None,
    ) -> None:
        self.settings = settings
        self._swap = swap
        # Called as build(settings, on_stage=..., on_publish=..., should_stop=...): build_index's keywords.
        self._build = build or (lambda s, **kw: build_index(s, progress=False, **kw))
        self._cond = threading.Condition()
        self._requested = 0  # requests received
        self._taken = 0  # requests covered by the build running or finished
        self._thread: threading.Thread | None = None
        self._state: State = "idle"
        self._phase: str | None = None
        self._builds = 0
        self._build_id: str | None = None
        self._error: str | None = None
        self._started: float | None = None
        self._seconds: float | None = None
        self._stages: list[StageStatus] = []

    def request(self) -> BuildStatus:
        """Ask for a rebuild covering every change made so far; returns the status right after."""
        with self._cond:
            self._requested += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="forumqa-rebuild", daemon=True)
                self._state, self._phase = "building", "waiting to start"
                self._thread.start()
            return self._status_locked()

    def status(self) -> BuildStatus:
        with self._cond:
            return self._status_locked()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until no build is running or queued; False on timeout (for the CLI and tests)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._thread is not None:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return True

    def _status_locked(self) -> BuildStatus:
        running = self._thread is not None
        stage = next((s for s in self._stages if s.state == "running"), None) if running else None
        return BuildStatus(
            state=self._state,
            phase=self._phase if running else None,
            done=stage.done if stage is not None else None,
            total=stage.total if stage is not None else None,
            queued=self._requested - self._taken,
            builds=self._builds,
            build_id=self._build_id,
            last_error=self._error,
            started_at=self._started,
            seconds=self._seconds,
            stages=list(self._stages),
        )

    def _set_phase(self, phase: str) -> None:
        with self._cond:
            self._phase = phase

    def _on_stage(self, stages: list[StageStatus]) -> None:
        with self._cond:
            self._stages = stages
            running = next((s.name for s in stages if s.state == "running"), None)
            if running is not None:
                self._phase = f"building the index: {running}"

    def _on_publish(self, build_dir: Path) -> None:
        """A stage's build is current: serve it now (a failure here fails the build, reported)."""
        self._set_phase("loading the new index")
        self._swap()
        with self._cond:
            self._build_id = build_dir.name

    def _newer_request(self) -> bool:
        with self._cond:
            return self._requested > self._taken

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._taken == self._requested:
                    # Nothing left: the thread ends; the next request starts a new one.
                    self._thread = None
                    if self._state == "building":
                        self._state = "idle"
                    self._phase = None
                    self._cond.notify_all()
                    return
                self._taken = self._requested
                self._state, self._phase, self._started = "building", "building the index", time.time()
            began = time.perf_counter()
            try:
                report = self._build(
                    self.settings,
                    on_stage=self._on_stage,
                    on_publish=self._on_publish,
                    should_stop=self._newer_request,
                )
                if not getattr(report, "rebuilt", True):
                    # Nothing to build here: another process may have built it; serve the newest.
                    self._set_phase("loading the new index")
                    self._swap()
            except Exception as exc:  # a failed build leaves the old index serving; the status says why
                log.exception("background rebuild failed; still serving the previous index")
                with self._cond:
                    self._state, self._error = "failed", f"{type(exc).__name__}: {exc}"
                    self._seconds = time.perf_counter() - began
                continue
            with self._cond:
                self._state, self._error = "building", None  # "idle" once nothing is queued
                self._builds += 1
                self._seconds = time.perf_counter() - began
                build_dir = getattr(report, "build_dir", None)
                self._build_id = build_dir.name if build_dir is not None else None
            log.info("background rebuild done in %.1fs", self._seconds)
