"""Security: response headers, who a request is (the API key, sessions and tokens), CORS, and the one call
that installs it all.

Each protection is a small pure ASGI middleware with one job. :func:`install_security` wraps them
around the whole application, outside Starlette's error middleware, so even a 500 carries the
security headers. Order, outermost first::

    SecurityHeaders -> CORS (only with an allow-list) -> RateLimit (only when set)
        -> the feedback route's RateLimit (only with feedback on) -> Auth (api/auth.py) -> BodyLimit
        -> the FastAPI app

Rate limiting comes before the credential check so that guessing keys costs budget too; CORS comes before
both so a browser can read their 401 and 429 answers. Auth comes before the body cap, which is the upload
cap only for a request that may add documents. The app's OpenAPI schema documents these
answers too (:func:`document_security`).
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable, Iterable
from typing import Any

from starlette.applications import Starlette
from starlette.middleware.cors import CORSMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.auth import PROTECTED_PREFIXES, AuthMiddleware, principal_of
from api.limits import BodyLimitMiddleware, RateLimitMiddleware, route_path, under
from api.routes import docs
from api.schemas import MAX_FEEDBACK_BODY_BYTES
from rag.accounts import Accounts
from rag.config import Settings

#: The policy of every page and API answer: nothing from elsewhere, no inline script, no framing.
CSP = "default-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"


def docs_policy(inline_scripts: Iterable[str]) -> str:
    """The policy of the docs pages: :data:`CSP` plus what Swagger UI and ReDoc need, from this host only.

    * ``script-src``: our files, and each inline script in ``inline_scripts`` by its sha256 hash. A hash
      rather than ``'unsafe-inline'``: any other inline script or event handler, injected or not, still
      does not run. The hashes are computed at startup from the HTML FastAPI generates
      (:data:`api.routes.docs.INLINE_SCRIPTS`), so they follow FastAPI upgrades; the pages keep those
      scripts the same for every request (a ``root_path`` only changes ``src`` attributes), so one
      policy fits them all. The browser tests load both pages with this policy and no network.
    * ``style-src 'unsafe-inline'``: ReDoc's page has a ``<style>`` element, and both UIs set inline
      styles; a style cannot run code.
    * ``img-src data:``: Swagger UI draws its icons as data: URLs.
    * ``worker-src blob:``: ReDoc runs its search in a worker made from a blob: URL.
    """
    hashes = " ".join(
        f"'sha256-{base64.b64encode(hashlib.sha256(script.encode('utf-8')).digest()).decode()}'"
        for script in inline_scripts
    )
    return (
        f"default-src 'self'; script-src 'self' {hashes}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; worker-src 'self' blob:; "
        "frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    )


#: The policy of the interactive docs (/docs, /docs/oauth2-redirect, /redoc) only: no host but this one,
#: no inline script but FastAPI's own start-up scripts (by hash). See :func:`docs_policy`. (ReDoc's
#: "API docs by Redocly" logo comes from cdn.redoc.ly: blocked, the link shows as text.)
DOCS_CSP = docs_policy(docs.INLINE_SCRIPTS)

SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)

class SecurityHeadersMiddleware:
    """Add the CSP, ``nosniff``, ``no-referrer`` and ``DENY`` framing headers to every HTTP response.

    A header the app already set is left alone. Paths in ``docs_paths`` get :data:`DOCS_CSP`.
    """

    def __init__(self, app: ASGIApp, csp: str = CSP, docs_paths: Iterable[str] = (),
                 docs_csp: str = DOCS_CSP) -> None:
        self.app = app
        self.csp = csp.encode()
        self.docs_csp = docs_csp.encode()
        self.docs_paths = frozenset(docs_paths)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        csp = self.docs_csp if route_path(scope) in self.docs_paths else self.csp
        extra = ((b"content-security-policy", csp), *SECURITY_HEADERS)

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.extend((name, value) for name, value in extra if name not in present)
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)


def secure(
    app: ASGIApp,
    settings: Settings,
    docs_paths: Iterable[str] = (),
    accounts: Callable[[], Accounts | None] = lambda: None,
) -> ASGIApp:
    """``app`` wrapped in every protection ``settings`` asks for (see the module docstring for the order);
    ``accounts``: the server's accounts, once it has them (None: the API key alone decides)."""
    big = upload_limits(settings.model_copy(update={"allow_uploads": True}))[UPLOAD_ROUTE]

    def upload_cap(scope: Scope) -> tuple[int, str] | None:
        # A signed-in editor (or a token's) may upload even where uploads are otherwise off.
        principal = principal_of(scope)
        if principal.via in ("session", "token") and principal.may_write:
            return big
        return None

    wrapped: ASGIApp = BodyLimitMiddleware(app, settings.max_body_bytes, route_limits(settings),
                                           {UPLOAD_ROUTE: upload_cap})
    wrapped = AuthMiddleware(wrapped, settings, accounts)
    if settings.feedback:  # a budget of its own: a script must not fill the feedback file
        wrapped = RateLimitMiddleware(wrapped, settings.feedback_per_minute, (FEEDBACK_PATH,))
    if settings.rate_limit_per_minute:
        wrapped = RateLimitMiddleware(wrapped, settings.rate_limit_per_minute, PROTECTED_PREFIXES)
    if settings.cors_origins:
        wrapped = CORSMiddleware(
            wrapped,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST", "PATCH", "DELETE"],
            allow_headers=["Authorization", "Content-Type", "X-CSRF-Token"],
            allow_credentials=False,
            max_age=600,
        )
    return SecurityHeadersMiddleware(wrapped, docs_paths=docs_paths)


#: Room for the multipart framing (boundaries, part headers) around an uploaded file of the size cap.
MULTIPART_SLACK = 64 * 1024
UPLOAD_ROUTE = ("POST", "/api/documents")


FEEDBACK_PATH = "/api/feedback"


def route_limits(settings: Settings) -> dict[tuple[str, str], tuple[int, str]]:
    """The routes whose body cap differs from ``max_body_bytes``: the upload, and the feedback route
    (smaller: its fields' limits add up to less)."""
    limit = min(settings.max_body_bytes, MAX_FEEDBACK_BODY_BYTES)
    return {**upload_limits(settings), ("POST", FEEDBACK_PATH): (limit, "the feedback limit")}


def upload_limits(settings: Settings) -> dict[tuple[str, str], tuple[int, str]]:
    """The body cap of the upload route: a file of ``max_upload_bytes`` plus its multipart framing.

    Only when uploads are on: otherwise the route refuses every upload, and keeps the small cap so that
    a server with uploads off never reads a large body.
    """
    if not settings.uploads_enabled:
        return {UPLOAD_ROUTE: (settings.max_body_bytes, "uploads are off on this server")}
    limit = max(settings.max_body_bytes, settings.max_upload_bytes + MULTIPART_SLACK)
    named = f"the file limit FORUMQA_MAX_UPLOAD_BYTES is {settings.max_upload_bytes} bytes"
    return {UPLOAD_ROUTE: (limit, named)}


def _error_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """The API's error body in ``schema``: its ``ErrorResponse`` component if it has one."""
    if "ErrorResponse" in schema.get("components", {}).get("schemas", {}):
        return {"$ref": "#/components/schemas/ErrorResponse"}
    message = {"type": "object", "properties": {"type": {"type": "string"}, "message": {"type": "string"}},
               "required": ["type", "message"]}
    return {"type": "object", "properties": {"error": message}, "required": ["error"]}


def document_security(schema: dict[str, Any], settings: Settings) -> dict[str, Any]:
    """Add to an OpenAPI ``schema`` the answers the middleware may give instead of the route.

    Every operation with a body may answer 413; with an API key, the protected operations require
    the bearer scheme and may answer 401; with a rate limit, they may answer 429 with Retry-After.
    """
    error = {"application/json": {"schema": _error_schema(schema)}}
    retry_after = {"Retry-After": {"description": "Seconds to wait before retrying.",
                                   "schema": {"type": "integer"}}}
    if settings.api_key:
        schemes = schema.setdefault("components", {}).setdefault("securitySchemes", {})
        schemes["apiKey"] = {"type": "http", "scheme": "bearer",
                             "description": "FORUMQA_API_KEY, sent as 'Authorization: Bearer <key>'."}
    for path, operations in schema.get("paths", {}).items():
        protected = under(path, PROTECTED_PREFIXES)
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            if "requestBody" in operation:
                responses.setdefault("413", {"description": f"The body is larger than "
                                             f"FORUMQA_MAX_BODY_BYTES ({settings.max_body_bytes}).",
                                             "content": error})
            if protected and settings.api_key:
                operation["security"] = [{"apiKey": []}]
                responses.setdefault("401", {"description": "The API key is missing or wrong.",
                                             "content": error})
            if protected and settings.rate_limit_per_minute:
                responses.setdefault("429", {"description": "Too many requests from this client.",
                                             "headers": retry_after, "content": error})
    return schema


def install_security(app: Starlette, settings: Settings) -> None:
    """Wrap ``app``'s middleware stack, when it is first built, in :func:`secure`.

    Starlette's own ``add_middleware`` places middleware inside its ``ServerErrorMiddleware``, whose
    500 answers would then miss the security headers; wrapping the built stack puts the protections
    outermost. Call before the app serves its first request (``create_app`` does). The docs pages of
    api/routes/docs.py (:data:`api.routes.docs.PATHS`) get :data:`DOCS_CSP`.
    """
    if app.middleware_stack is not None:
        raise RuntimeError("install_security must be called before the app handles requests")
    build = app.build_middleware_stack

    def accounts() -> Accounts | None:
        service = getattr(app.state, "service", None)
        return getattr(service, "accounts", None)

    def build_secured() -> ASGIApp:
        return secure(build(), settings, docs.PATHS, accounts)

    app.build_middleware_stack = build_secured  # type: ignore[method-assign]

    openapi = getattr(app, "openapi", None)
    if openapi is not None:  # a FastAPI app: its schema documents the middleware's answers too

        def openapi_with_security() -> dict[str, Any]:
            fresh = getattr(app, "openapi_schema", None) is None
            schema: dict[str, Any] = openapi()
            return document_security(schema, settings) if fresh else schema

        app.openapi = openapi_with_security  # type: ignore[attr-defined]
