"""Who a request is: the middleware that resolves it to a :class:`rag.accounts.Principal`.

Modes (see README, "Accounts"):

* **No account exists** (today's behaviour): the API is open, or, with ``FORUMQA_API_KEY``, needs
  ``Authorization: Bearer <key>``.
* **Once an account exists**: ``/api`` and ``/v1`` need a session cookie (``POST /api/session``) or a token
  (``Authorization: Bearer fqa_…``, ``forumqa token create``); the single key still works, with an
  admin's powers. A request without either may read the collections granted to everyone (``'*'``), and
  gets 401 when there are none. ``/api/session`` and ``/api/config`` answer everyone, so the page can
  offer the sign-in form.

A request authenticated by its cookie that changes state (any method but GET, HEAD, OPTIONS) must carry the
session's CSRF proof in ``X-CSRF-Token`` (``GET /api/session`` gives it to the page); a page of another
site can neither read it nor send the cookie (``SameSite=Strict``). The principal lands in
``request.state.principal`` for the routes (:mod:`api.deps`), which filter what they return by it.

What a credential resolves to comes from :class:`rag.accounts.Accounts`' short cache, so a request waits on
the store only once every ``FORUMQA_AUTH_CACHE_SECONDS`` per credential (off the event loop then).
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from http.cookies import CookieError, SimpleCookie
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from api.limits import error_response, route_path, under
from rag.accounts import KEY, NOBODY, OPEN, Accounts, Principal, csrf_token, digest
from rag.config import Settings
from rag.store import StoreUnavailable

COOKIE = "forumqa_session"
CSRF_HEADER = b"x-csrf-token"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
#: Answer without credentials even once accounts exist: the sign-in itself, and what the page needs to
#: offer it.
OPEN_PATHS = frozenset({"/api/session", "/api/config"})
PROTECTED_PREFIXES = ("/api", "/v1")
CSRF_MISSING = ("this request changes something and lacks its CSRF proof (the X-CSRF-Token header the page "
                "sends): reload the page")
BEARER = {"WWW-Authenticate": 'Bearer realm="forum-qa"'}

SIGN_IN_FIRST = ("sign in first (POST /api/session, or the page's form), or send 'Authorization: Bearer "
                 "<token>' with a token from `forumqa token create`")


def header(scope: Scope, name: bytes) -> str:
    value = next((v for k, v in scope.get("headers", ()) if k == name), b"")
    return value.decode("latin-1")


def session_cookie(scope: Scope) -> str | None:
    raw = header(scope, b"cookie")
    if COOKIE not in raw:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(raw)
    except CookieError:
        return None
    morsel = jar.get(COOKIE)
    return morsel.value if morsel is not None and morsel.value else None


def principal_of(scope: Scope) -> Principal:
    """The principal the middleware resolved (the open server's when it did not run)."""
    state = scope.get("state") or {}
    principal = state.get("principal") if isinstance(state, dict) else None
    return principal if isinstance(principal, Principal) else OPEN


class AuthMiddleware:
    """Resolve each ``/api`` and ``/v1`` request to a principal, or answer 401/403 (see module docstring)."""

    def __init__(self, app: ASGIApp, settings: Settings, accounts: Callable[[], Accounts | None]) -> None:
        self.app = app
        self.key = settings.api_key.encode("utf-8") if settings.api_key else None
        self.accounts = accounts

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not under(route_path(scope), PROTECTED_PREFIXES):
            await self.app(scope, receive, send)
            return
        result = await self.resolve(scope)
        if isinstance(result, Response):
            await result(scope, receive, send)
            return
        scope.setdefault("state", {})["principal"] = result
        await self.app(scope, receive, send)

    async def _ask(self, accounts: Accounts, key: str, call: Callable[[], Any]) -> Any:
        # From memory when the cache holds it; else the store is asked off the event loop.
        return call() if accounts.fresh(key) else await run_in_threadpool(call)

    async def resolve(self, scope: Scope) -> Principal | Response:
        path = route_path(scope)
        accounts = self.accounts()
        try:
            return await self._resolve(scope, path, accounts)
        except StoreUnavailable:
            # The store cannot say who this is (a new credential while the database is away).
            return error_response(503, "unavailable", "the server cannot check credentials just now",
                                  {"Retry-After": "5"})

    async def _resolve(self, scope: Scope, path: str, accounts: Accounts | None) -> Principal | Response:
        active = bool(accounts and await self._ask(accounts, "active", accounts.active))
        given = header(scope, b"authorization").strip()
        if given:
            scheme, _, credential = given.partition(" ")
            credential = credential.strip()
            bearer = scheme.lower() == "bearer"
            if bearer and self.key and hmac.compare_digest(credential.encode("utf-8", "replace"), self.key):
                return KEY
            if active and accounts is not None:
                if bearer and credential:
                    principal = await self._ask(accounts, "t:" + digest(credential),
                                                lambda: accounts.by_token(credential))
                    if principal is not None:
                        return principal
                return error_response(401, "unauthorized", "the token is not valid: unknown, revoked, or its "
                                      "user is disabled", BEARER)
            if self.key:
                return error_response(401, "unauthorized", "the API key is not valid", BEARER)
            return OPEN  # an open server ignores credentials, as it always did
        if active and accounts is not None:
            cookie = session_cookie(scope)
            if cookie:
                principal = await self._ask(accounts, "s:" + digest(cookie),
                                            lambda: accounts.by_session(cookie))
                if principal is not None:
                    if scope["method"] not in SAFE_METHODS and not (
                        path == "/api/session" and scope["method"] == "POST"
                    ):
                        proof = header(scope, CSRF_HEADER)
                        expected = csrf_token(cookie).encode()
                        if not proof or not hmac.compare_digest(proof.encode("utf-8", "replace"), expected):
                            return error_response(403, "csrf", CSRF_MISSING)
                    return principal
            anonymous = await self._ask(accounts, "anonymous", accounts.anonymous)
            if anonymous is not None:
                return anonymous
            if path in OPEN_PATHS:
                return NOBODY
            return error_response(401, "unauthorized", SIGN_IN_FIRST, BEARER)
        if self.key:
            if path in OPEN_PATHS:
                return NOBODY
            return error_response(401, "unauthorized",
                                  "an API key is required: send 'Authorization: Bearer <key>'", BEARER)
        return OPEN
