"""👍/👎 under answers in a real headless Chromium: shown only when the server takes feedback; a rating is
stored the moment it is pressed (the comment is optional and comes after, amending the same answer's
rating), kept with the conversation so it shows again after a reload, and can be changed; a refusal is
said inline and the rating shown goes back to what the server has. At 1280×900 and 390×844."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from browser_support import ask, last_answer
from core_support import copy_workspace
from playwright.sync_api import Browser, BrowserContext, Page, expect
from server_support import LiveServer

from api.main import create_app
from rag.config import Settings
from rag.feedback import jsonl as feedback
from rag.feedback import records as feedback_records
from rag.qa import ForumQA

pytestmark = pytest.mark.browser

QUESTION = "Who led the Russian delegation?"
FOLLOW_UP = "When did the forum take place?"
# The browser logs a refused request as a console error of its own; only this one is expected here.
RATE_LIMITED = "Failed to load resource: the server responded with a status of 429 (Too Many Requests)"


@pytest.fixture(scope="module")
def workspace(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    copied = copy_workspace(settings, tmp_path_factory.mktemp("browser-feedback"))
    return copied.model_copy(update={"feedback": True, "feedback_per_minute": 1000})


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


def kept_in_browser(page: Page) -> list[Any]:
    """The ratings the page keeps with the current conversation's turns (written when idle)."""
    page.wait_for_function("() => !!localStorage.getItem('forumqa.conversations')")
    return list(page.evaluate(
        """() => { const data = JSON.parse(localStorage.getItem('forumqa.conversations'));
                   const c = data.conversations.find((x) => x.id === data.active);
                   return c.turns.map((t) => t.feedback || null); }"""
    ))


def test_no_buttons_when_the_server_takes_no_feedback(page: Page) -> None:
    answer = ask(page, QUESTION)
    # The page has asked /api/config by now (at start-up); one more round trip lets its answer land.
    assert page.evaluate("fetch('/api/config').then((r) => r.json()).then((c) => c.feedback)") is False
    expect(answer.locator(".answer-actions .feedback")).to_have_count(0)
    expect(answer.get_by_role("button", name="Good answer")).to_have_count(0)


def test_a_rating_is_stored_on_click_then_a_comment_amends_it(
    browser: Browser, feedback_url: str, workspace: Settings, artifacts: Path
) -> None:
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

    # One click stores the rating: nothing else to press, no comment box in the way.
    before = len(stored(workspace))
    with page.expect_request(lambda r: r.url.endswith("/api/feedback")) as sent:
        bad.click()
    expect(bad).to_have_attribute("aria-pressed", "true")
    expect(good).to_have_attribute("aria-pressed", "false")
    status = answer.locator(".feedback-status")
    expect(status).to_have_text("Saved: a bad answer. You can change it.")
    expect(answer.locator(".feedback-form")).to_be_hidden()
    history = [{"role": "user", "content": QUESTION},
               {"role": "assistant", "content": sent.value.post_data_json["history"][1]["content"]}]
    assert sent.value.post_data_json == {
        "question": FOLLOW_UP, "answer_id": answered["answer_id"], "answer": answered["answer"],
        "verdict": answered["verdict"], "rating": "down", "comment": "", "history": history,
    }
    assert history[1]["content"]  # the first answer's text
    records = stored(workspace)
    assert len(records) == before + 1 and records[-1]["rating"] == "down" and records[-1]["comment"] == ""

    # Then, optionally, a comment: the same answer's rating again, with it.
    answer.get_by_role("button", name="Add a comment").click()
    comment = answer.get_by_label("What was wrong? (optional)")
    expect(comment).to_be_focused()
    text = 'The dates are right, but <img src=x onerror="window.pwned=1"> it misses the place.'
    comment.fill(text)
    page.screenshot(path=str(artifacts / "feedback-comment-1280.png"))
    with page.expect_request(lambda r: r.url.endswith("/api/feedback")) as sent:
        answer.get_by_role("button", name="Send comment").click()
    expect(status).to_have_text("Saved: a bad answer, with your comment. You can change it.")
    expect(answer.locator(".feedback-form")).to_be_hidden()
    expect(answer.get_by_role("button", name="Edit comment")).to_be_focused()
    assert sent.value.post_data_json["rating"] == "down" and sent.value.post_data_json["comment"] == text
    records = stored(workspace)
    assert len(records) == before + 2
    assert {k: records[-1][k] for k in ("answer_id", "rating", "comment", "question")} == {
        "answer_id": answered["answer_id"], "rating": "down", "comment": text, "question": FOLLOW_UP}
    latest = [r for r in feedback_records.eval_records(feedback.read(workspace.index_dir))
              if r["answer_id"] == answered["answer_id"]]
    assert [(r["rating"], r["comment"]) for r in latest] == [("down", text)]
    assert page.evaluate("window.pwned") is None
    assert kept_in_browser(page)[-1] == {"rating": "down", "comment": text, "saved": True}
    page.screenshot(path=str(artifacts / "feedback-sent-1280.png"))
    assert problems == []
    context.close()


def test_a_rating_comes_back_after_a_reload_and_can_be_changed(
    browser: Browser, feedback_url: str, workspace: Settings, artifacts: Path
) -> None:
    """390×844: the rating is shown again after a reload (kept with the conversation), and changing it
    stores the new one, which supersedes the old; the buttons and the comment box fit the phone."""
    context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                  device_scale_factor=2, reduced_motion="reduce")
    problems: list[str] = []
    page = open_page(context, feedback_url, problems)
    with page.expect_response(lambda r: r.url.endswith("/api/answer/stream")) as streamed:
        first = ask(page, QUESTION)
    answer_id = json.loads(streamed.value.text().splitlines()[-1])["answer"]["answer_id"]
    first.get_by_role("button", name="Good answer").click()
    expect(first.locator(".feedback-status")).to_have_text("Saved: a good answer. You can change it.")
    assert kept_in_browser(page) == [{"rating": "up", "comment": "", "saved": True}]

    page.reload()
    again = last_answer(page)
    good, bad = (again.get_by_role("button", name=n) for n in ("Good answer", "Bad answer"))
    expect(good).to_have_attribute("aria-pressed", "true")
    expect(bad).to_have_attribute("aria-pressed", "false")
    expect(again.locator(".feedback-status")).to_have_text("You rated this a good answer. You can change it.")
    expect(good).to_be_enabled()
    before = len(stored(workspace))
    with page.expect_request(lambda r: r.url.endswith("/api/feedback")) as sent:
        bad.click()
    expect(again.locator(".feedback-status")).to_have_text("Saved: a bad answer. You can change it.")
    expect(good).to_have_attribute("aria-pressed", "false")
    assert sent.value.post_data_json["rating"] == "down"
    records = stored(workspace)
    assert len(records) == before + 1 and records[-1]["rating"] == "down"
    latest = [r for r in feedback_records.eval_records(feedback.read(workspace.index_dir))
              if r["answer_id"] == answer_id]
    assert [r["rating"] for r in latest] == ["down"]
    assert kept_in_browser(page) == [{"rating": "down", "comment": "", "saved": True}]

    again.get_by_role("button", name="Add a comment").click()
    expect(again.get_by_label("What was wrong? (optional)")).to_be_focused()
    page.screenshot(path=str(artifacts / "feedback-comment-390.png"))
    assert page.evaluate("document.documentElement.scrollWidth") <= 390, "nothing overflows sideways"
    for part in (again.locator(".feedback-form"), bad):
        where = part.bounding_box()
        assert where is not None and where["x"] >= 0 and where["x"] + where["width"] <= 390, where
    assert problems == []
    context.close()


def test_a_refused_rating_is_said_and_the_shown_one_goes_back(
    browser: Browser, workspace: Settings, qa: ForumQA, artifacts: Path
) -> None:
    """Past the server's feedback budget (2 a minute here) its refusal is shown next to the buttons, and
    the buttons show again what the server has; pressing again later tries again."""
    tight = workspace.model_copy(update={"feedback_per_minute": 2})
    with LiveServer(create_app(tight, qa)) as server:
        context = browser.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True,
                                      device_scale_factor=2, reduced_motion="reduce")
        problems: list[str] = []
        page = open_page(context, server.url, problems)
        answer = ask(page, QUESTION)
        good, bad = (answer.get_by_role("button", name=n) for n in ("Good answer", "Bad answer"))
        status = answer.locator(".feedback-status")
        good.click()
        expect(status).to_have_text("Saved: a good answer. You can change it.")
        bad.click()
        expect(status).to_have_text("Saved: a bad answer. You can change it.")
        good.click()  # the third post within a minute
        expect(status).to_have_text(re.compile(r"^Not saved: too many requests; try again"))
        expect(status).to_have_class(re.compile("error"))
        expect(bad).to_have_attribute("aria-pressed", "true")  # what the server has
        expect(good).to_have_attribute("aria-pressed", "false")
        expect(good).to_be_enabled()
        page.screenshot(path=str(artifacts / "feedback-refused-390.png"))
        assert kept_in_browser(page) == [{"rating": "down", "comment": "", "saved": True}]
        assert set(problems) <= {RATE_LIMITED}, problems
        context.close()
