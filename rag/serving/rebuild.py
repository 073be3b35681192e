"""The background builder: one thread that runs a store's build whenever one is asked for, and its status.

:meth:`Rebuilder.request` returns at once. A single thread runs the build (the file store's
:func:`rag.index.build.build_index`; the database store's embedding jobs), which calls ``on_publish``
each time it makes something new servable; the ``swap`` callback (``ForumQA.reload``) then serves it.
Requests that arrive while a build runs are coalesced into one more build after it, and a build asked to
stop (``should_stop``: a newer request, or :meth:`Rebuilder.stop`) stops between batches.

Nothing is lost if the process dies mid-build: the store holds the change already, and the vectors made
so far are kept; the next build (or start) carries on.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from rag.config import Settings
from rag.index.stages import StageStatus

log = logging.getLogger(__name__)

State = Literal["loading", "idle", "building", "failed"]


@dataclass(frozen=True, slots=True)
class DocumentFailure:
    """A document one of whose models failed for good (the database store gives up after a few tries)."""

    doc_id: str
    model: str
    attempts: int
    error: str


@dataclass(frozen=True, slots=True)
class BuildStatus:
    """What the store is building and how what it serves differs from what it holds: the one status
    model, read by ``GET /api/index/status`` (filled from these attributes), the page and the CLI."""

    state: State
    phase: str | None = None  # "building the index: e5", "loading the new index"; None when idle
    done: int | None = None  # progress of the running stage (texts or documents)
    total: int | None = None
    queued: int = 0  # changes (or jobs) waiting for the build after the current one
    builds: int = 0  # builds finished (successfully) by this process's builder
    last_build_id: str | None = None  # the last build this builder made
    last_error: str | None = None
    started_at: float | None = None  # Unix time the current (or last) build started
    seconds: float | None = None  # how long the last finished build took
    # The stages of the running (or last) build: name, state, done, total, rate, seconds.
    stages: list[StageStatus] = field(default_factory=list)
    # Filled by the store: document ids held but not served yet (added) and served but gone (removed).
    pending: Mapping[str, list[str]] = field(default_factory=lambda: {"added": [], "removed": []})
    documents: int = 0  # documents the serving index holds
    serving_build_id: str | None = None
    # Per served document, the models it still lacks (it answers with the others meanwhile).
    embedding: Mapping[str, list[str]] = field(default_factory=dict)
    failed: list[DocumentFailure] = field(default_factory=list)


Build = Callable[..., Any]


class Rebuilder:
    """Runs builds one at a time in a daemon thread; ``swap`` is called after each publication.

    ``build`` is called as ``build(settings, on_stage=..., on_publish=..., should_stop=...)`` and may
    return a report with ``rebuilt`` (False: nothing was built here) and ``build_dir``.
    """

    def __init__(self, settings: Settings, swap: Callable[[], object], build: Build | None = None,
                 name: str = "forumqa-rebuild") -> None:
        self.settings = settings
        self._swap = swap
        if build is None:
            from rag.index.build import build_index

            def build(s: Settings, **kw: Any) -> Any:
                return build_index(s, progress=False, **kw)

        self._build: Build = build
        self._name = name
        self._cond = threading.Condition()
        self._requested = 0  # requests received
        self._taken = 0  # requests covered by the build running or finished
        self._thread: threading.Thread | None = None
        self._stopping = False
        self._state: State = "idle"
        self._phase: str | None = None
        self._builds = 0
        self._build_id: str | None = None
        self._error: str | None = None
        self._started: float | None = None
        self._seconds: float | None = None
        self._stages: list[StageStatus] = []

    def request(self) -> BuildStatus:
        """Ask for a build covering every change made so far; returns the status right after."""
        with self._cond:
            if self._stopping:
                return self._status_locked()
            self._requested += 1
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._state, self._phase = "building", "waiting to start"
                self._thread.start()
            return self._status_locked()

    def status(self) -> BuildStatus:
        with self._cond:
            return self._status_locked()

    @property
    def stopped(self) -> bool:
        with self._cond:
            return self._stopping

    @property
    def busy(self) -> bool:
        with self._cond:
            return self._thread is not None

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

    def stop(self, timeout: float = 10.0) -> None:
        """Ask a running build to stop between batches and wait for it (at shutdown); no new ones start."""
        with self._cond:
            self._stopping = True
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

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
            last_build_id=self._build_id,
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

    def _on_publish(self, build: object) -> None:
        """Something new is servable: serve it now (a failure here fails the build, reported)."""
        self._set_phase("loading the new index")
        self._swap()
        with self._cond:
            self._build_id = getattr(build, "name", None) or str(build)

    def _should_stop(self) -> bool:
        with self._cond:
            return self._stopping or self._requested > self._taken

    def _run(self) -> None:
        while True:
            with self._cond:
                if self._taken == self._requested or self._stopping:
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
                    should_stop=self._should_stop,
                )
                if not getattr(report, "rebuilt", True):
                    # Nothing to build here: another process may have built it; serve the newest.
                    self._set_phase("loading the new index")
                    self._swap()
            except Exception as exc:  # a failed build leaves the old index serving; the status says why
                log.exception("background build failed; still serving the previous index")
                with self._cond:
                    self._state, self._error = "failed", f"{type(exc).__name__}: {exc}"
                    self._seconds = time.perf_counter() - began
                continue
            with self._cond:
                self._state, self._error = "building", None  # "idle" once nothing is queued
                self._builds += 1
                self._seconds = time.perf_counter() - began
                build_dir = getattr(report, "build_dir", None)
                if build_dir is not None:
                    self._build_id = build_dir.name
            log.info("background build done in %.1fs", self._seconds)
