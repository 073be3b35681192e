"""The PostgreSQL store's accounts: the tables of migration 0003, shared by every replica."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

from rag.accounts.records import SqlRecords
from rag.store.postgres.database import Database


class PostgresRecords(SqlRecords):
    """Accounts in the store's database. Reads come from the read pool; writes from the bounded write
    pool, failing at once while the database is down (sign-in then answers 503)."""

    def __init__(self, db: Database) -> None:
        self.db = db

        @contextlib.contextmanager
        def connect(write: bool) -> Iterator[Any]:
            with db.connect("accounts", write=write) as conn:
                yield conn

        super().__init__(connect, "%s", f"the account tables of PostgreSQL at {db.where}")
