"""Following the store: every server process polls what its store serves and reloads when it moved.

One mechanism for both stores. A file store's version is the name in ``index/CURRENT`` (a few bytes
read), the database store's its generation; :meth:`rag.qa.ForumQA.reload` compares it with the index
being served and loads the new one in the background, so every worker of every server picks up a build
published by any process (``forumqa reload``, another worker's upload, a database replica) within
``FORUMQA_POLL_SECONDS``. No pid file, no signal.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)


class Poller:
    """A daemon thread calling ``step`` every ``seconds`` until :meth:`stop`.

    A failing step is logged once (with ``what``), retried every round, and its recovery logged; the
    thread never dies of it. ``errors`` holds the last failure while it lasts.
    """

    def __init__(
        self, what: str, seconds: float, step: Callable[[], object], name: str = "forumqa-poll"
    ) -> None:
        self.what = what
        self.seconds = seconds
        self._step = step
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self.error: str | None = None

    def start(self) -> None:
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(timeout)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds):
            try:
                self._step()
            except Exception as exc:  # never let the thread die: the next round tries again
                message = f"{type(exc).__name__}: {exc}"
                if self.error is None:
                    log.warning("%s failed: %s; trying again every %.1fs", self.what, message, self.seconds)
                self.error = message
                continue
            if self.error is not None:
                log.info("%s works again", self.what)
                self.error = None
