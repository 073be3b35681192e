"""Uploads in a real headless Chromium: files dropped on the page are listed at once, then follow the real
background build until the index serves them; a refused file says why, inline, next to its name.

The server allows uploads over a private copy of the session's corpus and index. Drag and drop is the
browser's own: a DataTransfer holding File objects, dispatched as dragenter, dragover and drop.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_support import copy_workspace
from fastapi import FastAPI
from playwright.sync_api import Browser, BrowserContext, ConsoleMessage, Page, Route, expect
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA

pytestmark = pytest.mark.browser

PANGYO = (
    "Pangyo Techno Valley\n\n"
    "Pangyo Techno Valley is a technology cluster in Seongnam, south of Seoul. It opened in 2011 and "
    "now hosts about 1,700 companies that employ some 70,000 people.\n\n"
    "Gyeonggi Province planned the cluster to attract software, biotechnology and game companies.\n"
)
CAP = 256 * 1024  # the server's FORUMQA_MAX_UPLOAD_BYTES here
BUILD_MS = 600_000  # a rebuild shares two cores with the rest of the machine
# The browser logs a refused request as a console error of its own; only those are expected.
REFUSALS = re.compile(r"^Failed to load resource: the server responded with a status of (409|413|415|422) ")

# Records every state each upload entry goes through (data-state): the value each change replaced, in
# order, then the current one. Read with uploadStates().
STATE_LOG = """
const replaced = new Map();
new MutationObserver((changes) => {
  for (const change of changes) {
    if (!change.target.matches("li.upload-item")) continue;
    if (!replaced.has(change.target)) replaced.set(change.target, []);
    replaced.get(change.target).push(change.oldValue);
  }
}).observe(document,
  { subtree: true, attributes: true, attributeOldValue: true, attributeFilter: ["data-state"] });
const items = () => [...document.querySelectorAll("li.upload-item")];
window.uploadStates = () => Object.fromEntries(items().map((item) => {
  const states = [...(replaced.get(item) || []), item.dataset.state].filter((s, i, all) => s !== all[i - 1]);
  return [item.querySelector(".upload-name").textContent, states];
}));
"""


def drop_files(page: Page, selector: str, files: list[dict[str, Any]],
               events: tuple[str, ...] = ("dragenter", "dragover", "drop")) -> None:
    """Drag ``files`` ({name, text} or {name, size}) over the page and drop them on ``selector``."""
    page.evaluate(
        """([selector, files, events]) => {
          const data = new DataTransfer();
          for (const f of files) {
            const body = f.text !== undefined ? [f.text] : [new Uint8Array(f.size)];
            data.items.add(new File(body, f.name, { type: f.type || "" }));
          }
          const target = document.querySelector(selector);
          for (const type of events) {
            const init = { dataTransfer: data, bubbles: true, cancelable: true };
            target.dispatchEvent(new DragEvent(type, init));
          }
        }""",
        [selector, files, list(events)],
    )


@pytest.fixture(scope="module")
def upload_app(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    workspace = copy_workspace(settings, tmp_path_factory.mktemp("browser-drop"))
    workspace = workspace.model_copy(update={"allow_uploads": True, "max_upload_bytes": CAP})
    return create_app(workspace, ForumQA.open(workspace, progress=False))


@pytest.fixture(scope="module")
def upload_url(upload_app: FastAPI) -> Iterator[str]:
    with LiveServer(upload_app) as server:
        yield server.url


@pytest.fixture
def build_gate(upload_app: FastAPI) -> Iterator[threading.Event]:
    """The server's background builds wait for this event before they start (a slow build, injected), so
    the page is seen while a build runs however fast this one would be; set, they run for real."""
    rebuilder = upload_app.state.service.store.rebuilder  # the file store's in-process builder
    start, real_build = threading.Event(), rebuilder._build

    def held(settings: Settings, **kwargs: Any) -> Any:  # the builder's keywords: on_stage, on_publish...
        start.wait(timeout=120)
        return real_build(settings, **kwargs)

    rebuilder._build = held
    try:
        yield start
    finally:
        start.set()
        rebuilder._build = real_build


def watched_page(context: BrowserContext, url: str, problems: list[str]) -> Page:
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.add_init_script(STATE_LOG)

    def console(message: ConsoleMessage) -> None:
        if message.type == "error" and not REFUSALS.match(message.text):
            problems.append(message.text)

    page.on("console", console)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url + "/")
    return page


def item(page: Page, name: str) -> Any:
    return page.locator("#upload-list > li.upload-item").filter(
        has=page.locator(".upload-name", has_text=re.compile(f"^{re.escape(name)}$")))


def test_dropped_files_are_listed_then_built_and_refusals_shown_inline(
    browser: Browser, upload_url: str, build_gate: threading.Event, artifacts: Path
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    problems: list[str] = []
    page = watched_page(context, upload_url, problems)
    expect(page.locator("#library")).to_be_hidden()
    # The status of the real (staged) build is shown as the server sends it.
    statuses: list[dict[str, Any]] = []
    page.on("response", lambda r: statuses.append(r.json()) if r.url.endswith("/api/index/status") else None)

    # Files dragged over the chat: the page says where they will go.
    files = [{"name": "pangyo.txt", "text": PANGYO, "type": "text/plain"},
             {"name": "fake.docx", "text": "PK\u0003\u0004 junk"}]
    drop_files(page, "#chat", files, ("dragenter", "dragover"))
    expect(page.locator("#drop-overlay")).to_be_visible()
    expect(page.locator("#drop-overlay")).to_have_text("Drop to add to the documents")
    page.screenshot(path=str(artifacts / "uploads-dragging-1280.png"))
    # Dropped: the panel opens and lists both at once; the second waits its turn.
    drop_files(page, "#chat", files, ("drop",))
    expect(page.locator("#drop-overlay")).to_be_hidden()
    expect(page.locator("#library")).to_be_visible()
    expect(page.locator("#upload-list > li.upload-item")).to_have_count(2)
    pangyo, fake = item(page, "pangyo.txt"), item(page, "fake.docx")
    expect(pangyo.locator(".upload-size")).to_have_text(f"{len(PANGYO)} B")

    # The refused file: why, next to its name; the panel's own error box stays hidden.
    expect(fake).to_have_attribute("data-state", "failed")
    refusal = re.compile(r"^Not a document forum-qa can read: a damaged zip archive")
    expect(fake.locator(".upload-item-error")).to_have_text(refusal)
    expect(fake.locator(".upload-item-error")).to_have_attribute("role", "alert")
    expect(page.locator("#upload-error")).to_be_hidden()

    # The accepted one follows the build as the server reports it (held at the gate: every stage waits)...
    expect(pangyo).to_have_attribute("data-state", "building")
    expect(pangyo.locator(".upload-state")).to_have_text(
        re.compile(r"^Building the index( · (under 1 s|\d+ s) so far)?…$"))
    expect(pangyo.locator("progress")).to_be_hidden()  # no done/total to show
    expect(page.locator("#library-status")).to_contain_text("1 new document is not searchable yet")
    page.screenshot(path=str(artifacts / "uploads-building-1280.png"))
    build_gate.set()
    # ... then is listed among the documents.
    expect(pangyo).to_have_attribute("data-state", "done", timeout=BUILD_MS)
    expect(pangyo.locator(".upload-state")).to_have_text(
        "Added as “Pangyo Techno Valley”: questions can use it now.")
    expect(page.locator('#doc-list > li[data-doc="pangyo-techno-valley"]')).to_be_visible()
    expect(page.locator("#library-status")).to_have_text(re.compile("Index up to date: 2 documents"))
    page.screenshot(path=str(artifacts / "uploads-done-1280.png"))
    states = page.evaluate("window.uploadStates()")
    assert states["pangyo.txt"] == ["waiting", "uploading", "building", "done"], states
    assert states["fake.docx"] == ["waiting", "uploading", "failed"], states
    building = [s for s in statuses if s["state"] == "building"]
    assert building and all("stages" in s for s in statuses)  # the staged builder (issue 17) sends them

    # The same file again: refused as already there, inline; the file box is free for the next one.
    drop_files(page, "#library", [{"name": "pangyo.txt", "text": PANGYO, "type": "text/plain"}])
    again = page.locator("#upload-list > li.upload-item").last
    expect(again.locator(".upload-item-error")).to_have_text(re.compile("^Already there: "))
    # Dismissing a finished entry removes it and puts focus back on the file box.
    again.get_by_role("button", name="Dismiss pangyo.txt").click()
    expect(page.locator("#upload-list > li.upload-item")).to_have_count(2)
    expect(page.locator("#upload-file")).to_be_focused()
    assert problems == []
    context.close()


def test_build_stages_are_shown_with_counts_rate_and_time_left(
    browser: Browser, upload_url: str, build_gate: threading.Event, artifacts: Path
) -> None:
    """The staged builder (issue 17) adds ``stages`` to /api/index/status. Until it lands, the real status
    of the real build (held back until the page has been looked at) is passed through with the shape it
    will have added, so the page's rendering of it is held to the contract; the build itself, its end and
    the document it serves are real."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, reduced_motion="reduce")
    problems: list[str] = []
    page = watched_page(context, upload_url, problems)

    def with_stages(route: Route) -> None:
        response = route.fetch()
        status = response.json()
        if status["state"] == "building":
            unknown = {"done": None, "total": None, "rate": None, "seconds": None}
            status["stages"] = [
                {"name": "text", "state": "done", **unknown, "done": 1, "total": 1, "seconds": 0.4},
                {"name": "minilm", "state": "running", **unknown, "done": 120, "total": 400, "rate": 46.0},
                {"name": "e5", "state": "waiting", **unknown},
            ]
            status["done"], status["total"] = 120, 400
        route.fulfill(response=response, body=json.dumps(status))

    page.route("**/api/index/status", with_stages)
    page.get_by_role("button", name="Documents", exact=True).click()
    oversized = {"name": "too-big.pdf", "size": 300 * 1024}
    songdo = ("Songdo International City\n\nSongdo is built on land reclaimed from the Yellow Sea near "
              "Incheon. Its central park covers 41 hectares and was finished in 2009.\n")
    drop_files(page, "#library", [{"name": "songdo.txt", "text": songdo}, oversized])

    # Refused by the page before sending (the server would cut the upload off at its cap).
    too_big = item(page, "too-big.pdf")
    expect(too_big.locator(".upload-item-error")).to_have_text(
        "Too large: the file is 300.0 KB; the limit is 256.0 KB.")
    entry = item(page, "songdo.txt")
    stages = entry.locator(".upload-stages > li.stage")
    expect(stages).to_have_count(3)
    expect(stages.nth(0)).to_have_text(re.compile("^✓?Reading the text.*done in under 1 s"))
    expect(stages.nth(1)).to_have_attribute("data-state", "running")
    expect(stages.nth(1).locator(".stage-detail")).to_have_text("120 of 400 · 46 texts/s · about 6 s left")
    expect(stages.nth(2).locator(".stage-detail")).to_have_text("waiting")
    expect(entry.locator(".upload-state")).to_have_text("Building: MiniLM vectors")
    expect(entry.locator("progress")).to_have_attribute("max", "400")
    assert entry.locator("progress").evaluate("bar => bar.value") == 120
    expect(page.locator("#library-status")).to_contain_text("Building the index (MiniLM vectors): 120 of 400")
    page.screenshot(path=str(artifacts / "uploads-stages-390.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "nothing overflows sideways"
    box = entry.bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    build_gate.set()

    expect(entry).to_have_attribute("data-state", "done", timeout=BUILD_MS)
    expect(entry.locator(".upload-stages")).to_be_hidden()
    page.screenshot(path=str(artifacts / "uploads-done-390.png"))
    assert problems == []
    context.close()


def test_a_file_dropped_on_a_server_without_uploads_goes_nowhere(page: Page) -> None:
    """The browser's default would open the dropped file in the tab, and the conversation with it."""
    url = page.url
    drop_files(page, "#chat", [{"name": "notes.txt", "text": "Some notes."}])
    expect(page.locator("#announcer")).to_have_text("Adding documents is off on this server.")
    expect(page.locator("#drop-overlay")).to_be_hidden()
    expect(page.locator("#library")).to_be_hidden()
    assert page.url == url
