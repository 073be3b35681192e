"""The chat page in a real headless Chromium: ask, read citations in the report, follow up, edge states."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from browser_support import ask, last_answer
from playwright.sync_api import Browser, Page, Route, expect

pytestmark = pytest.mark.browser

STATIC = Path(__file__).resolve().parents[2] / "api" / "static"
FIRST = "What did the Russians say about small and midsize enterprises?"
FOLLOW_UP = "What projects did they suggest for them?"
UNCOVERED = "What is the population of Vladivostok?"
PHONE_QUESTIONS = (
    "Who led the Russian delegation?",
    "How many members did the Korean delegation have?",
    "When did the Third Korea-Russia Forum take place?",
)


def api_answer(live_url: str, question: str, history: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body = {"question": question, "history": history or [], "top_k": 5}
    response = httpx.post(f"{live_url}/api/answer", json=body, timeout=60)
    response.raise_for_status()
    return dict(response.json())


def document_text(live_url: str, doc_id: str) -> str:
    return str(httpx.get(f"{live_url}/api/documents/{doc_id}", timeout=30).json()["text"])






def shown_numbers(answer: dict[str, Any]) -> dict[int, int]:
    """The server's citation n -> the number the page shows: cited ones in reading order, then the rest."""
    order: list[int] = []
    for n in map(int, re.findall(r"\[(\d+)\]", answer["answer"])):
        if n not in order and answer["answerable"]:
            order.append(n)
    order += [c["n"] for c in answer["citations"] if c["n"] not in order]
    return {n: i + 1 for i, n in enumerate(order)}


def as_shown(answer: dict[str, Any]) -> str:
    """The answer's text as the page shows it: markers renumbered, as small buttons labelled n."""
    shown = shown_numbers(answer)
    return re.sub(r"\[(\d+)\]", lambda m: str(shown[int(m.group(1))]), answer["answer"])


def test_ask_read_a_citation_in_the_report_and_follow_up(page: Page, live_url: str, artifacts: Path) -> None:
    expect(page.locator("#question")).to_be_focused()
    expect(page.locator("#welcome")).to_be_visible()

    ask(page, FIRST)
    expected = api_answer(live_url, FIRST)  # answers are cached by rag: the same object the page got
    message = last_answer(page)
    expect(page.locator("#welcome")).to_be_hidden()
    expect(page.locator("#thread > .message.user .text")).to_have_text(FIRST)
    # The [n] markers are shown as small buttons labelled n.
    expect(message.locator("p.text")).to_have_text(as_shown(expected))
    chips = message.locator(".chip")
    expect(chips).to_have_count(len(expected["citations"]))
    expect(message.locator(".sources-title")).to_have_text("Cited in the answer")
    expect(message).not_to_have_class(re.compile("not-covered"))

    # Open source 1: the report shows the passage marked and the supporting sentence highlighted.
    first = next(n for n, shown in shown_numbers(expected).items() if shown == 1)
    citation = next(c for c in expected["citations"] if c["n"] == first)
    text = document_text(live_url, citation["doc_id"])
    chips.first.click()
    report = page.locator("#report")
    expect(report).to_be_visible()
    expect(page.locator("#report-title")).to_have_text(citation["title"])
    sentence = report.locator("mark.sentence")
    expect(sentence).to_have_count(1)
    expect(sentence).to_have_text(text[citation["highlight"]["start"] : citation["highlight"]["end"]])
    expect(sentence).to_be_in_viewport()
    expect(report.locator("mark.passage")).to_have_text(text[citation["start"] : citation["end"]])
    expect(chips.first).to_have_attribute("aria-current", "true")
    # Only the chat and the report scroll: the page itself (header included) stays put.
    assert page.evaluate("[window.scrollY, document.documentElement.scrollHeight - innerHeight]") == [0, 0]
    page.screenshot(path=str(artifacts / "chat-with-citation.png"))

    # A follow-up sends the earlier turns as history, and is answered in their context.
    with page.expect_request(lambda r: r.url.endswith("/api/answer/stream") and r.method == "POST") as sent:
        ask(page, FOLLOW_UP)
    history = [{"role": "user", "content": FIRST}, {"role": "assistant", "content": expected["answer"]}]
    assert sent.value.post_data_json == {"question": FOLLOW_UP, "history": history, "top_k": 5}
    follow = api_answer(live_url, FOLLOW_UP, history)
    expect(page.locator("#thread > .message.assistant")).to_have_count(2)
    expect(last_answer(page).locator(".chip")).to_have_count(len(follow["citations"]))
    expect(last_answer(page).locator("p.text")).to_contain_text("small and midsize enterprises")
    last_answer(page).locator(".chip").last.click()
    expect(page.locator("#report mark.sentence")).to_be_in_viewport()
    assert page.evaluate("[window.scrollY, document.documentElement.scrollHeight - innerHeight]") == [0, 0]


def test_short_answer_is_bold_in_the_answer_and_in_the_report(page: Page, live_url: str) -> None:
    question = "When did the Third Korea-Russia Forum take place?"
    ask(page, question)
    citation = api_answer(live_url, question)["citations"][0]
    short = citation["short_answer"]
    assert short, "the reader marks the date it found"
    message = last_answer(page)
    expect(message.locator("p.text strong.short-answer")).to_have_text(short["text"])
    expect(message.locator("p.text")).to_contain_text(short["text"])
    message.locator(".chip").first.click()
    sentence = page.locator("#report mark.sentence")
    expect(sentence).to_have_count(1)  # one highlight, with the short answer in bold inside it
    text = document_text(live_url, citation["doc_id"])
    expect(sentence).to_have_text(text[citation["highlight"]["start"] : citation["highlight"]["end"]])
    expect(sentence.locator("strong.short-answer")).to_have_text(short["text"])


def test_uncertain_answer_is_labelled_so(page: Page, live_url: str) -> None:
    """The report never says whether a fourth forum will be held: the nearest sentences are shown under
    a label that says they may not answer, never as an answer."""
    question = "Will there be a fourth forum?"
    expected = api_answer(live_url, question)
    assert expected["verdict"] in ("uncertain", "not_covered")
    ask(page, question)
    message = last_answer(page)
    if expected["verdict"] == "uncertain":
        expect(message.locator(".badge.verdict-uncertain")).to_have_text(re.compile("may not answer exactly"))
        expect(message.locator(".text")).to_contain_text("This may not answer the question exactly")
    else:
        expect(message).to_have_class(re.compile("not-covered"))


def test_uncovered_question_shows_the_not_covered_state(page: Page, live_url: str) -> None:
    ask(page, UNCOVERED)
    expected = api_answer(live_url, UNCOVERED)
    assert expected["answerable"] is False
    message = last_answer(page)
    expect(message).to_have_class(re.compile("not-covered"))
    expect(message.locator(".badge")).to_have_text(re.compile("Not covered by the documents"))
    expect(message.locator(".sources-title")).to_contain_text("none of them answers")
    muted = message.locator(".chip.muted")
    expect(muted).to_have_count(len(expected["citations"]))
    # The nearest passages can still be read in the report.
    muted.first.click()
    expect(page.locator("#report mark.sentence")).to_be_visible()


def test_loading_state_then_the_api_error_message(page: Page) -> None:
    release: list[Route] = []
    page.route("**/api/answer/stream", lambda route: release.append(route))  # held: watch the loading
    page.locator("#question").fill("When did the Third Korea-Russia Forum take place?")
    page.locator("#send").click()
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "true")
    expect(page.locator("#send")).to_be_disabled()
    expect(page.locator("#thread > .message.pending")).to_be_visible()
    while not release:
        page.wait_for_timeout(20)
    release[0].continue_()  # the real server answers
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#send")).to_be_enabled()
    page.unroute("**/api/answer/stream")

    # Over the server's limit (from /api/config): not sent, the text kept, and the page says why.
    page.locator("#question").fill("x" * 1001)
    page.locator("#question").press("Enter")
    expect(page.locator("#composer-note")).to_contain_text("shorten it by 1 character")
    expect(page.locator("#question")).to_have_value("x" * 1001)
    expect(page.locator("#thread > .message.user")).to_have_count(1)


def test_a_failed_request_can_be_tried_again(page: Page) -> None:
    page.route("**/api/answer/stream", lambda route: route.abort("connectionrefused"))
    ask(page, "Who led the Russian delegation?")
    error = last_answer(page)
    expect(error.locator("[role=alert]")).to_contain_text("could not be reached")
    page.unroute("**/api/answer/stream")
    error.get_by_role("button", name="Try again").click()
    expect(page.locator("#thread > .message.error")).to_have_count(0)
    expect(last_answer(page).locator(".chip").first).to_be_visible()
    expect(page.locator("#thread > .message.user")).to_have_count(1)  # the retry replaced the failed turn


def test_keyboard_use(page: Page) -> None:
    question = page.locator("#question")
    question.press_sequentially("line one")
    question.press("Shift+Enter")
    question.press_sequentially("line two")
    expect(question).to_have_value("line one\nline two")
    expect(page.locator("#thread > .message")).to_have_count(0)

    page.keyboard.press("Tab")
    expect(page.locator("#send")).to_be_focused()
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline != "none", "keyboard focus must be visible"

    ask(page, "Who led the Russian delegation?")
    chip = last_answer(page).locator(".chip").first
    chip.focus()
    page.keyboard.press("Enter")
    expect(page.locator("#report")).to_be_visible()
    expect(page.locator("#report-title")).to_be_focused()
    page.keyboard.press("Escape")
    expect(page.locator("#report")).to_be_hidden()
    expect(chip).to_be_focused()


def test_text_from_questions_and_answers_is_never_parsed_as_html(page: Page) -> None:
    question = 'What about <img src=x onerror="window.pwned=1"><b>bold</b>?'
    ask(page, question)
    expect(page.locator("#thread > .message.user .text")).to_have_text(question)
    expect(page.locator("#thread img, #thread b")).to_have_count(0)
    assert page.evaluate("window.pwned") is None


@pytest.mark.parametrize("script", sorted(p.name for p in STATIC.glob("*.js")))
def test_the_scripts_have_no_html_sinks(script: str) -> None:
    source = (STATIC / script).read_text(encoding="utf-8")
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in source, sink


def test_nothing_is_loaded_from_elsewhere_and_nothing_logs_errors(page: Page, live_url: str) -> None:
    requests: list[str] = []
    problems: list[str] = []
    page.on("request", lambda r: requests.append(r.url))
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.reload()
    ask(page, "When did the Third Korea-Russia Forum take place?")
    last_answer(page).locator(".chip").first.click()
    expect(page.locator("#report mark.sentence")).to_be_visible()
    assert requests and all(url.startswith(live_url + "/") for url in requests), requests
    assert problems == []


def test_narrow_phone_screen(browser: Browser, live_url: str, artifacts: Path) -> None:
    context = browser.new_context(
        viewport={"width": 390, "height": 844},
        device_scale_factor=2,
        is_mobile=True,
        has_touch=True,
        reduced_motion="reduce",
    )
    try:
        page = context.new_page()
        page.goto(live_url + "/")
        for question in PHONE_QUESTIONS:
            ask(page, question)
        thread = page.evaluate("[scroller.scrollHeight, scroller.clientHeight]")
        assert thread[0] > thread[1], "the thread should be longer than the screen here"
        root = "document.documentElement"
        width, height = page.evaluate(f"[{root}.scrollWidth, {root}.scrollHeight]")
        assert width <= 390, "nothing may overflow sideways on a phone"
        assert height == 844, "the thread scrolls inside its own box, never the page"
        page.screenshot(path=str(artifacts / "chat-narrow.png"))

        chip = last_answer(page).locator(".chip").first
        chip.click()
        report = page.locator("#report")
        expect(report.locator("mark.sentence")).to_be_in_viewport()
        box = report.bounding_box()
        assert box is not None and box["x"] == 0 and box["width"] == 390, box  # an overlay over the chat
        page.screenshot(path=str(artifacts / "chat-narrow-citation.png"))
        page.get_by_role("button", name="Close the report").click()
        expect(report).to_be_hidden()
        expect(chip).to_be_focused()
    finally:
        context.close()
