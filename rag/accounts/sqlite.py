"""The file store's accounts: an SQLite file beside the index (``index/accounts.sqlite3``, or
``FORUMQA_ACCOUNTS_FILE``), shared by every worker process of every server on the folder and by the CLI.

WAL mode, so readers never wait for a writer; a writer waits up to 10 s for another. The file is made
readable by its owner only: it holds password hashes.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from rag.accounts.records import SCHEMA, SqlRecords

AUDIT = """
CREATE TABLE IF NOT EXISTS forumqa_audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    at double precision NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail text NOT NULL DEFAULT ''
);
"""


class SqliteRecords(SqlRecords):
    """Accounts in the SQLite file ``path`` (created with its tables on first use)."""

    def __init__(self, path: Path) -> None:
        super().__init__(self._connection, "?", str(path))
        self.path = path
        self._ready = False
        self._lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=10.0, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA foreign_keys = ON")
        return conn

    def _prepare(self) -> None:
        with self._lock:
            if self._ready:
                return
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fresh = not self.path.exists()
            conn = self._open()
            try:
                if fresh:
                    os.chmod(self.path, 0o600)
                conn.execute("PRAGMA journal_mode = WAL")
                conn.executescript("BEGIN;" + SCHEMA + AUDIT + "COMMIT;")
            finally:
                conn.close()
            self._ready = True

    @contextlib.contextmanager
    def _connection(self, write: bool) -> Iterator[sqlite3.Connection]:
        self._prepare()
        conn = self._open()
        try:
            conn.execute("BEGIN IMMEDIATE" if write else "BEGIN")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()
