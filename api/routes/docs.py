"""Routes /docs, /docs/oauth2-redirect and /redoc: Swagger UI and ReDoc, served from this machine.

FastAPI's own docs pages load Swagger UI and ReDoc from cdn.jsdelivr.net, so they are blank offline.
These pages are FastAPI's (``get_swagger_ui_html`` and friends) pointed at the copies the
``fastapi-offline`` package ships, mounted at :data:`STATIC_URL`; ReDoc goes without Google fonts.

Each page may carry inline ``<script>`` elements (Swagger UI's start-up call, the OAuth2 redirect).
Their text does not depend on the request, so :data:`INLINE_SCRIPTS` holds it, read from the HTML
FastAPI generates, and api/security.py allows exactly those scripts by hash.
"""

from __future__ import annotations

import re
from pathlib import Path

import fastapi_offline
from fastapi import APIRouter, FastAPI, Request
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html, get_swagger_ui_oauth2_redirect_html
from fastapi.responses import HTMLResponse
from fastapi.staticfiles import StaticFiles

#: swagger-ui-bundle.js (Swagger UI 5), swagger-ui.css, redoc.standalone.js and favicon.png.
ASSETS_DIR = Path(fastapi_offline.__file__).resolve().parent / "static"
STATIC_URL = "/static-docs"
DOCS_URL = "/docs"
OAUTH2_REDIRECT_URL = "/docs/oauth2-redirect"
REDOC_URL = "/redoc"
#: The paths of the docs pages (they get the docs policy, see api/security.py).
PATHS = (DOCS_URL, OAUTH2_REDIRECT_URL, REDOC_URL)
#: Swagger UI loads the schema from here: relative to /docs, so it stays the app's /openapi.json even
#: under a ``root_path``, and the start-up script (and so its hash) is the same for every request.
OPENAPI_URL = "openapi.json"
#: Swagger UI options (None: FastAPI's defaults). They are part of the inline start-up script.
SWAGGER_UI_PARAMETERS: dict[str, object] | None = None

router = APIRouter(include_in_schema=False)


def swagger_ui_page(title: str, root_path: str = "") -> HTMLResponse:
    """Swagger UI for the app titled ``title``; its files under ``root_path`` + :data:`STATIC_URL`."""
    static = root_path.rstrip("/") + STATIC_URL
    return get_swagger_ui_html(
        openapi_url=OPENAPI_URL,
        title=f"{title} - Swagger UI",
        swagger_js_url=f"{static}/swagger-ui-bundle.js",
        swagger_css_url=f"{static}/swagger-ui.css",
        swagger_favicon_url=f"{static}/favicon.png",
        # Unused (the API has no OAuth2 scheme); kept root-less so the start-up script never varies.
        oauth2_redirect_url=OAUTH2_REDIRECT_URL,
        swagger_ui_parameters=SWAGGER_UI_PARAMETERS,
    )


def redoc_page(title: str, root_path: str = "") -> HTMLResponse:
    static = root_path.rstrip("/") + STATIC_URL
    return get_redoc_html(
        openapi_url=OPENAPI_URL,
        title=f"{title} - ReDoc",
        redoc_js_url=f"{static}/redoc.standalone.js",
        redoc_favicon_url=f"{static}/favicon.png",
        with_google_fonts=False,
    )


@router.get(DOCS_URL)
async def swagger_ui(request: Request) -> HTMLResponse:
    return swagger_ui_page(request.app.title, request.scope.get("root_path", ""))


@router.get(OAUTH2_REDIRECT_URL)
async def swagger_ui_redirect() -> HTMLResponse:
    return get_swagger_ui_oauth2_redirect_html()


@router.get(REDOC_URL)
async def redoc(request: Request) -> HTMLResponse:
    return redoc_page(request.app.title, request.scope.get("root_path", ""))


def install_docs(app: FastAPI) -> None:
    """Serve the docs pages and their files on ``app`` (created with ``docs_url=None, redoc_url=None``)."""
    app.include_router(router)
    app.mount(STATIC_URL, StaticFiles(directory=ASSETS_DIR), name="static-docs")


_INLINE_SCRIPT = re.compile(r"<script(?![^>]*\bsrc\s*=)[^>]*>(.*?)</script\s*>", re.DOTALL | re.IGNORECASE)


def inline_scripts(html: str | bytes) -> list[str]:
    """The text of every inline ``<script>`` element of ``html``, exactly as the browser hashes it."""
    text = html.decode("utf-8") if isinstance(html, bytes) else html
    return _INLINE_SCRIPT.findall(text)


def _pages_inline_scripts() -> tuple[str, ...]:
    pages = (swagger_ui_page("forum-qa"), redoc_page("forum-qa"), get_swagger_ui_oauth2_redirect_html())
    return tuple(dict.fromkeys(script for page in pages for script in inline_scripts(bytes(page.body))))


#: The inline scripts of the docs pages, computed once from the HTML this FastAPI version generates.
INLINE_SCRIPTS = _pages_inline_scripts()
