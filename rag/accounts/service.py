"""Accounts at work: passwords (argon2), sign-in with a growing delay after wrong passwords, sessions,
tokens for programs, grants resolved into a :class:`Principal`, and the audit log.

Every server process holds one :class:`Accounts` over its store's records. What a credential resolves to
is remembered for ``cache_seconds`` (2 s by default), so a request costs no database round trip while a
revocation, a disabled user or a changed grant still holds on every replica within that time plus one
request. Nothing here logs a password, a session key or a token.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from rag.accounts.model import (
    DEFAULT_COLLECTION,
    EVERYONE,
    LEVELS,
    ROLES,
    AccountError,
    Level,
    Principal,
    Role,
    collection_name,
    user_name,
)
from rag.accounts.records import AuditRow, SqlRecords, TokenRow, UserRow

log = logging.getLogger(__name__)

TOKEN_PREFIX = "fqa_"
MIN_PASSWORD = 8
MAX_PASSWORD = 1024
#: Wrong passwords allowed for a name before each further try must wait; the wait then doubles.
FREE_FAILURES = 5
FIRST_WAIT = 15.0
MAX_WAIT = 900.0
_CACHE_MAX = 10_000
#: What every request asks: kept (and refreshed) whether or not requests came lately.
_ALWAYS = ("active", "anonymous")

_hasher = PasswordHasher()
# Verified against for unknown names, so a wrong name takes as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_hex(16))


def digest(secret: str) -> str:
    """What is stored of a session key or token: its sha256 (they are random, 256 bits: no salt needed)."""
    return hashlib.sha256(secret.encode("utf-8", "surrogatepass")).hexdigest()


def csrf_token(session_key: str) -> str:
    """The CSRF proof of a session: derived from its key, which only the cookie carries (HttpOnly), so a
    page of another site can neither read nor compute it."""
    return hmac.new(session_key.encode(), b"forumqa-csrf", hashlib.sha256).hexdigest()


def wait_after(failures: int) -> float:
    """Seconds the next try must wait after ``failures`` wrong passwords in a row."""
    if failures < FREE_FAILURES:
        return 0.0
    return min(MAX_WAIT, FIRST_WAIT * 2 ** (failures - FREE_FAILURES))


class SignInRefused(Exception):
    """A sign-in was refused; ``retry_after``: seconds before another try is heard (0: none needed)."""

    def __init__(self, message: str, retry_after: float = 0.0, locked: bool = False) -> None:
        super().__init__(message)
        self.retry_after = retry_after
        self.locked = locked


@dataclass(frozen=True)
class Session:
    key: str  # the cookie's value: given to the browser once, stored only as its digest
    csrf: str
    principal: Principal


def check_password(password: str) -> str:
    if len(password) < MIN_PASSWORD:
        raise AccountError(f"a password needs at least {MIN_PASSWORD} characters")
    if len(password) > MAX_PASSWORD:
        raise AccountError(f"a password may have at most {MAX_PASSWORD} characters")
    return password


class Accounts:
    """Users, sessions, tokens and grants over ``records``."""

    def __init__(
        self,
        records: SqlRecords,
        session_seconds: float = 12 * 3600,
        cache_seconds: float = 2.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.records = records
        self.session_seconds = session_seconds
        self.cache_seconds = cache_seconds
        self.clock = clock
        # key -> [value, fetched (monotonic), last used (monotonic)]
        self._cache: dict[str, list[Any]] = {}
        self._lock = threading.Lock()
        self._follower: threading.Thread | None = None
        self._stopping = threading.Event()

    # ------------------------------------------------------------------------------- the cache
    #
    # Keys: "active", "anonymous", "s:<sha256 of a session key>", "t:<sha256 of a token>"; each is
    # recomputed from its key alone (:meth:`_compute`). A server starts :meth:`follow`: a thread that
    # recomputes every key in use every ``cache_seconds``, so a request reads memory only (never waiting on
    # a database that is down or frozen: it then keeps what it knew) and a revocation reaches every replica
    # within ``cache_seconds`` plus one query. Without the thread (the CLI, tests), a value older than
    # ``cache_seconds`` is recomputed when asked for.

    def _compute(self, key: str) -> Any:
        if key == "active":
            return self.records.any_user()
        if key == "anonymous":
            return self._anonymous()
        if key.startswith("s:"):
            return self._session(key[2:])
        if key.startswith("t:"):
            return self._token(key[2:])
        raise KeyError(key)

    def _cached(self, key: str) -> Any:
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None:
                hit[2] = now
                if self.following or now - hit[1] < self.cache_seconds:
                    return hit[0]
        value = self._compute(key)
        with self._lock:
            if len(self._cache) >= _CACHE_MAX:
                self._cache.clear()
            self._cache[key] = [value, now, now]
        return value

    def fresh(self, key: str) -> bool:
        """Whether ``key`` is answered from memory (else the store is asked: off the event loop, please)."""
        with self._lock:
            hit = self._cache.get(key)
        return hit is not None and (self.following or time.monotonic() - hit[1] < self.cache_seconds)

    def forget(self) -> None:
        with self._lock:
            self._cache.clear()

    @property
    def following(self) -> bool:
        return self._follower is not None and self._follower.is_alive()

    def follow(self) -> None:
        """Start the thread that keeps what credentials resolve to current (a server calls it once)."""
        if self.following:
            return
        self._stopping.clear()
        self._follower = threading.Thread(target=self._follow, name="forumqa-accounts", daemon=True)
        self._follower.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._follower is not None:
            self._follower.join(timeout=5)
            self._follower = None

    def _follow(self) -> None:
        failing = False
        for key in _ALWAYS:  # known from the start, so requests never wait on the store for them
            try:
                self._cached(key)
            except Exception as exc:
                log.warning("cannot read accounts from %s yet (%s)", self.records.where, type(exc).__name__)
                failing = True
        while not self._stopping.wait(self.cache_seconds or 0.5):
            try:
                self.refresh()
            except Exception as exc:  # the store is away: keep what we knew, and say so once
                if not failing:
                    log.warning("cannot refresh accounts from %s (%s); serving what was known",
                                self.records.where, type(exc).__name__)
                failing = True
                continue
            if failing:
                log.info("accounts refreshed again from %s", self.records.where)
            failing = False

    def refresh(self) -> None:
        """Recompute every key in use; forget those unused for ten minutes."""
        now = time.monotonic()
        with self._lock:
            keys = [k for k, (_, _, used) in self._cache.items() if now - used < 600 or k in _ALWAYS]
            keys += [k for k in _ALWAYS if k not in keys]
            for key in [k for k in self._cache if k not in keys]:
                del self._cache[key]
        for key in keys:
            value = self._compute(key)
            with self._lock:
                if key in self._cache:
                    self._cache[key][:2] = [value, time.monotonic()]
                elif key in _ALWAYS:
                    self._cache[key] = [value, time.monotonic(), time.monotonic()]

    # ------------------------------------------------------------------------------- modes

    def active(self) -> bool:
        """Whether any account exists: then requests need a session, a token or a grant to everyone."""
        return bool(self._cached("active"))

    def anonymous(self) -> Principal | None:
        """What a request without credentials may read (the collections granted to everyone), or None."""
        return self._cached("anonymous")

    def _anonymous(self) -> Principal | None:
        read = frozenset(g.collection for g in self.records.grants(EVERYONE))
        return Principal(None, "anonymous", "anonymous", read, frozenset()) if read else None

    # ------------------------------------------------------------------------------- principals

    def principal_of(self, user: UserRow, via: str, expires: float | None = None) -> Principal:
        if user.role == "admin":
            return Principal(user.name, "admin", via, None, None, expires)  # type: ignore[arg-type]
        grants = self.records.grants(user.name, EVERYONE)
        read = frozenset(g.collection for g in grants)
        write = frozenset(g.collection for g in grants if g.level == "write" and g.subject == user.name
                          and user.role == "editor")
        return Principal(user.name, user.role, via, read, write, expires)  # type: ignore[arg-type]

    def by_session(self, key: str) -> Principal | None:
        """The principal of a live session, or None (unknown, expired, its user disabled)."""
        principal: Principal | None = self._cached("s:" + digest(key))
        if principal is not None and principal.expires is not None and principal.expires <= self.clock():
            return None
        return principal

    def _session(self, key_hash: str) -> Principal | None:
        found = self.records.session(key_hash)
        if found is None or found[1] <= self.clock():
            return None
        user = self.records.user(found[0])
        if user is None or user.disabled:
            return None
        return self.principal_of(user, "session", found[1])

    def by_token(self, token: str) -> Principal | None:
        """The principal of a token, or None (unknown, revoked, its user disabled)."""
        if not token.startswith(TOKEN_PREFIX) or len(token) > 200:
            return None
        return self._cached("t:" + digest(token))

    def _token(self, key_hash: str) -> Principal | None:
        found = self.records.token(key_hash)
        if found is None:
            return None
        user = self.records.user(found[1])
        if user is None or user.disabled:
            return None
        return self.principal_of(user, "token")

    # ------------------------------------------------------------------------------- sign-in

    def sign_in(self, name: str, password: str) -> Session:
        """A new session for ``name``; :class:`SignInRefused` for a wrong name or password (the same
        answer for both), while the wait after wrong passwords runs, or for a disabled user."""
        try:
            name = user_name(name)
        except AccountError:
            name = name.strip().lower()[:64]
        now = self.clock()
        failures, last = self.records.failures(name)
        wait = wait_after(failures) - (now - last)
        if wait > 0:
            raise SignInRefused(
                f"{failures} wrong passwords in a row for this user: sign-in is locked for {wait:.0f} more "
                "seconds", retry_after=wait, locked=True)
        user = self.records.user(name)
        ok = False
        try:
            ok = _hasher.verify(user.password_hash if user else _DUMMY_HASH, password) and user is not None
        except (VerificationError, InvalidHashError):
            ok = False
        if not ok or user is None:
            failures = self.records.fail(name, now)
            wait = wait_after(failures)
            message = "wrong user name or password"
            if wait:
                message += (f"; after {failures} wrong passwords in a row, sign-in is locked for "
                            f"{wait:.0f} seconds")
                if failures == FREE_FAILURES:
                    self.audit("-", "signin.locked", name, f"{failures} wrong passwords")
            raise SignInRefused(message, retry_after=wait, locked=bool(wait))
        if failures:
            self.records.clear_failures(name)
        if user.disabled:
            raise SignInRefused("this account is disabled; ask an administrator")
        if _hasher.check_needs_rehash(user.password_hash):
            self.records.set_password(user.name, _hasher.hash(password), user.changed)
        key = secrets.token_urlsafe(32)
        expires = now + self.session_seconds
        self.records.add_session(digest(key), user.name, now, expires)
        return Session(key, csrf_token(key), self.principal_of(user, "session", expires))

    def sign_out(self, key: str) -> None:
        self.records.end_session(digest(key))
        with self._lock:
            self._cache.pop("s:" + digest(key), None)

    # ------------------------------------------------------------------------------- administration

    def add_user(self, name: str, role: str, password: str, actor: str = "cli") -> str:
        name = user_name(name)
        if role not in ROLES:
            raise AccountError(f"the role must be one of {', '.join(ROLES)}, not {role!r}")
        self.records.add_user(name, role, _hasher.hash(check_password(password)), self.clock())
        self.audit(actor, "user.add", name, role)
        self.forget()
        return name

    def users(self) -> list[UserRow]:
        return self.records.users()

    def _user(self, name: str) -> UserRow:
        user = self.records.user(user_name(name))
        if user is None:
            raise AccountError(f"there is no user {name!r} (`forumqa user list` lists them)")
        return user

    def set_disabled(self, name: str, disabled: bool, actor: str = "cli") -> None:
        user = self._user(name)
        self.records.set_disabled(user.name, disabled)
        self.audit(actor, "user.disable" if disabled else "user.enable", user.name)
        self.forget()

    def set_password(self, name: str, password: str, actor: str = "cli") -> None:
        user = self._user(name)
        self.records.set_password(user.name, _hasher.hash(check_password(password)), self.clock())
        self.records.clear_failures(user.name)
        self.audit(actor, "user.password", user.name, "sessions ended")
        self.forget()

    def create_token(self, user: str, name: str | None = None, actor: str = "cli") -> tuple[str, str]:
        """A new token for ``user``: (its name, the token itself, shown this once)."""
        owner = self._user(user)
        if name is None:
            taken = {t.name for t in self.records.tokens()}
            n = 1
            while f"{owner.name}-{n}" in taken:
                n += 1
            name = f"{owner.name}-{n}"
        name = user_name(name)
        token = TOKEN_PREFIX + secrets.token_urlsafe(32)
        self.records.add_token(name, owner.name, digest(token), self.clock())
        self.audit(actor, "token.create", name, f"for {owner.name}")
        return name, token

    def tokens(self) -> list[TokenRow]:
        return self.records.tokens()

    def revoke_token(self, name: str, actor: str = "cli") -> str:
        owner = self.records.revoke_token(name.strip().lower())
        if owner is None:
            raise AccountError(f"there is no token named {name!r} (`forumqa token list` lists them)")
        self.audit(actor, "token.revoke", name, f"of {owner}")
        self.forget()
        return owner

    def add_collection(self, name: str, actor: str = "cli") -> str:
        name = collection_name(name)
        self.records.add_collection(name, self.clock())
        self.audit(actor, "collection.create", name)
        return name

    def collections(self) -> list[str]:
        return self.records.collections()

    def check_collection(self, name: str) -> str:
        name = collection_name(name)
        if name not in self.records.collections():
            raise AccountError(f"there is no collection {name!r} (`forumqa collection create {name}`)")
        return name

    def grant(self, subject: str, collection: str, level: str, actor: str = "cli") -> None:
        if level not in LEVELS:
            raise AccountError(f"the level must be read or write, not {level!r}")
        collection = self.check_collection(collection)
        if subject.strip() == EVERYONE:
            if level == "write":
                raise AccountError("everyone ('*') may only be granted read: writing needs an editor")
            subject = EVERYONE
        else:
            user = self._user(subject)
            if level == "write" and user.role == "reader":
                raise AccountError(f"{user.name} is a reader, and readers never change documents: grant "
                                   "read, or make an editor")
            subject = user.name
        self.records.grant(subject, collection, level)
        self.audit(actor, "grant", collection, f"{level} to {subject}")
        self.forget()

    def revoke(self, subject: str, collection: str, actor: str = "cli") -> None:
        subject = EVERYONE if subject.strip() == EVERYONE else user_name(subject)
        if not self.records.revoke(subject, collection_name(collection)):
            raise AccountError(f"{subject} has no grant on {collection!r}")
        self.audit(actor, "revoke", collection, f"from {subject}")
        self.forget()

    def audit(self, actor: str, action: str, target: str, detail: str = "") -> None:
        self.records.audit(self.clock(), actor, action, target, detail)

    def audit_log(self, limit: int = 1000, since: float = 0.0) -> list[AuditRow]:
        return self.records.audit_log(limit, since)


def writable_default(principal: Principal, collections: list[str]) -> str | None:
    """The collection an upload without one goes to: the default when the principal may write it, else the
    only one it may write; None when that is not one collection."""
    if principal.may_write_collection(DEFAULT_COLLECTION):
        return DEFAULT_COLLECTION
    mine = [c for c in collections if principal.may_write_collection(c)]
    return mine[0] if len(mine) == 1 else None


__all__ = ["Accounts", "Level", "Role", "Session", "SignInRefused", "check_password", "csrf_token", "digest",
           "wait_after", "writable_default"]
