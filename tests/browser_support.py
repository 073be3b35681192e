"""Debian's Chromium under Playwright, as every browser test launches it (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

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
