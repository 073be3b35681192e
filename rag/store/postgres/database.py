"""The PostgreSQL connections of the shared store: pools, errors that never leak the URL, and the schema.

The URL (``FORUMQA_DATABASE_URL``) is a secret: it lives in a :class:`pydantic.SecretStr` and is read out
only to hand it to libpq. It is checked when the store opens (an unencoded ``/ # ? @`` in the user name or
password would make libpq read part of the password as a host or port, and say so in its error), and
every database error that leaves this module is a :class:`DatabaseUnavailable` (or :class:`SchemaOutdated`,
:class:`ReadOnlyRole`) whose message has been scrubbed of the URL and of its password.

Connections come from two pools (psycopg_pool): one for reading and for the jobs, and a bounded one for
the writes a request makes (uploads, removals, feedback). A write fails at once with
:class:`DatabaseUnavailable` when the database is known to be down (the last read failed to connect) or
when every write connection is busy, so requests never queue behind an outage.

The schema is a versioned list of SQL files (``migrations/NNNN_name.sql``), applied in order by
:func:`upgrade` (``forumqa db upgrade``) inside one transaction under an advisory lock, each recorded in
``forumqa_schema``. A server whose database is at another version refuses to start (:func:`check_schema`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from typing import Any, Literal
from urllib.parse import unquote, urlsplit

import numpy as np
from pydantic import SecretStr

from rag.config import Settings
from rag.index.embedders import EMBEDDERS, embedder_fingerprint
from rag.store.base import ReadOnlyStore, StoreUnavailable

log = logging.getLogger(__name__)

# An arbitrary, fixed key: one `forumqa db upgrade` at a time per database.
_UPGRADE_LOCK = 0x666F72756D7161  # "forumqa"
_MIGRATION_FILE = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")
# How long a failed connection marks the database down for writes (they fail at once meanwhile).
DOWN_SECONDS = 2.0


class DatabaseError(RuntimeError):
    """Something about the database stops the store; the message never holds the URL or password."""


class DatabaseUnavailable(DatabaseError, StoreUnavailable):
    """The database cannot be reached or refused us (down, restarting, wrong URL or password), or every
    write connection is busy."""

    public = "the document store (database) is unavailable just now"


class SchemaOutdated(DatabaseError):
    """The database's schema is not the version this forum-qa needs."""


class ReadOnlyRole(DatabaseError, ReadOnlyStore):
    """The role may only read: uploads, removals and jobs need a role that may write."""


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def migrations() -> list[Migration]:
    """The schema's versions, in order (the package's ``migrations/*.sql``)."""
    found = []
    for entry in resources.files("rag.store.postgres").joinpath("migrations").iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    if [m.version for m in found] != list(range(1, len(found) + 1)):
        raise RuntimeError("rag/store/postgres/migrations: versions must run 1, 2, 3... without gaps")
    return found


def latest_version() -> int:
    return migrations()[-1].version


BAD_URL = (
    "FORUMQA_DATABASE_URL must be a postgresql://user:password@host:port/database URL, with any / # ? @ "
    "or % in the user name or password percent-encoded (%2F %23 %3F %40 %25)"
)


def _secrets_of(raw: str) -> list[str]:
    """What of ``raw`` must never be shown: the URL and the whole of what precedes its host (the user
    name and password as written, and decoded), and each part of it."""
    secrets = {raw}
    rest = raw.split("://", 1)[1] if "://" in raw else raw
    if "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        secrets |= {userinfo, unquote(userinfo)}
        for part in re.split(r"[:/#?@]", userinfo):
            if len(part) >= 4:
                secrets |= {part, unquote(part)}
        try:
            password = urlsplit(raw).password
        except ValueError:
            password = None
        if password:
            secrets |= {password, unquote(password)}
    # Longest first, so the URL goes before the password it contains.
    return sorted((s for s in secrets if s), key=len, reverse=True)


def check_url(raw: str) -> None:
    """Refuse a URL libpq would misread, without echoing any of it."""
    parts = urlsplit(raw)
    if parts.scheme not in ("postgresql", "postgres"):
        raise DatabaseUnavailable(BAD_URL)
    rest = raw.split("://", 1)[1]
    if "@" in rest:
        userinfo = rest.rsplit("@", 1)[0]
        # A / ? # or a second @ before the host ends the user name or password early for libpq, and a
        # % that starts no escape is not one.
        if re.search(r"[/?#@]", userinfo) or re.search(r"%(?![0-9A-Fa-f]{2})", userinfo):
            raise DatabaseUnavailable(BAD_URL)
    try:
        parts.port  # noqa: B018 - a port that is no number raises here
    except ValueError:
        raise DatabaseUnavailable(BAD_URL) from None


class Database:
    """The store's database: pooled connections whose every error comes out scrubbed of the secret."""

    def __init__(self, url: SecretStr, connect_timeout: float = 5.0, write_connections: int = 4) -> None:
        self._url = url
        self.connect_timeout = connect_timeout
        self.write_connections = write_connections
        raw = url.get_secret_value()
        self._secrets = _secrets_of(raw)
        check_url(raw)
        parts = urlsplit(raw)
        host = parts.hostname or "localhost"
        self.where = f"{host}:{parts.port or 5432}/{parts.path.lstrip('/') or '(default)'}"
        self._pools: dict[str, Any] = {}
        self._pools_lock = threading.Lock()
        self._down_until = 0.0
        self._failure: tuple[float, BaseException] | None = None  # when and why connecting last failed
        self._writes = threading.BoundedSemaphore(write_connections)

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

    @property
    def down(self) -> bool:
        """Whether a connection failed in the last :data:`DOWN_SECONDS` (writes then fail at once)."""
        return time.monotonic() < self._down_until

    def _connection_class(self) -> type:
        """psycopg's connection, recording why the last attempt to connect failed (a pool only says that
        it timed out waiting)."""
        import psycopg

        db = self

        class Recording(psycopg.Connection):
            @classmethod
            def connect(cls, *args: Any, **kwargs: Any) -> Any:
                try:
                    conn = super().connect(*args, **kwargs)
                except psycopg.Error as exc:
                    db._failure = (time.monotonic(), exc)
                    db._down_until = time.monotonic() + DOWN_SECONDS
                    raise
                db._failure = None
                return conn

        return Recording

    def _pool(self, kind: Literal["read", "write"]) -> Any:
        from psycopg_pool import ConnectionPool

        with self._pools_lock:
            pool = self._pools.get(kind)
            if pool is None:
                size = 2 if kind == "read" else self.write_connections
                pool = ConnectionPool(
                    self._url.get_secret_value(),
                    connection_class=self._connection_class(),
                    min_size=0,
                    max_size=size,
                    open=False,
                    name=f"forumqa-{kind}",
                    timeout=self.connect_timeout if kind == "read" else min(2.0, self.connect_timeout),
                    kwargs={"autocommit": True, "application_name": "forumqa",
                            "connect_timeout": max(1, round(self.connect_timeout))},
                    configure=_register_vector,
                    check=ConnectionPool.check_connection,
                    max_idle=60,
                )
                pool.open(wait=False)
                self._pools[kind] = pool
            return pool

    def _acquire(self, pool: Any, doing: str) -> Any:
        """A connection of ``pool``; the real reason (scrubbed) as soon as an attempt to connect fails."""
        import psycopg_pool

        started = time.monotonic()
        deadline = started + pool.timeout
        while True:
            try:
                return pool.getconn(timeout=max(0.05, min(0.25, deadline - time.monotonic())))
            except psycopg_pool.PoolTimeout:
                failure = self._failure
                if failure is not None and failure[0] >= started - DOWN_SECONDS:
                    raise self.error(failure[1], doing) from None
                if time.monotonic() >= deadline:
                    self._down_until = time.monotonic() + DOWN_SECONDS
                    raise DatabaseUnavailable(f"{doing}: database at {self.where} unavailable: no connection "
                                              f"within {pool.timeout:.0f}s") from None

    def close(self) -> None:
        with self._pools_lock:
            pools, self._pools = list(self._pools.values()), {}
        for pool in pools:
            with contextlib.suppress(Exception):
                pool.close(timeout=1)

    @contextlib.contextmanager
    def connect(
        self,
        doing: str = "database",
        *,
        autocommit: bool = False,
        snapshot: bool = False,
        write: bool = False,
    ) -> Iterator[Any]:
        """A pooled psycopg connection (pgvector's types registered); errors scrubbed.

        Without ``autocommit`` the block is one transaction, committed when it ends without error;
        ``snapshot`` makes it a read-only REPEATABLE READ one, so every query sees the same state.
        ``write``: from the bounded write pool, failing at once while the database is down or every
        write connection is busy.
        """
        import psycopg

        if write:
            if self.down:
                raise DatabaseUnavailable(
                    f"{doing}: database at {self.where} unavailable: it failed just now"
                )
            if not self._writes.acquire(blocking=False):
                raise DatabaseUnavailable(f"{doing}: every database write connection is busy")
        try:
            pool = self._pool("write" if write else "read")
            conn = self._acquire(pool, doing)
            try:
                if autocommit:
                    yield conn
                else:
                    with conn.transaction():
                        if snapshot:
                            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
                        yield conn
            except psycopg.OperationalError as exc:
                self._down_until = time.monotonic() + DOWN_SECONDS
                # `from None`: the original exception's text (and its chain) could hold what we scrub.
                raise self.error(exc, doing) from None
            except psycopg.Error as exc:
                raise self.error(exc, doing) from None
            finally:
                pool.putconn(conn)
        finally:
            if write:
                self._writes.release()


def _register_vector(conn: Any) -> None:
    """numpy arrays in, numpy arrays out, for pgvector's ``vector`` (when the extension is installed)."""
    from pgvector.psycopg import register_vector
    from psycopg.types import TypeInfo

    if TypeInfo.fetch(conn, "vector") is not None:
        register_vector(conn)
    if not conn.autocommit:
        conn.commit()  # the type lookup opened a transaction


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
    if after != before:
        db.close()  # pooled connections made before pgvector existed lack its type: new ones will have it
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
# What the store's writes (rows.py) and the jobs (jobs.py) both use.


def open_database(settings: Settings) -> Database:
    if settings.database_url is None:
        raise ValueError("FORUMQA_DATABASE_URL is not set")
    return Database(settings.database_url, settings.db_connect_timeout, settings.db_write_connections)


def encode_text(text: str) -> bytes:
    # "surrogatepass": a document's text is valid Unicode, but storing must never be what fails on it.
    return text.encode("utf-8", "surrogatepass")


def decode_text(data: bytes | memoryview) -> str:
    return bytes(data).decode("utf-8", "surrogatepass")


def bump_generation(conn: Any, *doc_ids: str) -> int:
    """Move the generation on (what replicas serve changed) and mark ``doc_ids`` as changed in it, so a
    replica reloads only those documents' rows."""
    generation = int(
        conn.execute("UPDATE forumqa_state SET generation = generation + 1 WHERE id = 1 RETURNING generation")
        .fetchone()[0]
    )
    if doc_ids:
        conn.execute("UPDATE forumqa_documents SET changed = %s WHERE id = ANY(%s)",
                     (generation, list(doc_ids)))
    return generation


def generation(conn: Any) -> int:
    return int(conn.execute("SELECT generation FROM forumqa_state WHERE id = 1").fetchone()[0])


def encoder_of(model: str) -> str:
    """The ``encoder`` a model's rows record (JSON): vectors are read back only from the same encoder."""
    return json.dumps(embedder_fingerprint(EMBEDDERS[model]))


def put_vectors(db: Database, model: str, vectors: dict[str, np.ndarray]) -> int:
    """Store vectors by text sha256 for ``model`` (existing ones kept); how many were new."""
    if not vectors:
        return 0
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
            (model, encoder_of(model)),
        )
        return int(cur.rowcount)
