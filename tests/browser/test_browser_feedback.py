"""👍/👎 under answers in a real headless Chromium: shown only when the server takes feedback, sent with the
answer's id, verdict and an optional comment, stored in the server's index folder, and refused politely
(inline) when the server says no. At 1280×900 and 390×844."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import ask
from core_support import copy_workspace
from playwright.sync_api import Browser, BrowserContext, Page, expect
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.feedback import jsonl as feedback
from rag.qa import ForumQA

pytestmark = pytest.mark.browser

QUESTION = "Who led the Russian delegation?"
FOLLOW_UP = "When did the forum take place?"
# The browser logs a refused request as a console error of its own; only this one is expected here.
RATE_LIMITED = "Failed to load resource: the server responded with a status of 429 (Too Many Requests)"


@pytest.fixture(scope="module")
def workspace(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    copied = copy_workspace(settings, tmp_path_factory.mktemp("browser-feedback"))
    return copied.model_copy(update={"feedback": True, "feedback_per_minute": 2})


@pytest.fixture(scope="module")
def feedback_url(workspace: Settings, qa: ForumQA) -> Iterator[str]:
    with LiveServer(create_app(workspace, qa)) as server:
        yield server.url


def open_page(context: BrowserContext, url: str, problems: list[str]) -> Page:
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.goto(url + "/")
    return page




def stored(workspace: Settings) -> list[dict[str, Any]]:
    path = feedback.feedback_file(workspace.index_dir)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_no_buttons_when_the_server_takes_no_feedback(page: Page) -> None:
    answer = ask(page, QUESTION)
    # The page has asked /api/config by now (at start-up); one more round trip lets its answer land.
    assert page.evaluate("fetch('/api/config').then((r) => r.json()).then((c) => c.feedback)") is False
    expect(answer.locator(".answer-actions .feedback")).to_have_count(0)
    expect(answer.get_by_role("button", name="Good answer")).to_have_count(0)


def test_rating_an_answer_with_a_comment(browser: Browser, feedback_url: str, workspace: Settings,
                                         artifacts: Path) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, reduced_motion="reduce")
    problems: list[str] = []
    page = open_page(context, feedback_url, problems)
    ask(page, QUESTION)
    with page.expect_response(lambda r: r.url.endswith("/api/answer/stream")) as streamed:
        answer = ask(page, FOLLOW_UP)
    answered = json.loads(streamed.value.text().splitlines()[-1])["answer"]
    good = answer.get_by_role("button", name="Good answer")
    bad = answer.get_by_role("button", name="Bad answer")
    expect(good).to_be_visible()
    expect(answer.locator(".answer-actions .feedback")).to_have_count(1)

    bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    comment = answer.get_by_label("What was wrong? (optional)")
    expect(comment).to_be_focused()
    text = 'The dates are right, but <img src=x onerror="window.pwned=1"> it misses the place.'
    comment.fill(text)
    page.screenshot(path=str(artifacts / "feedback-comment-1280.png"))
    before = len(stored(workspace))
    with page.expect_request(lambda r: r.url.endswith("/api/feedback")) as sent:
        answer.get_by_role("button", name="Send").click()
    expect(answer.locator(".feedback-status")).to_have_text("Thanks: marked as a bad answer.")
    expect(good).to_be_disabled()
    expect(bad).to_be_disabled()
    expect(answer.locator(".feedback-form")).to_have_count(0)
    body = sent.value.post_data_json
    assert body == {
        "question": FOLLOW_UP, "answer_id": answered["answer_id"], "answer": answered["answer"],
        "verdict": answered["verdict"], "rating": "down", "comment": text,
        "history": [{"role": "user", "content": QUESTION},
                    {"role": "assistant", "content": body["history"][1]["content"]}],
    }
    assert body["history"][1]["content"]  # the first answer's text
    records = stored(workspace)
    assert len(records) == before + 1
    assert {k: records[-1][k] for k in ("answer_id", "rating", "comment", "question")} == {
        "answer_id": answered["answer_id"], "rating": "down", "comment": text, "question": FOLLOW_UP}
    assert page.evaluate("window.pwned") is None
    page.screenshot(path=str(artifacts / "feedback-sent-1280.png"))
    assert problems == []
    context.close()


def test_on_a_phone_and_when_the_server_refuses(browser: Browser, feedback_url: str, artifacts: Path) -> None:
    """390×844: the buttons and the comment box fit; past the server's feedback budget (2 a minute here,
    one already spent by the test above or spent here) its refusal is shown in the answer, and Send works
    again."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, reduced_motion="reduce")
    problems: list[str] = []
    page = open_page(context, feedback_url, problems)
    first = ask(page, QUESTION)
    first.get_by_role("button", name="Good answer").click()
    box = first.get_by_label("Anything to add? (optional)")
    expect(box).to_be_focused()
    page.screenshot(path=str(artifacts / "feedback-comment-390.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "nothing overflows sideways"
    for part in (first.locator(".feedback-form"), first.get_by_role("button", name="Bad answer")):
        where = part.bounding_box()
        assert where is not None and where["x"] >= 0 and where["x"] + where["width"] <= 390, where
    first.get_by_role("button", name="Send").click()  # no comment: the rating alone
    statuses = [first.locator(".feedback-status")]

    # The budget runs out: the next ones are refused, in words, next to the buttons.
    refused = None
    for question in ("How many members did the Korean delegation have?", FOLLOW_UP):
        answer = ask(page, question)
        answer.get_by_role("button", name="Bad answer").click()
        answer.get_by_role("button", name="Send").click()
        statuses.append(answer.locator(".feedback-status"))
        expect(statuses[-1]).not_to_have_text(re.compile("^(Sending…)?$"))
        if "Not sent" in statuses[-1].inner_text():
            refused = answer
            break
    assert refused is not None, "the third post within a minute is refused"
    expect(statuses[0]).to_have_text("Thanks: marked as a good answer.")
    status = refused.locator(".feedback-status")
    expect(status).to_have_text(re.compile(r"^Not sent: too many requests; try again"))
    expect(status).to_have_class(re.compile("error"))
    expect(refused.get_by_role("button", name="Send")).to_be_enabled()  # it can be sent again later
    page.screenshot(path=str(artifacts / "feedback-refused-390.png"))
    assert set(problems) <= {RATE_LIMITED}, problems
    context.close()

