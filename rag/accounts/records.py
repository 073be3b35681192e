"""Where accounts are kept: users, sessions, tokens, collections, grants, sign-in failures and the audit
log, as SQL tables. One implementation, :class:`SqlRecords`, over two databases: an SQLite file beside the
index (the file store, :mod:`rag.accounts.sqlite`) and the PostgreSQL store's own tables
(:mod:`rag.store.postgres.accounts`, schema in its migrations). Each store hands out its records
(:meth:`rag.store.Store.accounts`); nothing else knows where they live.

Secrets are never stored: passwords as argon2 hashes, session keys and tokens as their sha256.
Times are Unix seconds (floats) in both databases.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rag.accounts.model import DEFAULT_COLLECTION, AccountError, Level, Role


@dataclass(frozen=True, slots=True)
class UserRow:
    name: str
    role: Role
    password_hash: str
    disabled: bool
    created: float
    changed: float  # when the password last changed


@dataclass(frozen=True, slots=True)
class TokenRow:
    name: str
    user: str
    created: float


@dataclass(frozen=True, slots=True)
class GrantRow:
    subject: str  # a user name, or "*"
    collection: str
    level: Level


@dataclass(frozen=True, slots=True)
class AuditRow:
    at: float
    actor: str
    action: str
    target: str
    detail: str


#: The tables, in SQL both SQLite and PostgreSQL read (the PostgreSQL store applies the same in a migration).
SCHEMA = f"""
CREATE TABLE IF NOT EXISTS forumqa_users (
    name text PRIMARY KEY,
    role text NOT NULL CHECK (role IN ('reader', 'editor', 'admin')),
    password_hash text NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    created double precision NOT NULL,
    changed double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS forumqa_sessions (
    key_hash text PRIMARY KEY,
    user_name text NOT NULL REFERENCES forumqa_users (name) ON DELETE CASCADE,
    created double precision NOT NULL,
    expires double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS forumqa_tokens (
    name text PRIMARY KEY,
    user_name text NOT NULL REFERENCES forumqa_users (name) ON DELETE CASCADE,
    key_hash text NOT NULL UNIQUE,
    created double precision NOT NULL
);
CREATE TABLE IF NOT EXISTS forumqa_collections (
    name text PRIMARY KEY,
    created double precision NOT NULL
);
INSERT INTO forumqa_collections (name, created) VALUES ('{DEFAULT_COLLECTION}', 0) ON CONFLICT DO NOTHING;
CREATE TABLE IF NOT EXISTS forumqa_grants (
    subject text NOT NULL,
    collection text NOT NULL REFERENCES forumqa_collections (name) ON DELETE CASCADE,
    level text NOT NULL CHECK (level IN ('read', 'write')),
    PRIMARY KEY (subject, collection)
);
CREATE TABLE IF NOT EXISTS forumqa_signin_failures (
    name text PRIMARY KEY,
    failures integer NOT NULL,
    last_failure double precision NOT NULL
);
"""

Connect = Callable[[bool], contextlib.AbstractContextManager[Any]]


class SqlRecords:
    """The account tables behind ``connect(write)``, a context manager giving a DB-API connection whose
    block is one transaction; ``marker`` is the driver's parameter placeholder (``?`` or ``%s``)."""

    def __init__(self, connect: Connect, marker: str, where: str) -> None:
        self._connect = connect
        self._marker = marker
        self.where = where

    def _sql(self, sql: str) -> str:
        return sql.replace("?", self._marker) if self._marker != "?" else sql

    @contextlib.contextmanager
    def _tx(self, write: bool = False) -> Iterator[Callable[..., Any]]:
        with self._connect(write) as conn:

            def run(sql: str, *params: Any) -> Any:
                return conn.execute(self._sql(sql), params)

            yield run

    # ------------------------------------------------------------------------------- users

    def any_user(self) -> bool:
        with self._tx() as run:
            return run("SELECT 1 FROM forumqa_users LIMIT 1").fetchone() is not None

    def add_user(self, name: str, role: Role, password_hash: str, now: float) -> None:
        with self._tx(write=True) as run:
            if run("SELECT 1 FROM forumqa_users WHERE name = ?", name).fetchone() is not None:
                raise AccountError(f"there is already a user {name!r}")
            run("INSERT INTO forumqa_users (name, role, password_hash, disabled, created, changed) "
                "VALUES (?, ?, ?, ?, ?, ?)", name, role, password_hash, False, now, now)

    def user(self, name: str) -> UserRow | None:
        with self._tx() as run:
            row = run("SELECT name, role, password_hash, disabled, created, changed FROM forumqa_users "
                      "WHERE name = ?", name).fetchone()
        return _user(row) if row else None

    def users(self) -> list[UserRow]:
        with self._tx() as run:
            rows = run("SELECT name, role, password_hash, disabled, created, changed FROM forumqa_users "
                       "ORDER BY name").fetchall()
        return [_user(r) for r in rows]

    def set_disabled(self, name: str, disabled: bool) -> bool:
        with self._tx(write=True) as run:
            found = run("UPDATE forumqa_users SET disabled = ? WHERE name = ?", disabled, name).rowcount
            if disabled:
                run("DELETE FROM forumqa_sessions WHERE user_name = ?", name)
        return bool(found)

    def set_password(self, name: str, password_hash: str, now: float) -> bool:
        """A new password ends every session of the user."""
        with self._tx(write=True) as run:
            found = run("UPDATE forumqa_users SET password_hash = ?, changed = ? WHERE name = ?",
                        password_hash, now, name).rowcount
            run("DELETE FROM forumqa_sessions WHERE user_name = ?", name)
        return bool(found)

    # ------------------------------------------------------------------------------- sessions

    def add_session(self, key_hash: str, user: str, now: float, expires: float) -> None:
        with self._tx(write=True) as run:
            run("DELETE FROM forumqa_sessions WHERE expires < ?", now)
            run("INSERT INTO forumqa_sessions (key_hash, user_name, created, expires) VALUES (?, ?, ?, ?)",
                key_hash, user, now, expires)

    def session(self, key_hash: str) -> tuple[str, float] | None:
        """The user and expiry of a session."""
        with self._tx() as run:
            row = run("SELECT user_name, expires FROM forumqa_sessions WHERE key_hash = ?",
                      key_hash).fetchone()
        return (str(row[0]), float(row[1])) if row else None

    def end_session(self, key_hash: str) -> None:
        with self._tx(write=True) as run:
            run("DELETE FROM forumqa_sessions WHERE key_hash = ?", key_hash)

    # ------------------------------------------------------------------------------- tokens

    def add_token(self, name: str, user: str, key_hash: str, now: float) -> None:
        with self._tx(write=True) as run:
            if run("SELECT 1 FROM forumqa_tokens WHERE name = ?", name).fetchone() is not None:
                raise AccountError(f"there is already a token named {name!r}")
            run("INSERT INTO forumqa_tokens (name, user_name, key_hash, created) VALUES (?, ?, ?, ?)",
                name, user, key_hash, now)

    def token(self, key_hash: str) -> tuple[str, str] | None:
        """The name and user of a token."""
        with self._tx() as run:
            row = run("SELECT name, user_name FROM forumqa_tokens WHERE key_hash = ?", key_hash).fetchone()
        return (str(row[0]), str(row[1])) if row else None

    def tokens(self) -> list[TokenRow]:
        with self._tx() as run:
            rows = run("SELECT name, user_name, created FROM forumqa_tokens ORDER BY name").fetchall()
        return [TokenRow(str(n), str(u), float(c)) for n, u, c in rows]

    def revoke_token(self, name: str) -> str | None:
        """Delete the token ``name``; its user, or None when there was none."""
        with self._tx(write=True) as run:
            row = run("SELECT user_name FROM forumqa_tokens WHERE name = ?", name).fetchone()
            run("DELETE FROM forumqa_tokens WHERE name = ?", name)
        return str(row[0]) if row else None

    # ------------------------------------------------------------------------------- collections

    def add_collection(self, name: str, now: float) -> None:
        with self._tx(write=True) as run:
            if run("SELECT 1 FROM forumqa_collections WHERE name = ?", name).fetchone() is not None:
                raise AccountError(f"there is already a collection {name!r}")
            run("INSERT INTO forumqa_collections (name, created) VALUES (?, ?)", name, now)

    def collections(self) -> list[str]:
        with self._tx() as run:
            return [str(r[0]) for r in run("SELECT name FROM forumqa_collections ORDER BY name").fetchall()]

    def grant(self, subject: str, collection: str, level: Level) -> None:
        with self._tx(write=True) as run:
            run("INSERT INTO forumqa_grants (subject, collection, level) VALUES (?, ?, ?) "
                "ON CONFLICT (subject, collection) DO UPDATE SET level = excluded.level",
                subject, collection, level)

    def revoke(self, subject: str, collection: str) -> bool:
        with self._tx(write=True) as run:
            return bool(run("DELETE FROM forumqa_grants WHERE subject = ? AND collection = ?",
                            subject, collection).rowcount)

    def grants(self, *subjects: str) -> list[GrantRow]:
        """The grants of ``subjects`` (every grant when none is named)."""
        with self._tx() as run:
            if subjects:
                marks = ", ".join("?" for _ in subjects)
                rows = run("SELECT subject, collection, level FROM forumqa_grants "
                           f"WHERE subject IN ({marks}) ORDER BY subject, collection", *subjects).fetchall()
            else:
                rows = run("SELECT subject, collection, level FROM forumqa_grants "
                           "ORDER BY subject, collection").fetchall()
        return [GrantRow(str(s), str(c), lv) for s, c, lv in rows]

    # ------------------------------------------------------------------------------- sign-in failures

    def failures(self, name: str) -> tuple[int, float]:
        with self._tx() as run:
            row = run("SELECT failures, last_failure FROM forumqa_signin_failures WHERE name = ?",
                      name).fetchone()
        return (int(row[0]), float(row[1])) if row else (0, 0.0)

    def fail(self, name: str, now: float) -> int:
        """Count one more wrong password for ``name``; the count now."""
        with self._tx(write=True) as run:
            run("INSERT INTO forumqa_signin_failures (name, failures, last_failure) VALUES (?, 1, ?) "
                "ON CONFLICT (name) DO UPDATE SET failures = forumqa_signin_failures.failures + 1, "
                "last_failure = excluded.last_failure", name, now)
            row = run("SELECT failures FROM forumqa_signin_failures WHERE name = ?", name).fetchone()
            # Names nobody tried for a day are forgotten, so guessing names cannot grow the table for ever.
            run("DELETE FROM forumqa_signin_failures WHERE last_failure < ?", now - 86400)
        return int(row[0])

    def clear_failures(self, name: str) -> None:
        with self._tx(write=True) as run:
            run("DELETE FROM forumqa_signin_failures WHERE name = ?", name)

    # ------------------------------------------------------------------------------- audit

    def audit(self, at: float, actor: str, action: str, target: str, detail: str = "") -> None:
        with self._tx(write=True) as run:
            run("INSERT INTO forumqa_audit (at, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
                at, actor, action, target, detail)

    def audit_log(self, limit: int = 1000, since: float = 0.0) -> list[AuditRow]:
        """The latest ``limit`` entries since ``since``, oldest first."""
        with self._tx() as run:
            rows = run("SELECT at, actor, action, target, detail FROM forumqa_audit WHERE at >= ? "
                       "ORDER BY id DESC LIMIT ?", since, limit).fetchall()
        return [AuditRow(float(a), str(b), str(c), str(d), str(e)) for a, b, c, d, e in reversed(rows)]


def _user(row: Any) -> UserRow:
    name, role, password_hash, disabled, created, changed = row
    return UserRow(str(name), role, str(password_hash), bool(disabled), float(created), float(changed))
