"""The chat page over a PDF corpus: citation chips and the report header name the printed page."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_support import chromium
from playwright.sync_api import Browser, Page, expect
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA

pytestmark = pytest.mark.browser

# Answered from page 2 of tests/data/report.pdf (the end-to-end test checks pages against print).
QUESTION = "What did the Russians say about small and midsize enterprises?"


@pytest.fixture(scope="module")
def pdf_browser() -> Iterator[Browser]:
    with chromium() as browser:
        yield browser


@pytest.fixture(scope="module")
def pdf_url(pdf_settings: Settings, pdf_qa: ForumQA) -> Iterator[str]:
    with LiveServer(create_app(pdf_settings, pdf_qa)) as server:
        yield server.url


@pytest.fixture
def pdf_page(pdf_browser: Browser, pdf_url: str) -> Iterator[Page]:
    context = pdf_browser.new_context(viewport={"width": 1366, "height": 860}, reduced_motion="reduce")
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(pdf_url + "/")
    yield page
    context.close()


def test_chips_and_report_show_the_page(pdf_page: Page, pdf_url: str, artifacts: Path) -> None:
    expected = httpx.post(f"{pdf_url}/api/answer", json={"question": QUESTION}, timeout=60).json()
    pages = [c["page"] for c in expected["citations"]]
    assert all(isinstance(p, int) and p >= 1 for p in pages)
    pdf_page.locator("#question").fill(QUESTION)
    pdf_page.locator("#question").press("Enter")
    chips = pdf_page.locator("#thread > .message.assistant:not(.pending)").last.locator(".chip")
    expect(chips).to_have_count(len(pages))
    # The page lists the cited passages first, in the order the answer cites them, then the others.
    cited = [int(n) for n in dict.fromkeys(re.findall(r"\[(\d+)\]", expected["answer"]))]
    shown = sorted(expected["citations"], key=lambda c: cited.index(c["n"]) if c["n"] in cited else 99)
    for chip, citation in zip(chips.all(), shown, strict=True):
        expect(chip.locator(".chip-label")).to_have_text(f"p. {citation['page']} · {citation['section']}")
        expect(chip).to_have_attribute("aria-label", re.compile(rf", page {citation['page']}\."))
    chips.first.click()
    first = shown[0]
    expect(pdf_page.locator("#report-meta")).to_have_text(re.compile(rf"· p\. {first['page']}\b"))
    expect(pdf_page.locator("#report mark.sentence")).to_have_count(1)
    assert first["page"] == 2
    pdf_page.screenshot(path=str(artifacts / "chat-pdf-citation.png"))
