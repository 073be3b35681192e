"""The ForumQA an app serves and its store, the index loaded in a background thread so the server answers
/healthz meanwhile.

Loading (index build or load, model warm-up) takes tens of seconds; doing it in the lifespan before
``yield`` would keep the port closed and make a slow start look like a dead process to orchestrators. The
store's background work (following it, building or embedding) starts with the app and stops with it.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable

from rag.accounts import Accounts
from rag.config import Settings
from rag.qa import ForumQA
from rag.store import BuildStatus, Store, StoreUnavailable, open_store

log = logging.getLogger(__name__)

Loader = Callable[[Settings], ForumQA]


class Service:
    """Holds the ForumQA once loaded (or why it failed to load) and the store it serves from."""

    def __init__(self, settings: Settings, qa: ForumQA | None = None) -> None:
        self.settings = settings
        self._qa = qa
        # The app's store follows the app's settings (a test may serve a ForumQA over other folders).
        self.store: Store = qa.store if qa is not None and qa.settings == settings else open_store(settings)
        # Users, sessions, tokens and grants, kept by the store (rag/accounts).
        self.accounts = Accounts(self.store.accounts(), settings.session_hours * 3600,
                                 settings.auth_cache_seconds)
        self.error: str | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()

    @property
    def qa(self) -> ForumQA | None:
        return self._qa

    @property
    def loading(self) -> bool:
        return self._qa is None and self.error is None

    def start(self, loader: Loader | None = None) -> None:
        """Load in a daemon thread (a daemon, so shutting down never waits for a half-done load), and start
        the store's background work. The default loader serves as soon as the index answers, without
        progress bars (the store's background work adds the rest)."""
        self.store.start(self.reload, self._qa.embedders if self._qa is not None else None)  # type: ignore[arg-type]
        self.accounts.follow()  # what sessions and tokens resolve to, kept current in the background
        if self._qa is not None or self._thread is not None:
            return
        self._thread = threading.Thread(target=self._load, args=(loader or self._open,), name="forumqa-load",
                                        daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stopping.set()
        self.accounts.stop()
        self.store.stop()

    def _open(self, settings: Settings) -> ForumQA:
        return ForumQA.open(settings, progress=False, until="answerable", store=self.store)

    def _load(self, loader: Loader) -> None:
        waiting = ""
        while not self._stopping.is_set():
            try:
                qa = loader(self.settings)
                break
            except StoreUnavailable as exc:
                # The database is away, or holds nothing ready yet (a worker is embedding): /readyz says
                # 503 meanwhile, and the load tries again (said once, and again only if the reason changes).
                if str(exc) != waiting:
                    log.warning("waiting for the store: %s", exc)
                    waiting = str(exc)
                self._stopping.wait(self.settings.poll_seconds)
            except Exception as exc:  # reported by /readyz and by every route that needs the index
                self._failed(exc)
                return
        else:
            return
        self._qa = qa
        log.info("ready: serving index %s", qa.index.version)

    def _failed(self, exc: Exception) -> None:
        log.exception("loading the index failed", exc_info=exc)
        self.error = f"{type(exc).__name__}: {exc}"

    def reload(self) -> bool:
        """Swap to a newer index, if loaded and there is one; True if swapped."""
        qa = self._qa
        if qa is None:
            return False  # the load picks up the newest index
        return qa.reload()

    def status(self) -> BuildStatus:
        """The store's build status against the serving index; "failed" with the reason when the first
        load failed. Never waits on a database."""
        status = self.store.status(self._qa.index if self._qa is not None else None)
        if self._qa is None and self.error is not None:
            return dataclasses.replace(status, state="failed", last_error=self.error)
        return status

    def changed(self) -> BuildStatus:
        """A document was added or removed here: the store starts what makes it servable."""
        self.store.changed()
        return self.status()
