"""The documents panel in a real headless Chromium: the list, uploads and removals when the server allows
them (with the build status while the index is rebuilt), the document filter, and chips that name
the document when an answer cites several.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from browser_support import ask
from core_support import copy_workspace
from playwright.sync_api import BrowserContext, Page, expect
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA

pytestmark = pytest.mark.browser

REPORT = "third-korea-russia-forum"
REPORT_TITLE = "Third Korea-Russia Forum"
PANGYO = (
    b"Pangyo Techno Valley\n\n"
    b"Pangyo Techno Valley is a technology cluster in Seongnam, south of Seoul. It opened in 2011 and "
    b"now hosts about 1,700 companies that employ some 70,000 people.\n\n"
    b"Gyeonggi Province planned the cluster to attract software, biotechnology and game companies.\n"
)
PANGYO_ID = "pangyo-techno-valley"
QUESTION = "How many companies does Pangyo Techno Valley host?"
BUILD_MS = 600_000  # a rebuild shares two cores with the rest of the machine




@pytest.fixture(scope="module")
def upload_url(settings: Settings, qa: ForumQA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server over a writable copy of the session's corpus and index, with uploads allowed."""
    workspace = copy_workspace(settings, tmp_path_factory.mktemp("browser-uploads"))
    workspace = workspace.model_copy(update={"allow_uploads": True})
    with LiveServer(create_app(workspace, ForumQA.open(workspace, progress=False))) as server:
        yield server.url


@pytest.fixture
def upload_page(context: BrowserContext, upload_url: str) -> Page:
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(upload_url + "/")
    return page


def open_panel(page: Page) -> None:
    toggle = page.get_by_role("button", name="Documents", exact=True)
    toggle.click()
    expect(page.locator("#library")).to_be_visible()
    expect(toggle).to_have_attribute("aria-expanded", "true")


def test_the_panel_lists_the_documents_without_changes_when_not_allowed(page: Page, live_url: str) -> None:
    expect(page.locator("#library")).to_be_hidden()
    open_panel(page)
    listed = httpx.get(f"{live_url}/api/documents", timeout=30).json()["documents"]
    items = page.locator("#doc-list > li.doc")
    expect(items).to_have_count(len(listed))
    report = page.locator(f'#doc-list > li[data-doc="{REPORT}"]')
    expect(report.locator(".doc-title")).to_have_text(REPORT_TITLE)
    expect(report.locator(".doc-meta")).to_have_text(re.compile(r"^TXT · \d+\.\d KB$"))
    expect(report.locator("input.doc-check")).to_be_checked()
    expect(page.locator("#library-status")).to_have_text(re.compile("Index up to date: 1 document"))
    # This server has no API key and uploads are not allowed: no upload form, no remove buttons.
    expect(page.locator("#upload-form")).to_be_hidden()
    expect(page.locator(".doc-remove")).to_have_count(0)
    page.get_by_role("button", name="Close the documents panel").click()
    expect(page.locator("#library")).to_be_hidden()
    expect(page.get_by_role("button", name="Documents", exact=True)).to_be_focused()


def test_upload_filter_cite_and_remove(upload_page: Page, artifacts: Path) -> None:
    page = upload_page
    open_panel(page)
    expect(page.locator("#upload-form")).to_be_visible()
    expect(page.locator("#upload-note")).to_contain_text("read from the file itself")

    # A file that is no document: the server's message is shown, and the list is unchanged. Choosing a
    # file sends it: there is no other button to press.
    expect(page.get_by_role("button", name="Upload")).to_have_count(0)
    page.locator("#upload-file").set_input_files(
        files=[{"name": "fake.docx", "mimeType": "application/octet-stream", "buffer": b"PK\x03\x04 junk"}]
    )
    refused = page.locator("#upload-list > li.upload-item").filter(has_text="fake.docx")
    expect(refused.locator(".upload-item-error")).to_have_text(re.compile("damaged zip archive"))
    expect(page.locator("#upload-error")).to_be_hidden()
    expect(page.locator("#doc-list > li.doc")).to_have_count(1)

    # A real upload: the panel shows the build, then lists the new document.
    page.locator("#upload-file").set_input_files(
        files=[{"name": "pangyo.txt", "mimeType": "text/plain", "buffer": PANGYO}]
    )
    expect(page.locator("#upload-error")).to_be_hidden()
    expect(page.locator("#library-status")).to_contain_text("Building the index")
    expect(page.locator("#build-dot")).to_be_visible()
    page.screenshot(path=str(artifacts / "documents-building.png"))
    expect(page.locator("#library-status")).to_have_text(
        re.compile("Index up to date: 2 documents"), timeout=BUILD_MS
    )
    expect(page.locator("#build-dot")).to_be_hidden()
    pangyo = page.locator(f'#doc-list > li[data-doc="{PANGYO_ID}"]')
    expect(pangyo.locator(".doc-title")).to_have_text("Pangyo Techno Valley")
    expect(pangyo.locator(".doc-meta")).to_have_text(f"TXT · {len(PANGYO)} B")
    page.screenshot(path=str(artifacts / "documents-panel.png"))

    # Cited from the upload; the answer cites both documents, so every chip names its document.
    ask(page, QUESTION)
    answer = page.locator("#thread > .message.assistant").last
    expect(answer.locator("p.text")).to_contain_text("1,700 companies")
    chips = answer.locator(".chip")
    expect(chips.first).to_have_attribute("data-doc", PANGYO_ID)
    expect(chips.first.locator(".chip-doc")).to_have_text("Pangyo Techno Valley")
    assert chips.count() == answer.locator(".chip .chip-doc").count() > 1
    expect(answer.locator(f'.chip[data-doc="{REPORT}"] .chip-doc').first).to_have_text(REPORT_TITLE)

    # The filter: untick the upload, and the same question is answered from the report alone.
    pangyo.locator("input.doc-check").uncheck()
    expect(page.locator("#filter-note")).to_have_text(" Answering from 1 of 2 documents.")
    report_box = page.locator(f'#doc-list > li[data-doc="{REPORT}"] input.doc-check')
    expect(report_box).to_be_disabled()  # the last ticked document stays ticked
    with page.expect_request(lambda r: r.url.endswith("/api/answer/stream") and r.method == "POST") as sent:
        ask(page, QUESTION)
    assert sent.value.post_data_json["doc_ids"] == [REPORT]
    answer = page.locator("#thread > .message.assistant").last
    expect(answer.locator(".chip")).not_to_have_count(0)
    expect(answer.locator(f'.chip[data-doc="{PANGYO_ID}"]')).to_have_count(0)
    expect(answer.locator(".chip-doc")).to_have_count(0)  # one document cited: chips show sections only
    pangyo.locator("input.doc-check").check()
    expect(page.locator("#filter-note")).to_have_text("")

    # Removal takes two clicks, then the build drops the document from the list.
    remove = pangyo.get_by_role("button", name="Remove Pangyo Techno Valley")
    remove.click()
    expect(pangyo).to_be_visible()
    pangyo.get_by_role("button", name="Confirm removing Pangyo Techno Valley").click()
    expect(page.locator("#library-status")).to_have_text(
        re.compile("Index up to date: 1 document"), timeout=BUILD_MS
    )
    expect(page.locator("#doc-list > li.doc")).to_have_count(1)
    expect(page.locator(f'#doc-list > li[data-doc="{PANGYO_ID}"]')).to_have_count(0)


def test_the_panel_covers_the_chat_on_a_phone(context: BrowserContext, live_url: str) -> None:
    page = context.new_page()
    page.set_viewport_size({"width": 390, "height": 844})
    page.goto(live_url + "/")
    open_panel(page)
    box = page.locator("#library").bounding_box()
    assert box is not None and box["x"] == 0 and box["width"] == 390, box
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing may overflow sideways on a phone"
    page.keyboard.press("Escape")
    expect(page.locator("#library")).to_be_hidden()
