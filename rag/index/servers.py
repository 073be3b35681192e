"""Which servers serve an index folder: their pids in ``index_dir/server.pid``, for ``forumqa reload``.

``forumqa reload`` rebuilds the index, then signals every pid in the file; each uvicorn worker lists
itself, so every worker swaps index. Writers take an exclusive lock because workers start together.
"""

from __future__ import annotations

import fcntl
import os
import signal
from collections.abc import Callable
from pathlib import Path

PID_FILE = "server.pid"


def pid_file(index_dir: Path) -> Path:
    return index_dir / PID_FILE


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def _rewrite(path: Path, change: Callable[[list[int]], list[int]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.seek(0)
        pids = [int(p) for p in fh.read().split() if p.isdigit()]
        new = change(pids)
        fh.seek(0)
        fh.truncate()
        fh.write("".join(f"{p}\n" for p in new))
        fh.flush()
    if not new:
        path.unlink(missing_ok=True)  # no file = no running server, which `forumqa reload` reports


def register_pid(index_dir: Path, pid: int | None = None) -> None:
    """Append ``pid`` (default: this process), dropping pids of servers that died without cleaning up."""
    pid = pid or os.getpid()
    _rewrite(pid_file(index_dir), lambda pids: [p for p in pids if p != pid and _alive(p)] + [pid])


def unregister_pid(index_dir: Path, pid: int | None = None) -> None:
    pid = pid or os.getpid()
    _rewrite(pid_file(index_dir), lambda pids: [p for p in pids if p != pid])


def server_pids(index_dir: Path) -> list[int] | None:
    """The pids listed in ``index_dir/server.pid``, or None when there is no such file."""
    try:
        return [int(p) for p in pid_file(index_dir).read_text().split() if p.isdigit()]
    except OSError:
        return None


def is_forumqa_server(pid: int) -> bool:
    """True when ``pid`` runs a forum-qa server (a stale pid may now belong to another program)."""
    import psutil

    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    markers = ("forumqa", "api.main", "uvicorn", "multiprocessing", "rag.cli")
    return any(marker in cmdline for marker in markers)


def signal_other_servers(index_dir: Path) -> list[int]:
    """SIGHUP every other forum-qa server process of ``index_dir`` so it swaps to the newest build.

    Used after a build made by one worker (an upload), so its sibling workers serve it too.
    """
    signalled = []
    for pid in server_pids(index_dir) or []:
        if pid == os.getpid() or not is_forumqa_server(pid):
            continue
        try:
            os.kill(pid, signal.SIGHUP)
        except OSError:
            continue
        signalled.append(pid)
    return signalled
