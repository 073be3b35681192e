"""Debian's Chromium under Playwright, as every browser test launches it (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, BrowserContext, Locator, Page, expect, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
]


@contextmanager
def chromium() -> Iterator[Browser]:
    """A headless Chromium; use it for one test module at a time (see tests/browser/conftest.py)."""
    if not CHROMIUM.exists():
        # Failing, not skipping: a silently skipped browser suite would pass CI without testing the page.
        pytest.fail(f"{CHROMIUM} is missing: install Debian's chromium (`make chromium`, as root)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def ask(page: Page, question: str) -> Locator:
    """Type the question and press Enter, wait until its answer (or error) replaced the placeholder, and
    return that answer's message: by position, not .last, so it keeps naming this answer after more."""
    answered = page.locator("#thread > .message.assistant:not(.pending)").count()
    page.locator("#question").fill(question)
    page.locator("#question").press("Enter")
    expect(page.locator("#thread > .message.assistant:not(.pending)")).to_have_count(answered + 1)
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "false")
    return page.locator("#thread > .message.assistant").nth(answered)


def last_answer(page: Page) -> Locator:
    return page.locator("#thread > .message.assistant").last


VIEWPORTS = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}


class Watched:
    """A page in its own browser context, with its console errors collected (``errors``); ``init_script``
    runs before the page's own scripts."""

    def __init__(self, browser: Browser, url: str, viewport: dict[str, int], name: str,
                 init_script: str | None = None) -> None:
        self.name = name
        self.context: BrowserContext = browser.new_context(viewport=viewport, reduced_motion="reduce")
        if init_script:
            self.context.add_init_script(init_script)
        self.errors: list[str] = []
        self.page = self.context.new_page()
        self.page.set_default_timeout(20_000)
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.goto(url + "/")
