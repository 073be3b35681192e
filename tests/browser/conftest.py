"""Fixtures of the browser tests: Debian's Chromium (never a downloaded one) and the app on loopback."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


# Module scope, not session: Playwright's sync API keeps an event loop running in the main thread while
# it is open, and later tests that call asyncio.run() (load and middleware tests) would fail under it.
@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        # Failing, not skipping: a silently skipped browser suite would pass CI without testing the page.
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`, as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


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
