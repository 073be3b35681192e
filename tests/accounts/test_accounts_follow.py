"""What a server knows of its accounts outlives a store that goes away: requests are answered from memory,
and a revocation is seen within the follower's period once the store is back."""

from __future__ import annotations

import time
from pathlib import Path

from rag.accounts import Accounts
from rag.accounts.sqlite import SqliteRecords
from rag.store import StoreUnavailable


class Flaky(SqliteRecords):
    """SQLite records that fail like a database that is down, while ``down`` is set."""

    down = False

    def _connection(self, write: bool):  # type: ignore[no-untyped-def,override]
        if self.down:
            raise StoreUnavailable("the database is down")
        return super()._connection(write)


def test_what_was_known_is_served_while_the_store_is_down(tmp_path: Path) -> None:
    records = Flaky(tmp_path / "accounts.sqlite3")
    setup = Accounts(records)
    setup.add_user("alice", "reader", "alice-pass-1")
    setup.add_collection("alpha")
    setup.grant("alice", "alpha", "read")
    _, token = setup.create_token("alice", "t")

    accounts = Accounts(records, cache_seconds=0.2)
    accounts.follow()
    try:
        deadline = time.monotonic() + 5
        while not accounts.fresh("active") and time.monotonic() < deadline:
            time.sleep(0.02)
        assert accounts.fresh("active"), "the follower seeds the mode at once"
        assert accounts.by_token(token) is not None
        records.down = True
        time.sleep(0.6)  # several refreshes fail meanwhile
        assert accounts.active() is True
        assert accounts.by_token(token) is not None  # known before: still served, from memory
        records.down = False
        setup.revoke_token("t")
        time.sleep(0.6)
        assert accounts.by_token(token) is None  # back: the revocation holds within a period or two
    finally:
        accounts.stop()
