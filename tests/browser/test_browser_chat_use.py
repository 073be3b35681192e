"""The chat page through a day of real use (issue 19), in a real headless Chromium against the real server:
honest sources, conversations that last, copy/stop/retry/edit, the composer's limits, removed documents and
the documents' names, Korean and Russian questions, the phone layout, focus and cached answers.

Layout checks run at 1280×900 and 390×844; every page is watched for console errors and screenshots go to
test-artifacts/ (gitignored).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import browser_support
import httpx
import pytest
from browser_support import VIEWPORTS, ask, last_answer
from core_support import copy_workspace
from playwright.sync_api import Browser, Page, Route, expect
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA

pytestmark = pytest.mark.browser

DELEGATION = "Who led the Russian delegation?"
DELEGATION_KO = "러시아 대표단을 이끈 사람은 누구입니까?"  # answered with the report's English sentences
DATE = "When did the Third Korea-Russia Forum take place?"
SME = "What did the Russians say about small and midsize enterprises?"
SME_TITLE = "What did the Russians say about small and midsize enterpris…"  # a title is 60 characters at most
PANGYO = (
    "Pangyo Techno Valley\n\n"
    "Pangyo Techno Valley is a technology cluster in Seongnam, south of Seoul. It opened in 2011 and "
    "now hosts about 1,700 companies that employ some 70,000 people.\n"
)
PANGYO_QUESTION = "How many companies does Pangyo Techno Valley host?"
# Counts the page's forumqa:answer events, from before its own script runs.
LISTEN = """
window.answerEvents = [];
document.addEventListener("forumqa:answer", (e) => window.answerEvents.push({
  question: e.detail.question, answer: e.detail.answer.answer, tag: e.detail.element.tagName,
  actions: e.detail.actions.className, inside: e.detail.element.contains(e.detail.actions),
}));
"""


# ------------------------------------------------------------------------------------ helpers


class Watched(browser_support.Watched):
    """A page watched for console errors, with the page's forumqa:answer events counted (LISTEN)."""

    def __init__(self, browser: Browser, url: str, viewport: dict[str, int], name: str) -> None:
        super().__init__(browser, url, viewport, name, LISTEN)


@pytest.fixture
def watched(browser: Browser, live_url: str) -> Iterator[Watched]:
    """A desktop page (1280×900); no console errors by the end of the test."""
    w = Watched(browser, live_url, VIEWPORTS["desktop"], "desktop")
    yield w
    w.context.close()
    assert w.errors == []


@pytest.fixture(params=list(VIEWPORTS))
def each_screen(request: pytest.FixtureRequest, browser: Browser, live_url: str) -> Iterator[Watched]:
    """The same test at 1280×900 and at 390×844; no console errors by the end of it."""
    w = Watched(browser, live_url, VIEWPORTS[request.param], request.param)
    yield w
    w.context.close()
    assert w.errors == []


def api_answer(url: str, question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body = {"question": question, "history": history or [], "top_k": 5}
    response = httpx.post(f"{url}/api/answer", json=body, timeout=60)
    response.raise_for_status()
    return dict(response.json())






def reading_order(answer: dict[str, Any]) -> list[int]:
    """The server's n of the cited passages, in the order the answer's text first cites them."""
    order: list[int] = []
    for n in map(int, re.findall(r"\[(\d+)\]", answer["answer"])):
        if n not in order:
            order.append(n)
    return order


def sentence(citation: dict[str, Any]) -> str:
    start = citation["highlight"]["start"] - citation["start"]
    return str(citation["text"][start : citation["highlight"]["end"] - citation["start"]])


def full_label(citation: dict[str, Any]) -> str:
    """A source's full name: its document, and its section when that is not the document's title."""
    title, section = citation["title"], citation["section"]
    return str(title if section == title else f"{title} — {section}")


def one_line(page: Page, selector: str) -> bool:
    """Whether the element's text is laid out on a single line, and none of it is cut off."""
    return bool(page.evaluate(
        """s => { const e = document.querySelector(s); const r = document.createRange();
                 r.selectNodeContents(e);
                 const tops = new Set([...r.getClientRects()].map((x) => Math.round(x.top)));
                 return tops.size === 1 && e.scrollWidth <= e.clientWidth; }""",
        selector,
    ))


def chip_labels(message: Any) -> list[str]:
    """What each source chip of an answer reads (document, section, distinguishing words)."""
    return list(message.locator(".chip").evaluate_all(
        "chips => chips.map((c) => [...c.querySelectorAll('.chip-doc, .chip-label, .chip-quote')]"
        "  .map((s) => s.textContent).join(' | '))"
    ))


def clipboard(page: Page) -> str:
    return str(page.evaluate("navigator.clipboard.readText()"))


# ---------------------------------------------------------------------------- 1. the sources


def test_sources_cited_first_then_also_found_numbered_in_reading_order(
    each_screen: Watched, live_url: str, artifacts: Path
) -> None:
    """The Korean question's answer cites the server's [2] before its [1]: on the page the markers read
    1, 2 in order, the cited passages come first under their own title, the rest under "Also found"."""
    page = each_screen.page
    expected = api_answer(live_url, DELEGATION_KO)
    order = reading_order(expected)
    assert order[:2] == [2, 1], "this answer cites its passages out of the server's order"
    by_n = {c["n"]: c for c in expected["citations"]}
    others = [c for c in expected["citations"] if c["n"] not in order]
    ask(page, DELEGATION_KO)
    message = last_answer(page)

    refs = message.locator("p.text .cite-ref")
    expect(refs).to_have_text([str(i + 1) for i in range(len(order))])
    cited = message.locator(".sources .chip.cited")
    also = message.locator(".also-found .chip.also")
    expect(message.locator(".sources-title")).to_have_text("Cited in the answer")
    expect(message.locator(".also-title")).to_have_text("Also found — not cited")
    expect(cited).to_have_count(len(order))
    expect(also).to_have_count(len(others))
    for i, n in enumerate(order):  # source i + 1 is the passage the i-th marker cites
        expect(cited.nth(i)).to_have_attribute("data-n", str(i + 1))
        expect(cited.nth(i)).to_have_attribute("title", re.compile(re.escape(sentence(by_n[n]))))
        label = re.compile(f"^Source {i + 1}, cited in the answer")
        expect(cited.nth(i)).to_have_attribute("aria-label", label)
    for i, c in enumerate(others):
        expect(also.nth(i)).to_have_attribute("data-n", str(len(order) + i + 1))
        expect(also.nth(i)).to_have_attribute("title", re.compile(re.escape(sentence(c))))

    # "Also found" is below the cited sources and visibly secondary: smaller, without the accent.
    style = (
        "e => [getComputedStyle(e).fontSize, getComputedStyle(e).borderStyle, e.getBoundingClientRect().top]"
    )
    cited_style, also_style = cited.first.evaluate(style), also.first.evaluate(style)
    assert float(also_style[0][:-2]) < float(cited_style[0][:-2]), (cited_style, also_style)
    assert also_style[1] == "dashed" and cited_style[1] == "solid"
    assert also_style[2] > cited_style[2]

    # Labels: no two sources of the answer read the same, and none repeats a name.
    labels = chip_labels(message)
    assert len(set(labels)) == len(labels), labels
    assert all(label.count("Third Korea-Russia Forum") <= 1 for label in labels), labels

    # Marker 1 opens the passage the answer cites first (the server's [2]).
    refs.first.click()
    expect(page.locator("#report-eyebrow")).to_have_text("Source 1 · cited")
    expect(page.locator("#report mark.sentence")).to_have_text(sentence(by_n[order[0]]))
    page.screenshot(path=str(Path(artifacts) / f"sources-{each_screen.name}.png"))
    page.get_by_role("button", name="Close the report").click()


def test_a_cut_label_is_shown_whole_on_hover_and_focus(browser: Browser, live_url: str) -> None:
    """On a phone, where a source's name may not fit (at 1280 px they fit whole, see test_browser_page)."""
    watched = Watched(browser, live_url, VIEWPORTS["phone"], "phone")
    page = watched.page
    ask(page, DELEGATION)
    cut = "e => e.scrollWidth > e.clientWidth"
    labels = last_answer(page).locator(".chip .chip-label")
    index = next(i for i in range(labels.count()) if labels.nth(i).evaluate(cut))
    label, chip = labels.nth(index), last_answer(page).locator(".chip").nth(index)
    full = label.evaluate("e => e.textContent")
    assert full in (chip.get_attribute("title") or "")
    chip.focus()
    assert not label.evaluate(cut), "focused: the whole label shows"
    assert label.evaluate("e => e.textContent") == full
    page.locator("#question").focus()
    assert label.evaluate(cut)
    chip.hover()
    assert not label.evaluate(cut), "hovered: the whole label shows"
    watched.context.close()
    assert watched.errors == []


# ---------------------------------------------------------------------- 2. conversations


def test_conversations_last_switch_rename_delete_and_export(
    watched: Watched, live_url: str, artifacts: Path
) -> None:
    page = watched.page
    ask(page, DATE)
    ask(page, "Who attended it?")
    page.reload()
    # Restored after a reload, with the answers whole, and announced to the page's other scripts.
    expect(page.locator("#thread > .message.user .text")).to_have_text([DATE, "Who attended it?"])
    expect(page.locator("#welcome")).to_be_hidden()
    expect(last_answer(page).locator(".chip").first).to_be_visible()
    events = page.evaluate("window.answerEvents")
    assert [e["question"] for e in events] == [DATE, "Who attended it?"]
    assert all(e["tag"] == "ARTICLE" and "answer-actions" in e["actions"] and e["inside"] for e in events)
    # A follow-up after the reload still sends the earlier turns.
    first = api_answer(live_url, DATE)
    with page.expect_request(lambda r: r.url.endswith("/api/answer/stream")) as sent:
        ask(page, "How many people attended?")
    history = sent.value.post_data_json["history"]
    assert [t["content"] for t in history[:2]] == [DATE, first["answer"]] and len(history) == 4

    # New chat keeps the old conversation in the list.
    page.get_by_role("button", name="New chat").click()
    expect(page.locator("#thread > .message")).to_have_count(0)
    expect(page.locator("#welcome")).to_be_visible()
    ask(page, SME)
    page.get_by_role("button", name="Chats").click()
    items = page.locator("#chat-list .chat-item")
    expect(items.locator(".chat-title")).to_have_text([SME_TITLE, DATE])
    expect(items.first.locator(".chat-open")).to_have_attribute("aria-current", "true")
    expect(items.nth(1).locator(".chat-meta")).to_contain_text("3 questions")
    page.screenshot(path=str(artifacts / "conversations-list.png"))

    # Switch back, then rename it (kept across a reload).
    items.nth(1).locator(".chat-open").click()
    expect(page.locator("#chats")).to_be_hidden()
    expect(page.locator("#thread > .message.user")).to_have_count(3)
    expect(page.locator("#thread > .message.user .text").first).to_have_text(DATE)
    page.get_by_role("button", name="Chats").click()
    page.get_by_role("button", name=f"Rename “{DATE}”").click()
    page.get_by_role("textbox", name="New name of the conversation").fill("The forum's dates")
    page.keyboard.press("Enter")
    # Renaming keeps its place in the list.
    expect(items.locator(".chat-title")).to_have_text([SME_TITLE, "The forum's dates"])
    page.reload()
    expect(page.locator("#thread > .message.user")).to_have_count(3)  # the one shown last comes back
    page.get_by_role("button", name="Chats").click()
    expect(items.locator(".chat-title")).to_have_text([SME_TITLE, "The forum's dates"])

    # Export as Markdown, with the citations.
    with page.expect_download() as download:
        page.get_by_role("button", name="Export “The forum's dates” as Markdown").click()
    assert download.value.suggested_filename == "forum-qa-the-forum-s-dates.md"
    markdown = Path(download.value.path()).read_text(encoding="utf-8")
    (artifacts / "conversation-export.md").write_text(markdown, encoding="utf-8")
    assert markdown.startswith("# The forum's dates\n")
    assert f"## 1. {DATE}\n" in markdown and "## 3. How many people attended?" in markdown
    cited = first["citations"][0]
    assert "The Korea Foundation cosponsored the Third Korea-Russia Forum on September 27-28" in markdown
    assert f"1. {full_label(cited)}, characters {cited['start']}–{cited['end']}:\n   > " in markdown
    assert "Also found (not cited):" in markdown

    # Delete takes two clicks; deleting the conversation shown starts a new one.
    page.get_by_role("button", name=f"Delete “{SME_TITLE}”").click()
    expect(items).to_have_count(2)
    page.get_by_role("button", name=f"Confirm deleting “{SME_TITLE}”").click()
    expect(items.locator(".chat-title")).to_have_text(["The forum's dates"])
    page.get_by_role("button", name="Delete “The forum's dates”").click()
    page.get_by_role("button", name="Confirm deleting “The forum's dates”").click()
    expect(items).to_have_count(0)
    expect(page.locator("#chats-empty")).to_be_visible()
    expect(page.locator("#thread > .message")).to_have_count(0)
    page.reload()
    expect(page.locator("#welcome")).to_be_visible()
    assert json.loads(page.evaluate("localStorage.getItem('forumqa.conversations')"))["conversations"] == []


# ----------------------------------------------------------------------------- 3. actions


def test_copy_the_answer_and_a_quote(watched: Watched, live_url: str) -> None:
    page = watched.page
    watched.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=live_url)
    ask(page, DATE)
    expected = api_answer(live_url, DATE)
    citation = expected["citations"][0]
    last_answer(page).get_by_role("button", name="Copy the answer with its sources").click()
    expect(last_answer(page).locator(".action-copy")).to_have_text("Copied")
    text = clipboard(page)
    assert text.startswith(expected["answer"] + "\n\nSources:\n")  # cited [1] is also shown as 1 here
    where = f"characters {citation['start']}–{citation['end']}"
    assert f"[1] {full_label(citation)} ({where}): “{sentence(citation)}”" in text

    last_answer(page).locator(".chip.cited").first.click()
    page.get_by_role("button", name="Copy the highlighted quote with its source").click()
    expect(page.locator("#report-copy")).to_have_text("Copied")
    assert clipboard(page) == f"“{sentence(citation)}” — {full_label(citation)}"


def test_stop_a_pending_answer_then_try_again(watched: Watched) -> None:
    page = watched.page
    held: list[Route] = []
    page.route("**/api/answer/stream", lambda route: held.append(route))
    page.locator("#question").fill(DELEGATION)
    page.locator("#question").press("Enter")
    stop = page.get_by_role("button", name="Stop")
    expect(stop).to_be_visible()
    expect(page.locator("#send")).to_be_hidden()
    while not held:
        page.wait_for_timeout(20)
    stop.click()
    stopped = last_answer(page)
    expect(stopped).to_have_class(re.compile("stopped"))
    expect(stopped).to_contain_text("You stopped this answer")
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#send")).to_be_visible()
    page.unroute("**/api/answer/stream")
    stopped.get_by_role("button", name="Try again").click()
    expect(last_answer(page).locator(".chip").first).to_be_visible()
    expect(page.locator("#thread > .message.user")).to_have_count(1)


def test_edit_a_question_as_a_new_version(watched: Watched) -> None:
    """Editing asks the question anew as another version of it; the earlier one, with the questions that
    followed it, stays (◀ ▶: tests/browser/test_browser_page.py). An extractive answer offers no Regenerate:
    it would come back word for word."""
    page = watched.page
    ask(page, DATE)
    ask(page, SME)
    expect(page.locator("#thread .action-regenerate")).to_have_count(0)

    page.locator("#thread > .message.assistant").first.get_by_role("button", name="Edit the question").click()
    expect(page.locator("#question")).to_have_value(DATE)
    expect(page.locator("#edit-note")).to_contain_text("Editing question 1")
    expect(page.locator("#edit-note")).to_contain_text("with the 1 question after it, stays")
    page.locator("#question").fill(DELEGATION)
    with page.expect_request(lambda r: r.url.endswith("/api/answer/stream")) as sent:
        page.locator("#question").press("Enter")
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "false")
    assert sent.value.post_data_json["question"] == DELEGATION and sent.value.post_data_json["history"] == []
    expect(page.locator("#thread > .message.user .text")).to_have_text([DELEGATION])
    expect(page.locator("#thread > .message.assistant")).to_have_count(1)
    expect(page.locator("#thread > .message.user .version-label")).to_have_text("2 / 2")
    expect(page.locator("#edit-note")).to_be_hidden()


# ---------------------------------------------------------------------------- 4. composer


def test_the_composer_counts_near_the_limit_and_keeps_what_it_cannot_send(
    watched: Watched, live_url: str
) -> None:
    page = watched.page
    limit = httpx.get(f"{live_url}/api/config", timeout=30).json()["max_question_chars"]
    box, counter, note = page.locator("#question"), page.locator("#counter"), page.locator("#composer-note")
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if "/api/answer" in r.url else None)

    page.get_by_role("button", name="Send").click()  # empty: a short message, nothing sent
    expect(note).to_have_text("Type a question first.")
    box.fill(" \n ")
    box.press("Enter")
    expect(note).to_have_text("Type a question first.")

    box.fill("x" * (int(limit * 0.8) - 1))
    expect(counter).to_be_hidden()
    expect(note).to_be_hidden()  # typing clears the message
    box.fill("x" * int(limit * 0.8))
    expect(counter).to_have_text(f"{int(limit * 0.8):,} / {limit:,}")
    too_long = "é" * (limit + 3)  # counted in characters, as the server counts them
    box.fill(too_long)
    expect(counter).to_have_text(f"{limit + 3:,} / {limit:,} — 3 characters over the limit")
    expect(counter).to_have_class(re.compile("over"))
    box.press("Enter")
    expect(note).to_contain_text(f"shorten it by 3 characters (the limit is {limit:,})")
    expect(box).to_have_value(too_long)
    expect(page.locator("#thread > .message")).to_have_count(0)
    assert sent == []


def test_a_question_the_server_refuses_is_edited_not_resent(watched: Watched, live_url: str) -> None:
    """A server whose limit is lower than the page was told (the config is doctored here, the 422 is the
    real server's): the error offers to edit the question, never to send the same text again."""
    page = watched.page
    real = httpx.get(f"{live_url}/api/config", timeout=30).json()

    def doctored(route: Route) -> None:
        route.fulfill(json={**real, "max_question_chars": real["max_question_chars"] * 2})

    page.route("**/api/config", doctored)
    page.reload()
    watched.errors.clear()
    question = "Why? " * (real["max_question_chars"] // 5 + 1)
    ask(page, question)
    error = last_answer(page)
    expect(error).to_have_class(re.compile("error"))
    expect(error.locator("[role=alert]")).to_contain_text(f"the limit is {real['max_question_chars']}")
    expect(error.get_by_role("button", name="Try again")).to_have_count(0)
    error.get_by_role("button", name="Edit the question").click()
    expect(page.locator("#question")).to_have_value(question.strip())
    # The browser logs the 422 response itself; nothing else.
    assert all("422" in e for e in watched.errors), watched.errors
    watched.errors.clear()


# --------------------------------------------------------------- 6. the documents' names


@pytest.fixture(scope="module")
def two_documents_url(
    settings: Settings, qa: ForumQA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A server over the report and one more document (only the new text is embedded: the copy keeps the
    session index's embedding cache)."""
    workspace = copy_workspace(settings, tmp_path_factory.mktemp("two-documents"))
    (workspace.corpus_dir / "pangyo.txt").write_text(PANGYO, encoding="utf-8")
    with LiveServer(create_app(workspace, ForumQA.open(workspace, progress=False))) as server:
        yield server.url


def test_texts_name_the_one_document_or_say_your_documents(
    browser: Browser, live_url: str, two_documents_url: str, artifacts: Path
) -> None:
    one = Watched(browser, live_url, VIEWPORTS["desktop"], "one")
    page = one.page
    expect(page.locator("#tagline")).to_have_text("Cited answers from “Third Korea-Russia Forum”")
    expect(page.locator("#welcome-title")).to_have_text("Ask about “Third Korea-Russia Forum”")
    placeholder = "Ask a question about “Third Korea-Russia Forum”…"
    expect(page.locator("#question")).to_have_attribute("placeholder", placeholder)
    expect(page.locator("#suggestions")).to_be_visible()
    one.context.close()
    assert one.errors == []

    many = Watched(browser, two_documents_url, VIEWPORTS["desktop"], "many")
    page = many.page
    expect(page.locator("#tagline")).to_have_text("Cited answers from your documents")
    expect(page.locator("#welcome-title")).to_have_text("Ask about your documents")
    expect(page.locator("#welcome-intro")).to_contain_text("Answers quote your documents word for word")
    expect(page.locator("#question")).to_have_attribute("placeholder", "Ask a question about your documents…")
    expect(page).to_have_title("Forum QA — your documents")
    page.screenshot(path=str(artifacts / "welcome-your-documents.png"))
    many.context.close()
    assert many.errors == []


def test_a_citation_of_a_removed_document_says_so(
    browser: Browser, live_url: str, two_documents_url: str, artifacts: Path
) -> None:
    """A conversation kept while the upload was there, opened where it is not (the same browser storage
    moved to the report-only server): its chip and the viewer say the document was removed."""
    before = Watched(browser, two_documents_url, VIEWPORTS["desktop"], "before")
    ask(before.page, PANGYO_QUESTION)
    expect(last_answer(before.page).locator(".chip.cited").first).to_have_attribute("data-doc", "pangyo")
    labels = chip_labels(last_answer(before.page))
    assert len(set(labels)) == len(labels), labels  # two sentences opening alike still read apart
    # The page writes its store when idle: wait until this answer is in it.
    before.page.wait_for_function(
        """() => (localStorage.getItem('forumqa.conversations') || '').includes('"doc_id":"pangyo"')"""
    )
    kept = before.page.evaluate("localStorage.getItem('forumqa.conversations')")
    before.context.close()
    assert before.errors == []

    after = Watched(browser, live_url, VIEWPORTS["desktop"], "after")
    page = after.page
    page.evaluate("data => localStorage.setItem('forumqa.conversations', data)", kept)
    page.reload()
    chip = last_answer(page).locator('.chip[data-doc="pangyo"]').first
    expect(chip).to_have_class(re.compile("removed"))
    expect(chip.locator(".chip-removed")).to_have_text("removed")
    chip.click()
    status = page.locator("#report .report-status")
    expect(status).to_have_text(re.compile("^This document was removed"))
    expect(page.locator("#report")).not_to_contain_text("no document with id")
    stored = json.loads(kept)["conversations"][0]["turns"][-1]["answer"]
    quoted = next(c for c in stored["citations"] if sentence(c) in (chip.get_attribute("title") or ""))
    expect(page.locator("#report mark.passage")).to_have_text(quoted["text"])
    expect(page.locator("#report mark.sentence")).to_have_text(sentence(quoted))
    page.screenshot(path=str(artifacts / "removed-document.png"))
    after.context.close()
    assert after.errors == []


# ------------------------------------------------------------------------ 7. other languages


@pytest.mark.parametrize(("question", "lang", "note"), [
    (DELEGATION_KO, "ko", "답변은 영어입니다"),
    ("Кто возглавлял российскую делегацию?", "ru", "Ответ на английском"),
    (DELEGATION, None, None),
])
def test_an_english_answer_to_another_language_says_so(
    watched: Watched, question: str, lang: str | None, note: str | None
) -> None:
    ask(watched.page, question)
    found = last_answer(watched.page).locator(".lang-note")
    if note is None:
        expect(found).to_have_count(0)
    else:
        expect(found).to_have_text(re.compile(f"^{note}"))
        expect(found).to_have_attribute("lang", str(lang))


# ---------------------------------------------------------------- 8, 9. phone, focus, time


def test_header_and_placeholder_fit_and_the_box_shows_focus(each_screen: Watched, artifacts: Path) -> None:
    page = each_screen.page
    assert one_line(page, ".topbar h1"), "“Forum QA” on one line, whole"
    assert one_line(page, "#new-chat"), "“New chat” on one line, whole"
    assert page.evaluate("document.documentElement.scrollWidth") <= VIEWPORTS[each_screen.name]["width"]
    # The placeholder is one line that fits inside the box.
    fits = page.evaluate("""() => {
        const box = document.querySelector('#question'); const s = getComputedStyle(box);
        const c = document.createElement('canvas').getContext('2d');
        c.font = `${s.fontWeight} ${s.fontSize} ${s.fontFamily}`;
        const room = box.clientWidth - parseFloat(s.paddingLeft) - parseFloat(s.paddingRight);
        return [c.measureText(box.placeholder).width, room];
    }""")
    assert 0 < fits[0] <= fits[1], fits
    assert page.locator("#question").evaluate("e => e.getBoundingClientRect().height") <= 42

    # The box's focus ring is the buttons' ring.
    ring = "e => { const s = getComputedStyle(e); return [s.outlineStyle, s.outlineWidth, s.outlineColor]; }"
    expect(page.locator("#question")).to_be_focused()
    box_ring = page.locator(".composer-row").evaluate(ring)
    page.keyboard.press("Tab")
    expect(page.locator("#send")).to_be_focused()
    assert page.locator("#send").evaluate(ring) == box_ring and box_ring[0] == "solid", box_ring
    assert page.locator(".composer-row").evaluate(ring)[0] == "none", "no ring once the box lost focus"
    page.locator("#question").focus()
    page.screenshot(path=str(artifacts / f"header-composer-{each_screen.name}.png"))


def test_a_cached_repeat_says_so_instead_of_a_time(watched: Watched) -> None:
    page = watched.page
    question = "What did the forum's participants say about cooperation in energy?"  # asked nowhere else
    ask(page, question)
    expect(last_answer(page).locator(".meta")).to_have_text(re.compile(r"· answered in \d+ ms$"))
    page.get_by_role("button", name="New chat").click()  # the same question with the same (no) history
    ask(page, question)
    expect(last_answer(page).locator(".meta")).to_contain_text("repeated from the cache")
    expect(last_answer(page).locator(".meta")).not_to_contain_text("under 1 ms")
