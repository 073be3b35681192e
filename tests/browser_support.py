"""Debian's Chromium under Playwright, as every browser test launches it (never a downloaded browser)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

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
