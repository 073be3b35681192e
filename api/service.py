"""The ForumQA an app serves, loaded in a background thread so the server answers /healthz meanwhile.

Loading (index build or load, model warm-up) takes tens of seconds; doing it in the lifespan before
``yield`` would keep the port closed and make a slow start look like a dead process to orchestrators.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

from rag.config import Settings
from rag.index import servers
from rag.index.build import missing_models
from rag.index.rebuild import Rebuilder
from rag.qa import ForumQA

log = logging.getLogger(__name__)

Loader = Callable[[Settings], ForumQA]


def open_quietly(settings: Settings) -> ForumQA:
    """The default loader: no progress bars in server logs; serving as soon as the index answers (the
    slower models' stages are then run by the background builder)."""
    return ForumQA.open(settings, progress=False, until="answerable")


def _transient(exc: Exception) -> bool:
    """Whether a database-store load may succeed later (database away, nothing ready yet)."""
    from rag.index.build import IndexUnavailable
    from rag.index.database import DatabaseUnavailable

    return isinstance(exc, DatabaseUnavailable | IndexUnavailable)


class Service:
    """Holds the ForumQA once loaded, or why it failed to load, and the background index builder."""

    def __init__(self, settings: Settings, qa: ForumQA | None = None) -> None:
        self.settings = settings
        self._qa = qa
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self.rebuilder = Rebuilder(settings, self._swap_after_build)
        self.follower: object | None = None  # database store: the thread following its generation

    @property
    def qa(self) -> ForumQA | None:
        return self._qa

    @property
    def loading(self) -> bool:
        return self._qa is None and self.error is None

    def start_loading(self, loader: Loader) -> None:
        """Load in a daemon thread (a daemon, so shutting down never waits for a half-done load)."""
        if self._qa is not None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._load, args=(loader,), name="forumqa-load", daemon=True)
        self._thread.start()

    def _load(self, loader: Loader) -> None:
        while True:
            try:
                qa = loader(self.settings)
                break
            except Exception as exc:  # reported by /readyz and by every route that needs the index
                if self.settings.database and _transient(exc):
                    # The database is away, or holds nothing ready yet (another replica or a worker is
                    # embedding): /readyz says 503 meanwhile, and the load tries again.
                    log.warning("waiting for the database store: %s", exc)
                    time.sleep(self.settings.db_poll_seconds)
                    continue
                log.exception("loading the index failed")
                self.error = f"{type(exc).__name__}: {exc}"
                return
        self._qa = qa
        log.info("ready: serving index %s", qa.index.build_id)
        if self.settings.database:  # replicas of the shared store follow it; workers add the models
            self._follow(qa)
            return
        pending = missing_models(self.settings, qa.index.manifest)
        if pending:
            log.info("adding %s to the index in the background", ", ".join(pending))
            self.rebuilder.request()

    def _follow(self, qa: ForumQA) -> None:
        """Database store: keep to its newest generation, and run embedding jobs when allowed."""
        from rag.index import jobs, pgstore

        run_jobs = None
        if self.settings.db_jobs and pgstore.writable(self.settings):
            embedders = jobs.Embedders(self.settings, qa.embedders)
            db, owner = pgstore.open_database(self.settings), jobs.worker_id()

            def run_jobs(stop: Callable[[], bool]) -> int:
                return jobs.drain(db, self.settings, False, embedders, owner, stop)

        self.follower = pgstore.Follower(self.settings, qa.reload, run_jobs)
        self.follower.start()

    def _swap_after_build(self) -> None:
        """After a background build: serve it here, and tell sibling workers to serve it too."""
        self.reload()
        signalled = servers.signal_other_servers(self.settings.index_dir)
        if signalled:
            log.info("asked server processes %s to reload", signalled)

    def reload(self) -> bool:
        """Swap to a newer index build, if loaded and there is one; True if swapped."""
        qa = self._qa
        if qa is None:
            log.info("reload requested while the index is still loading; the load picks up the newest build")
            return False
        return qa.reload()
