"""Routes /api/session (sign in, who is signed in, sign out) and /api/audit (who changed what; admins).

The session is a random key in an HttpOnly, SameSite=Strict cookie (Secure when served over https),
stored only as its sha256; it ends after FORUMQA_SESSION_HOURS, at sign-out, when the password changes or
the user is disabled. Wrong passwords meet a growing wait, said in the answer (429 with Retry-After while
it runs). Passwords and keys never reach a log.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from api.auth import COOKIE
from api.deps import Admin, ServiceDep, Viewer
from api.errors import ApiError
from api.schemas import AuditEntry, AuditLog, ErrorResponse, SessionOut, SignIn
from rag.accounts import Principal, SignInRefused, csrf_token
from rag.store import StoreError, StoreUnavailable

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["accounts"])


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


def _describe(principal: Principal, active: bool, collections: list[str], csrf: str | None) -> SessionOut:
    writable = collections if principal.write is None else [c for c in collections if c in principal.write]
    info = principal.public()
    return SessionOut(
        accounts=active, signed_in=principal.signed_in, user=principal.name,
        role=info["role"] if principal.via != "nobody" else None,
        via=principal.via, read=info["read"],
        write=writable if principal.may_write else [],
        csrf=csrf, expires=principal.expires,
    )


def _cookie_key(request: Request) -> str | None:
    return request.cookies.get(COOKIE) or None


@router.get("/session", response_model=SessionOut, summary="Who is signed in")
def who(request: Request, principal: Viewer, service: ServiceDep) -> SessionOut:
    """Whether the server has accounts, who this request is (its cookie or token), what they may read and
    write, and the CSRF proof the page sends with requests that change something."""
    active = service.accounts.active()
    key = _cookie_key(request) if principal.via == "session" else None
    collections = service.accounts.collections() if principal.may_write else []
    return _describe(principal, active, collections, csrf_token(key) if key else None)


@router.post(
    "/session",
    response_model=SessionOut,
    responses={400: _error("The body is not valid JSON."),
               401: _error("Wrong user name or password (the answer says when sign-in locks)."),
               403: _error("The account is disabled."),
               404: _error("This server has no accounts: there is nothing to sign in to."),
               415: _error("The body is not JSON."),
               429: _error("Too many wrong passwords in a row: wait Retry-After seconds."),
               503: _error("The store that keeps the accounts is unavailable just now.")},
    summary="Sign in",
)
def sign_in(body: SignIn, request: Request, response: Response, service: ServiceDep) -> SessionOut:
    """Checks the password and sets the session cookie (HttpOnly, SameSite=Strict, Secure over https)."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != "application/json":
        raise ApiError(415, "unsupported_media_type", "send the user name and password as JSON")
    if not service.accounts.active():
        raise ApiError(404, "not_found", "this server has no accounts: there is nothing to sign in to "
                       "(`forumqa user add` creates the first)")
    try:
        session = service.accounts.sign_in(body.username, body.password)
    except SignInRefused as exc:
        headers = {"Retry-After": str(max(1, round(exc.retry_after)))} if exc.retry_after else None
        if exc.locked and "more seconds" in str(exc):
            raise ApiError(429, "too_many_attempts", str(exc), headers=headers) from None
        if "disabled" in str(exc):
            raise ApiError(403, "forbidden", str(exc)) from None
        log.info("a sign-in was refused")  # never the name typed: it may be a password
        raise ApiError(401, "unauthorized", str(exc), headers=headers) from None
    except StoreUnavailable:
        raise ApiError(503, "unavailable", "sign-in is unavailable just now", headers={"Retry-After": "5"}) \
            from None
    except StoreError:  # a replica whose database role may only read cannot keep a session
        raise ApiError(503, "unavailable", "this server cannot keep sessions (its store is read-only): sign "
                       "in through another, or use a token") from None
    response.set_cookie(
        COOKIE, session.key, max_age=int(service.accounts.session_seconds), path="/api", httponly=True,
        samesite="strict", secure=request.url.scheme == "https",
    )
    log.info("%s signed in", session.principal.name)
    collections = service.accounts.collections() if session.principal.may_write else []
    return _describe(session.principal, True, collections, session.csrf)


@router.delete("/session", response_model=SessionOut, summary="Sign out")
def sign_out(request: Request, response: Response, service: ServiceDep) -> SessionOut:
    """Ends the session (the cookie is cleared); signed out already is fine too."""
    key = _cookie_key(request)
    if key:
        service.accounts.sign_out(key)
    response.delete_cookie(COOKIE, path="/api", httponly=True, samesite="strict",
                           secure=request.url.scheme == "https")
    return SessionOut(accounts=service.accounts.active(), signed_in=False)


@router.get(
    "/audit",
    response_model=AuditLog,
    responses={401: _error("Not signed in."), 403: _error("Not an admin.")},
    summary="Who changed what (admins)",
)
async def audit(
    principal: Admin,
    service: ServiceDep,
    limit: int = Query(200, ge=1, le=10_000, description="The latest entries, at most this many."),
    since: float = Query(0.0, ge=0, description="Only entries from this Unix time on."),
) -> AuditLog:
    """Documents added and removed (by whom, into or from which collection), users, tokens and grants
    changed, sign-ins locked: oldest first."""
    rows = await run_in_threadpool(service.accounts.audit_log, limit, since)
    return AuditLog(entries=[AuditEntry.model_validate(r) for r in rows])
