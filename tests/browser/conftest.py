"""Fixtures of the browser tests: Debian's Chromium (never a downloaded one) and the app on loopback."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from browser_support import chromium
from playwright.sync_api import Browser, BrowserContext, Page
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA


# Module scope, not session: Playwright's sync API keeps an event loop running in the main thread while
# it is open, and later tests that call asyncio.run() (load and middleware tests) would fail under it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="session")
def live_url(settings: Settings, qa: ForumQA) -> Iterator[str]:
    with LiveServer(create_app(settings, qa)) as server:
        yield server.url


@pytest.fixture
def context(browser: Browser) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport={"width": 1366, "height": 860}, reduced_motion="reduce")
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext, live_url: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(live_url + "/")
    return page
