"""The chat page with an LLM configured: the answer appears as it streams, then the checked answer with
its citation chips, and a sentence the grounding check struck stays visible, crossed out.

The LLM is the stand-in of tests/llm_fakes.py, so the stream's pace and the struck sentence are known;
the real llama.cpp server is exercised over HTTP in tests/test_llm_real.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_fakes import Behaviour, FakeLLM, first_sentence, passages
from playwright.sync_api import Browser, expect
from server_support import LiveServer

from api.main import create_app
from rag.qa import ForumQA

pytestmark = pytest.mark.browser

QUESTION = "Who headed the Korean delegation?"
INVENTED = "The delegation also brought 4,500 astronauts from the Mars colony [1]."


def faithful_then_invented(messages: list[dict[str, str]]) -> str:
    return f"{first_sentence(passages(messages)[1])} [1] {INVENTED}"


@pytest.fixture(scope="module")
def llm_page_url(qa: ForumQA) -> Iterator[tuple[str, FakeLLM]]:
    with FakeLLM() as fake:
        settings = qa.settings.model_copy(
            update={"llm_base_url": fake.url, "llm_model": "fake-model", "llm_timeout": 30.0, "cache_size": 0}
        )
        with LiveServer(create_app(settings, ForumQA(settings, qa.index, qa.reader))) as server:
            yield server.url, fake


def test_a_generated_answer_streams_then_shows_chips_and_what_was_struck(
    browser: Browser, llm_page_url: tuple[str, FakeLLM], artifacts: Path
) -> None:
    url, fake = llm_page_url
    fake.behaviour = Behaviour(reply=faithful_then_invented, token_delay=0.08)  # ~4 s of tokens
    page = browser.new_page(viewport={"width": 1366, "height": 860})
    page.set_default_timeout(30_000)
    page.goto(url + "/")
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")

    # While the LLM writes: its words in the bubble, growing, before any chip.
    streaming = page.locator("#thread .message.assistant p.text.streaming")
    expect(streaming).to_contain_text("Twenty members")
    seen = len(streaming.text_content() or "")
    expect(page.locator("#thread .message.assistant .chip")).to_have_count(0)
    page.wait_for_function(
        "n => (document.querySelector('#thread p.text.streaming')?.textContent.length ?? 1e9) > n", arg=seen
    )

    # Then the checked answer: chips, the struck sentence crossed out with its reason, who wrote it.
    answer = page.locator("#thread > .message.assistant").last
    expect(answer.locator(".chip").first).to_be_visible()
    expect(streaming).to_have_count(0)
    expect(answer.locator("p.text")).not_to_contain_text("astronauts")
    expect(answer.locator(".struck li s")).to_contain_text("astronauts")
    expect(answer.locator(".struck .reason")).to_contain_text("not supported by [1]")
    expect(answer.locator(".meta")).to_contain_text("written by fake-model")
    page.screenshot(path=str(artifacts / "chat-generative.png"))
    page.close()


def test_a_failing_llm_shows_the_extractive_answer_with_a_notice(
    browser: Browser, llm_page_url: tuple[str, FakeLLM]
) -> None:
    url, fake = llm_page_url
    fake.behaviour = Behaviour(status=503)
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(url + "/")
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    answer = page.locator("#thread > .message.assistant:not(.pending)").last
    expect(answer.locator(".notice")).to_contain_text("The LLM could not answer")
    expect(answer.locator(".chip").first).to_be_visible()
    expect(answer.locator("p.text")).to_contain_text("Lee In-ho")
    page.close()


def test_a_streaming_answer_can_be_stopped(browser: Browser, llm_page_url: tuple[str, FakeLLM]) -> None:
    url, fake = llm_page_url
    fake.behaviour = Behaviour(reply=faithful_then_invented, token_delay=0.08)  # ~4 s of tokens
    page = browser.new_page()
    page.set_default_timeout(30_000)
    page.goto(url + "/")
    page.locator("#question").fill(QUESTION)
    page.locator("#question").press("Enter")
    streaming = page.locator("#thread .message.assistant p.text.streaming")
    expect(streaming).to_contain_text("Twenty members")
    page.get_by_role("button", name="Stop").click()
    # The unchecked words go: what is shown is the fact that it was stopped, and a way to ask again.
    stopped = page.locator("#thread > .message.assistant").last
    expect(stopped).to_have_class(re.compile("stopped"))
    expect(streaming).to_have_count(0)
    expect(stopped.get_by_role("button", name="Try again")).to_be_visible()
    expect(page.locator("#composer")).to_have_attribute("aria-busy", "false")
    expect(page.locator("#send")).to_be_enabled()
    page.close()
