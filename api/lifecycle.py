"""The server's side of ``forumqa reload``: SIGHUP → reload the index in the background.

The pid registry the signal is sent through (``index_dir/server.pid``) is rag/index/servers.py, which the
CLI shares without importing the web app.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable

log = logging.getLogger(__name__)

def install_reload_on_sighup(reload: Callable[[], object]) -> Callable[[], None]:
    """Run ``reload`` in a thread on SIGHUP; returns the function that restores the previous handler.

    Signal handlers can only be set from the main thread, so in-thread servers (tests) get none.
    """
    if not hasattr(signal, "SIGHUP") or threading.current_thread() is not threading.main_thread():
        log.info("not in the main thread: SIGHUP reload is not installed")
        return lambda: None

    def run() -> None:
        try:
            swapped = reload()
            log.info("SIGHUP: %s", "swapped to the newest index" if swapped else "index already current")
        except Exception:  # a broken new build must not take the serving one down
            log.exception("SIGHUP: reload failed; still serving the previous index")

    def on_sighup(signum: int, frame: object) -> None:
        # Loading an index takes a while: keep the handler (and the event loop it interrupts) quick.
        threading.Thread(target=run, name="forumqa-reload", daemon=True).start()

    previous = signal.signal(signal.SIGHUP, on_sighup)

    def restore() -> None:
        signal.signal(signal.SIGHUP, previous)

    return restore
