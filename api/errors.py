"""Errors as JSON: every failure, whoever raises it, leaves as ``{"error": {"type", "message"}}``.

The shape is also what OpenAI's clients parse (``error.message``), so the ``/v1`` routes need nothing
of their own. Client mistakes get a 4xx with a message that says what to fix; anything unexpected is
logged with its traceback and answered with a generic 500 that leaks no internals.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from typing import Any

from fastapi import APIRouter, FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException as StarletteHTTPException

log = logging.getLogger(__name__)

# Kinds for the status codes Starlette itself raises (unknown route, wrong method, …).
_KIND_BY_STATUS = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "rate_limited",
    503: "unavailable",
}


class ApiError(Exception):
    """A failure with a status code, a stable ``type`` and a message meant for the client."""

    def __init__(self, status: int, type: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.headers = headers


def invalid(message: str) -> ApiError:
    """A 422 for a request that is well-formed JSON but asks for something we refuse."""
    return ApiError(422, "invalid_request", message)


def error_body(type: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"type": type, "message": message}
    if details:
        error["details"] = details
    return {"error": error}


def _json_error(
    status: int, type: str, message: str, details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(type, message, details), status_code=status, headers=headers)


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return _json_error(exc.status, exc.type, exc.message, headers=exc.headers)


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    kind = _KIND_BY_STATUS.get(exc.status_code, "server_error" if exc.status_code >= 500 else "bad_request")
    message = exc.detail if isinstance(exc.detail, str) else "request failed"
    if exc.status_code == 404 and message == "Not Found":
        message = f"no route for {request.method} {request.url.path}"
    headers = getattr(exc, "headers", None)
    if exc.status_code == 405:
        if message == "Method Not Allowed":
            message = f"{request.method} is not allowed on {request.url.path}"
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return _json_error(exc.status_code, kind, message, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at this path. Starlette names only the first route's, and a path
    may have several routes (GET and POST /api/documents are two): see :func:`record_route_methods`."""
    path = request.scope.get("path", "")
    root = request.scope.get("root_path", "")
    if root and path.startswith(root):
        path = path[len(root) :]
    table: list[tuple[re.Pattern[str], set[str]]] = getattr(request.app.state, "route_methods", [])
    return ", ".join(sorted({m for pattern, methods in table if pattern.match(path) for m in methods}))


def record_route_methods(app: FastAPI, routers: Iterable[APIRouter]) -> None:
    """Remember the path pattern and methods of every route of ``routers``, for the Allow of a 405."""
    app.state.route_methods = [
        (route.path_regex, set(route.methods or ())) for router in routers for route in router.routes
        if isinstance(route, APIRoute)
    ]


def _location(loc: tuple[Any, ...] | list[Any]) -> str:
    # ("body", "history", 0, "role") reads better as history[0].role; "body" itself says nothing.
    parts = [p for p in loc if p != "body"] if len(loc) > 1 else list(loc)
    out = ""
    for p in parts:
        out += f"[{p}]" if isinstance(p, int) else (f".{p}" if out else str(p))
    return out


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = list(exc.errors())
    if any(e.get("type") == "json_invalid" for e in errors):
        # Malformed JSON is a syntax problem of the whole body, not of a field: 400, not 422.
        reason = next(e for e in errors if e.get("type") == "json_invalid").get("ctx", {}).get("error", "")
        message = "the request body is not valid JSON" + (f": {reason}" if reason else "")
        return _json_error(400, "malformed_json", message)
    if any(tuple(e.get("loc", ())) == ("body",) for e in errors):
        # No body, or not a JSON object (FastAPI only parses bodies sent as application/json).
        return _json_error(422, "invalid_request",
                           "the request body must be a JSON object sent with Content-Type: application/json")
    details = [{"loc": _location(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
    message = "; ".join(f"{d['loc']}: {d['message']}" if d["loc"] else d["message"] for d in details[:3])
    if len(details) > 3:
        message += f" (and {len(details) - 3} more)"
    return _json_error(422, "invalid_request", message, jsonable_encoder(details))


async def _unexpected_error(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return _json_error(500, "internal_error", "the server failed to handle this request; it has been logged")


async def _store_error(request: Request, exc: Exception) -> JSONResponse:
    """The store is away (503, retry) or this server may only read it (403). The body says what happened,
    never where the store is (the log has that, scrubbed of any password where the error was made)."""
    from rag.store import ReadOnlyStore, StoreUnavailable

    if isinstance(exc, ReadOnlyStore):
        return _json_error(403, "forbidden", "this server's database role may only read; send changes to a "
                           "server that may write")
    log.warning("%s %s: %s", request.method, request.url.path, exc)
    public = exc.public if isinstance(exc, StoreUnavailable) else "the document store failed"
    response = _json_error(503, "unavailable", f"{public}; retry in a few seconds")
    response.headers["Retry-After"] = "2"
    return response


def install_error_handlers(app: FastAPI) -> None:
    from rag.store import StoreError

    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(StoreError, _store_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected_error)
