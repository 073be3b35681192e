"""The PostgreSQL connection of the shared store: connecting without leaking the URL, and the schema.

The URL (``FORUMQA_DATABASE_URL``) is a secret: it lives in a :class:`pydantic.SecretStr` and is read out
only to hand it to libpq. Every database error that leaves this module is a :class:`DatabaseUnavailable`
(or :class:`SchemaOutdated`) whose message has been scrubbed of the URL and of its password, so no log
line, HTTP error or traceback message can echo them.

The schema is a versioned list of SQL files (``rag/index/migrations/NNNN_name.sql``), applied in order by
:func:`upgrade` (``forumqa db upgrade``) inside one transaction under an advisory lock, each recorded in
``forumqa_schema``. A server whose database is at another version refuses to start (:func:`check_schema`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any
from urllib.parse import unquote, urlsplit

import numpy as np
from pydantic import SecretStr

from rag.config import Settings
from rag.index.build import embedder_fingerprint
from rag.index.embedders import EMBEDDERS

log = logging.getLogger(__name__)

# An arbitrary, fixed key: one `forumqa db upgrade` at a time per database.
_UPGRADE_LOCK = 0x666F72756D7161  # "forumqa"
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


class DatabaseError(RuntimeError):
    """Something about the database stops the store; the message never holds the URL or password."""


class DatabaseUnavailable(DatabaseError):
    """The database cannot be reached or refused us (down, restarting, wrong URL or password)."""


class SchemaOutdated(DatabaseError):
    """The database's schema is not the version this forum-qa needs."""


class ReadOnlyRole(DatabaseError):
    """The role may only read: uploads, removals and jobs need a role that may write."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The schema's versions, in order (the package's ``migrations/*.sql``)."""
    found = []
    for entry in resources.files("rag.index").joinpath("migrations").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("rag/index/migrations: versions must run 1, 2, 3... without gaps")
    return found


def latest_version() -> int:
    return migrations()[-1].version


class Database:
    """Opens connections to the store's database; every error comes out scrubbed of the secret."""

    def __init__(self, url: SecretStr, connect_timeout: float = 5.0) -> None:
        self._url = url
        self.connect_timeout = connect_timeout
        raw = url.get_secret_value()
        parts = urlsplit(raw)
        if parts.scheme not in ("postgresql", "postgres"):
            # Not the URL itself in the message: a mistyped URL may still hold a password.
            raise DatabaseUnavailable(
                "FORUMQA_DATABASE_URL must be a postgresql://user:password@host:port/database URL"
            )
        secrets = {raw}
        try:
            password = parts.password
        except ValueError:
            password = None
        if password:
            secrets |= {password, unquote(password)}
        # Longest first, so the URL goes before the password it contains.
        self._secrets = sorted((s for s in secrets if s), key=len, reverse=True)
        host = parts.hostname or "localhost"
        self.where = f"{host}:{parts.port or 5432}/{parts.path.lstrip('/') or '(default)'}"

    def scrub(self, text: str) -> str:
        """``text`` without the URL or its password (each replaced by ``***``)."""
        for secret in self._secrets:
            text = text.replace(secret, "***")
        return text

    def error(self, exc: BaseException, doing: str) -> DatabaseError:
        """A scrubbed :class:`DatabaseError` for ``exc`` raised while ``doing`` something."""
        import psycopg

        message = self.scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
        if isinstance(exc, psycopg.errors.InsufficientPrivilege | psycopg.errors.ReadOnlySqlTransaction):
            return ReadOnlyRole(f"{doing}: the database role may not write ({message})")
        return DatabaseUnavailable(f"{doing}: database at {self.where} unavailable: {message}")

    @contextlib.contextmanager
    def connect(
        self, doing: str = "database", *, autocommit: bool = False, snapshot: bool = False
    ) -> Iterator[Any]:
        """A psycopg connection (pgvector's types registered), closed after; errors scrubbed.

        Without ``autocommit`` the block is one transaction, committed when it ends without error;
        ``snapshot`` makes it a read-only REPEATABLE READ one, so every query sees the same state.
        """
        import psycopg

        try:
            conn = psycopg.connect(
                self._url.get_secret_value(),
                connect_timeout=max(1, round(self.connect_timeout)),
                autocommit=autocommit,
                application_name="forumqa",
            )
        except psycopg.Error as exc:
            raise self.error(exc, doing) from None
        try:
            with conn:
                _register_vector(conn)
                if snapshot:
                    conn.commit()  # the type lookup opened a transaction; the snapshot starts after it
                    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
                    conn.read_only = True
                yield conn
        except psycopg.Error as exc:
            # `from None`: the original exception's text (and its chain) could hold what we scrub.
            raise self.error(exc, doing) from None
        finally:
            conn.close()


def _register_vector(conn: Any) -> None:
    """numpy arrays in, numpy arrays out, for pgvector's ``vector`` (when the extension is installed)."""
    from pgvector.psycopg import register_vector
    from psycopg.types import TypeInfo

    if TypeInfo.fetch(conn, "vector") is not None:
        register_vector(conn)


def schema_version(conn: Any) -> int:
    """The version recorded in ``forumqa_schema`` (0 before the first upgrade)."""
    exists = conn.execute("SELECT to_regclass('forumqa_schema') IS NOT NULL").fetchone()[0]
    if not exists:
        return 0
    row = conn.execute("SELECT coalesce(max(version), 0) FROM forumqa_schema").fetchone()
    return int(row[0])


def upgrade(db: Database) -> tuple[int, int]:
    """Apply the migrations the database lacks, in one transaction; (version before, version after)."""
    with db.connect("upgrading the schema") as conn:
        conn.execute("SELECT pg_advisory_xact_lock(%s)", (_UPGRADE_LOCK,))
        conn.execute(
            "CREATE TABLE IF NOT EXISTS forumqa_schema (version integer PRIMARY KEY, name text NOT NULL, "
            "applied timestamptz NOT NULL DEFAULT now())"
        )
        before = schema_version(conn)
        for migration in migrations():
            if migration.version <= before:
                continue
            log.info("applying schema migration %04d_%s", migration.version, migration.name)
            conn.execute(migration.sql.encode("utf-8"))  # a script: several statements, no parameters
            conn.execute(
                "INSERT INTO forumqa_schema (version, name) VALUES (%s, %s)",
                (migration.version, migration.name),
            )
        after = schema_version(conn)
    return before, after


def check_schema(conn: Any) -> None:
    """Raise :class:`SchemaOutdated`, saying what to run, unless the schema is the version we need."""
    have, need = schema_version(conn), latest_version()
    if have < need:
        raise SchemaOutdated(
            f"the database schema is at version {have} and this forum-qa needs version {need}: run "
            "`forumqa db upgrade` (with the same FORUMQA_DATABASE_URL, as a role that may create tables) "
            "and start again"
        )
    if have > need:
        raise SchemaOutdated(
            f"the database schema is at version {have}, newer than this forum-qa knows ({need}): "
            "upgrade forum-qa on this machine"
        )


# ---------------------------------------------------------------------------------------- shared rows
# What the store (rag/index/pgstore.py) and the jobs (rag/index/jobs.py) both write.

#: The channel a change is announced on (for tools that LISTEN; replicas poll the generation).
CHANNEL = "forumqa_changes"


def open_database(settings: Settings) -> Database:
    if settings.database_url is None:
        raise ValueError("FORUMQA_DATABASE_URL is not set")
    return Database(settings.database_url, settings.db_connect_timeout)


def encode_text(text: str) -> bytes:
    # "surrogatepass": a document's text is valid Unicode, but storing must never be what fails on it.
    return text.encode("utf-8", "surrogatepass")


def decode_text(data: bytes | memoryview) -> str:
    return bytes(data).decode("utf-8", "surrogatepass")


def bump_generation(conn: Any, why: str) -> int:
    generation = int(
        conn.execute("UPDATE forumqa_state SET generation = generation + 1 WHERE id = 1 RETURNING generation")
        .fetchone()[0]
    )
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"generation {generation}: {why}"))
    return generation


def generation(conn: Any) -> int:
    return int(conn.execute("SELECT generation FROM forumqa_state WHERE id = 1").fetchone()[0])


def put_vectors(db: Database, model: str, vectors: dict[str, np.ndarray]) -> int:
    """Store vectors by text sha256 for ``model`` (existing ones kept); how many were new."""
    if not vectors:
        return 0
    encoder = json.dumps(embedder_fingerprint(EMBEDDERS[model]))
    with db.connect("storing vectors") as conn, conn.cursor() as cur:
        cur.execute(
            "CREATE TEMP TABLE forumqa_incoming (text_sha256 text, embedding vector) ON COMMIT DROP"
        )
        with cur.copy("COPY forumqa_incoming (text_sha256, embedding) FROM STDIN (FORMAT BINARY)") as copy:
            copy.set_types(["text", "vector"])
            for key, vector in vectors.items():
                copy.write_row((key, np.asarray(vector, dtype=np.float32)))
        cur.execute(
            "INSERT INTO forumqa_embeddings (model, text_sha256, encoder, embedding) "
            "SELECT %s, text_sha256, %s::jsonb, embedding FROM forumqa_incoming "
            "ON CONFLICT (model, text_sha256) DO NOTHING",
            (model, encoder),
        )
        return int(cur.rowcount)


