"""The app factory: assembles routes, error handlers, middleware, static files and the lifespan.

``forumqa serve`` runs ``uvicorn api.main:create_app --factory``; tests call ``create_app(settings, qa)``
with a ForumQA they already loaded, so the models load once per test session.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from api.errors import install_error_handlers, record_route_methods
from api.routes import answers, documents, feedback, health, index, openai, pages, session
from api.routes.docs import install_docs
from api.routes.pages import STATIC_DIR
from api.security import install_security
from api.service import Loader, Service
from rag.config import Settings
from rag.qa import ForumQA

log = logging.getLogger(__name__)

DESCRIPTION = """\
Cited answers from the report of the Third Korea-Russia Forum, computed offline.

* `POST /api/answer` answers a question (with the chat history for follow-ups) and cites passages;
  every offset indexes the text returned by `GET /api/documents/{doc_id}`.
* `doc_ids` in `/api/answer` and `/api/search` restricts them to some documents.
* `POST /api/documents` (multipart, field `file`) and `DELETE /api/documents/{doc_id}` change the
  documents when the server allows it (`GET /api/config`); the index is rebuilt in the background
  while the old one serves (`GET /api/index/status`).
* `POST /api/feedback` rates an answer (by its `answer_id`) when the server takes feedback.
* `POST /v1/chat/completions` is the same as an OpenAI-compatible chat model named `forum-qa`.
* With accounts, `POST /api/session` signs in (a cookie; send the `csrf` it returns as `X-CSRF-Token` with
  requests that change something), or programs send `Authorization: Bearer <token>`; every answer, list and
  status then holds only the documents of the collections the user may read.
* Every error is JSON: `{"error": {"type": ..., "message": ...}}`.
"""

TAGS = [
    {"name": "answers", "description": "Questions and passage search."},
    {"name": "documents", "description": "The documents, to show citations in context; adding and removing "
     "them (with an API key or FORUMQA_ALLOW_UPLOADS), and the background rebuild that follows."},
    {"name": "feedback", "description": "Readers' ratings of answers (when FORUMQA_FEEDBACK is set); "
     "stored on the server, never listed."},
    {"name": "accounts", "description": "Signing in and out (a session cookie), and the audit log for "
     "admins. Once the server has accounts, every other /api and /v1 route needs a session or a token "
     "(`Authorization: Bearer`), except for collections granted to everyone."},
    {"name": "openai", "description": "OpenAI-compatible chat completions (model `forum-qa`)."},
    {"name": "health", "description": "Liveness and readiness probes."},
]


def create_app(
    settings: Settings | None = None, qa: ForumQA | None = None, *, loader: Loader | None = None
) -> FastAPI:
    """The forum-qa app. Without ``qa`` the index is loaded in the background at startup (by ``loader``,
    by default from the store the settings name, serving as soon as it answers)."""
    settings = settings or (qa.settings if qa is not None else Settings())
    service = Service(settings, qa)
    app = FastAPI(
        title="forum-qa",
        version="0.1.0",
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=_lifespan(service, loader),
        docs_url=None,  # FastAPI's docs pages load from a CDN; api/routes/docs.py serves local copies
        redoc_url=None,
    )
    app.state.service = service
    install_error_handlers(app)
    install_middleware(app, settings)
    routers = [m.router for m in (answers, documents, index, feedback, session, openai, health, pages)]
    for router in routers:
        app.include_router(router)
    record_route_methods(app, routers)
    install_docs(app)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def install_middleware(app: FastAPI, settings: Settings) -> None:
    """Where middleware is installed: api/security.py wraps the whole app in the security headers,
    CORS (``settings.cors_origins``), the rate limit, the API key and the body-size cap."""
    install_security(app, settings)


def _lifespan(
    service: Service, loader: Loader | None
) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        service.start(loader)  # the store's background work; the load, unless the app was given a ForumQA
        try:
            yield
        finally:
            service.stop()

    return lifespan
