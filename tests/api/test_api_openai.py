"""The OpenAI-compatible routes, driven by the official ``openai`` client over a real socket."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from rag.qa import ForumQA

QUESTION = "When did the Third Korea-Russia Forum take place?"


@pytest.fixture(scope="module")
def client(live_url: str) -> Iterator[openai.OpenAI]:
    with openai.OpenAI(base_url=f"{live_url}/v1", api_key="x", max_retries=0, timeout=60) as client:
        yield client


def test_models_lists_forum_qa(client: openai.OpenAI) -> None:
    models = list(client.models.list())
    assert [m.id for m in models] == ["forum-qa"]
    assert client.models.retrieve("forum-qa").id == "forum-qa"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4o")


def test_completion_is_the_cited_answer_then_its_sources(client: openai.OpenAI, qa: ForumQA) -> None:
    completion = client.chat.completions.create(
        model="forum-qa", messages=[{"role": "user", "content": QUESTION}]
    )
    assert completion.object == "chat.completion"
    assert completion.model == "forum-qa"
    choice = completion.choices[0]
    assert choice.finish_reason == "stop"
    assert choice.message.role == "assistant"
    content = choice.message.content or ""

    answer = qa.answer(QUESTION)
    assert content.startswith(answer.answer)
    answer_part, sources = content.split("\n\nSources:\n")
    assert answer_part == answer.answer
    lines = sources.splitlines()
    assert len(lines) == len(answer.citations)
    for line, c in zip(lines, answer.citations, strict=True):
        sentence = " ".join(qa.document(c.doc_id).text[c.highlight_start : c.highlight_end].split())  # type: ignore[union-attr]
        assert line == f"[{c.n}] {c.title} — {c.section} (chars {c.start}-{c.end}): {sentence}"


def test_streaming_sends_the_same_content_in_chunks(client: openai.OpenAI) -> None:
    messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": QUESTION}]
    whole = client.chat.completions.create(model="forum-qa", messages=messages)
    stream = client.chat.completions.create(model="forum-qa", messages=messages, stream=True)
    chunks = list(stream)
    assert len(chunks) > 3
    assert all(c.object == "chat.completion.chunk" for c in chunks)
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert all(c.choices[0].finish_reason is None for c in chunks[:-1])
    assert len({c.id for c in chunks}) == 1
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks)
    assert streamed == whole.choices[0].message.content


def test_stream_ends_with_done(live_url: str) -> None:
    body = {"model": "forum-qa", "stream": True, "messages": [{"role": "user", "content": QUESTION}]}
    with httpx.stream("POST", f"{live_url}/v1/chat/completions", json=body, timeout=60) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_earlier_messages_are_the_history(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="forum-qa",
        messages=[
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What did the Russians say about small and midsize enterprises?"},
            {"role": "assistant", "content": "They deserve more attention. [1]"},
            {"role": "user", "content": "What projects did they suggest for them?"},
        ],
    )
    content = completion.choices[0].message.content or ""
    assert "small and midsize enterprises" in content  # the follow-up was searched with its subject


def test_text_parts_are_accepted(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="forum-qa", messages=[{"role": "user", "content": [{"type": "text", "text": QUESTION}]}]
    )
    assert "September 27-28" in (completion.choices[0].message.content or "")


def test_uncovered_question_says_so(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="forum-qa", messages=[{"role": "user", "content": "What is the population of Vladivostok?"}]
    )
    content = completion.choices[0].message.content or ""
    assert content.startswith("The report does not say")
    assert "Sources:" not in content and "Nearest passages" in content


def test_errors_reach_the_client_as_openai_errors(client: openai.OpenAI) -> None:
    with pytest.raises(openai.NotFoundError) as unknown:
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])
    assert "forum-qa" in unknown.value.message
    with pytest.raises(openai.UnprocessableEntityError) as blank:
        client.chat.completions.create(model="forum-qa", messages=[{"role": "user", "content": "  "}])
    assert "must not be empty" in blank.value.message
    with pytest.raises(openai.UnprocessableEntityError) as last_not_user:
        client.chat.completions.create(
            model="forum-qa",
            messages=[{"role": "user", "content": QUESTION}, {"role": "assistant", "content": "Sept."}],
        )
    assert "role 'user'" in last_not_user.value.message
    with pytest.raises(openai.UnprocessableEntityError):
        client.chat.completions.create(model="forum-qa", messages=[])
    with pytest.raises(openai.UnprocessableEntityError) as too_long:
        client.chat.completions.create(model="forum-qa", messages=[{"role": "user", "content": "x" * 1001}])
    assert "1000" in too_long.value.message
