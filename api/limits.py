"""Limits: a cap on request bodies and a per-client rate limit, as pure ASGI middleware.

Both answer with the service's JSON error shape (``{"error": {"type", "message"}}``) and pass
every non-HTTP scope (lifespan, websockets) through untouched.
"""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping

from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import error_body


def error_response(
    status: int, type_: str, message: str, headers: dict[str, str] | None = None
) -> JSONResponse:
    """A JSON error in the API's format (:func:`api.errors.error_body`), sent before the app runs."""
    return JSONResponse(error_body(type_, message), status_code=status, headers=headers)


def route_path(scope: Scope) -> str:
    """The path the router matches: ``scope["path"]`` without the ``root_path`` a proxy mounted us under."""
    path: str = scope["path"]
    root: str = scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    return path or "/"


def under(path: str, prefixes: Iterable[str]) -> bool:
    """True when ``path`` is one of ``prefixes`` (given without a trailing slash) or lies below one."""
    return any(path == p or path.startswith(p + "/") for p in prefixes)


# ---------------------------------------------------------------------------------------- body cap


class BodyTooLarge(HTTPException):
    """Raised from ``receive`` once the body passes the cap.

    An :class:`HTTPException`, so FastAPI re-raises it instead of turning it into a 400 "error parsing
    the body", and the app's own HTTP error handler renders the 413.
    """

    def __init__(self, limit: int) -> None:
        super().__init__(status_code=413, detail=f"the request body is larger than {limit} bytes")


class BodyLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413.

    A declared ``Content-Length`` over the cap is refused before the app runs. Otherwise the bytes are
    counted as the app reads them (``receive`` is wrapped), so a chunked upload without a length is
    cut off at the cap too, never buffered whole. ``routes`` gives single routes, by (method, path),
    a cap of their own and the words that name it: the document upload takes files far larger than
    any JSON question.
    """

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        routes: Mapping[tuple[str, str], tuple[int, str]] | None = None,
        deciders: Mapping[tuple[str, str], Callable[[Scope], tuple[int, str] | None]] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.routes = dict(routes or {})
        # Routes whose cap depends on the request (who sends it): asked first, None falls back to routes.
        self.deciders = dict(deciders or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        route = (scope["method"], route_path(scope))
        decider = self.deciders.get(route)
        decided = decider(scope) if decider is not None else None
        limit, named = decided or self.routes.get(route, (self.max_bytes, ""))
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await self._too_large(scope, receive, send, limit, named)
            return

        received = 0
        started = False

        async def capped_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, capped_receive, watched_send)
        except BodyTooLarge:
            if started:  # the app answered already; nothing sensible left to send
                raise
            await self._too_large(scope, receive, send, limit, named)

    async def _too_large(self, scope: Scope, receive: Receive, send: Send, limit: int, named: str) -> None:
        message = f"the request body is larger than {limit} bytes" + (f" ({named})" if named else "")
        response = error_response(413, "payload_too_large", message, {"Connection": "close"})
        await response(scope, receive, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the server rejects a malformed length before we see it
    return None


# ---------------------------------------------------------------------------------------- rate limit


class TokenBucket:
    """Per-key token buckets: ``rate_per_minute`` tokens a minute, bursts up to the same number.

    Memory is bounded: the least recently seen keys beyond ``max_keys`` are forgotten (a forgotten
    client simply starts again with a full bucket). Not thread-safe; it lives on one event loop.
    """

    def __init__(self, rate_per_minute: int, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate_per_minute < 1:
            raise ValueError("rate_per_minute must be at least 1")
        self.capacity = float(rate_per_minute)
        self.per_second = rate_per_minute / 60.0
        self.max_keys = max_keys
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, stamp)

    def take(self, key: str) -> float:
        """Spend one token for ``key``: 0.0 when allowed, else the seconds until a token is available."""
        now = self.clock()
        tokens, stamp = self._buckets.pop(key, (self.capacity, now))
        tokens = min(self.capacity, tokens + (now - stamp) * self.per_second)
        wait = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait = (1.0 - tokens) / self.per_second
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return wait

    def __len__(self) -> int:
        return len(self._buckets)


class RateLimitMiddleware:
    """429 with ``Retry-After`` once a client (by IP) exceeds its budget on the paths under ``prefixes``.

    The client is ``scope["client"]``: the peer address, or the address uvicorn took from
    ``X-Forwarded-For`` when the peer is a proxy listed in ``--forwarded-allow-ips``. The limit is per
    process, so with N workers a client gets up to N times the budget.
    """

    def __init__(self, app: ASGIApp, rate_per_minute: int, prefixes: Iterable[str] = ("/api", "/v1"),
                 bucket: TokenBucket | None = None) -> None:
        self.app = app
        self.prefixes = tuple(prefixes)
        self.bucket = bucket or TokenBucket(rate_per_minute)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not under(route_path(scope), self.prefixes):
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        wait = self.bucket.take(client[0] if client else "unknown")
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            response = error_response(
                429, "rate_limited", f"too many requests; try again in {seconds} s",
                {"Retry-After": str(seconds)},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
