"""Generated answers over HTTP: modes, the NDJSON stream, /v1 streaming pass-through and usage, faults.

The LLM is tests/llm_fakes.py's stand-in (timing and faults on demand); tests/test_llm_real.py
drives the same routes against a real llama.cpp server.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
from fastapi.testclient import TestClient
from llm_fakes import Behaviour, FakeLLM, first_sentence, passages
from server_support import LiveServer

from api.main import create_app
from rag.qa import ForumQA

QUESTION = "Who headed the Korean delegation?"


def faithful(messages: list[dict[str, str]]) -> str:
    return f"{first_sentence(passages(messages)[1])} [1]"


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        yield llm


@pytest.fixture(scope="module")
def llm_url(qa: ForumQA, fake: FakeLLM) -> Iterator[str]:
    """A real uvicorn whose forum-qa has the stand-in LLM configured."""
    settings = qa.settings.model_copy(
        update={"llm_base_url": fake.url, "llm_model": "fake-model", "llm_timeout": 10.0, "cache_size": 0}
    )
    with LiveServer(create_app(settings, ForumQA(settings, qa.index, qa.reader))) as server:
        yield server.url


def test_generative_mode_without_an_llm_is_a_clear_422(client: TestClient) -> None:
    response = client.post("/api/answer", json={"question": QUESTION, "mode": "generative"})
    assert response.status_code == 422
    assert "FORUMQA_LLM_BASE_URL" in response.json()["error"]["message"]
    auto = client.post("/api/answer", json={"question": QUESTION, "mode": "auto"}).json()
    assert auto["mode"] == "extractive"
    assert client.post("/api/answer", json={"question": QUESTION, "mode": "poetic"}).status_code == 422


def test_answer_says_which_mode_and_model_answered(llm_url: str, fake: FakeLLM) -> None:
    fake.behaviour = Behaviour(reply=faithful)
    generated = httpx.post(f"{llm_url}/api/answer", json={"question": QUESTION}, timeout=30).json()
    assert generated["mode"] == "generative" and generated["model"] == "fake-model"
    assert generated["grounded"] is True and generated["usage"]["total_tokens"] > 0
    extractive = httpx.post(
        f"{llm_url}/api/answer", json={"question": QUESTION, "mode": "extractive"}, timeout=30
    ).json()
    assert extractive["mode"] == "extractive" and extractive["model"] is None and extractive["usage"] is None


def test_the_stream_route_sends_tokens_then_the_checked_answer(llm_url: str, fake: FakeLLM) -> None:
    fake.behaviour = Behaviour(reply=faithful)
    with httpx.stream("POST", f"{llm_url}/api/answer/stream", json={"question": QUESTION}, timeout=30) as r:
        assert r.headers["content-type"].startswith("application/x-ndjson")
        events = [json.loads(line) for line in r.iter_lines() if line.strip()]
    assert [e["type"] for e in events[:-1]] == ["token"] * (len(events) - 1) and len(events) > 2
    assert events[-1]["type"] == "answer" and events[-1]["answer"]["mode"] == "generative"
    # Bad input fails before any stream, as JSON.
    bad = httpx.post(f"{llm_url}/api/answer/stream", json={"question": "  "}, timeout=30)
    assert bad.status_code == 422 and bad.json()["error"]["message"]


def test_v1_streaming_passes_tokens_through_as_they_arrive(llm_url: str, fake: FakeLLM) -> None:
    fake.behaviour = Behaviour(reply=faithful, token_delay=0.05)  # ~2 s for the whole answer
    body = {"model": "forum-qa", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    started = time.monotonic()
    arrivals: list[float] = []
    chunks = []
    with httpx.stream("POST", f"{llm_url}/v1/chat/completions", json=body, timeout=30) as response:
        for line in response.iter_lines():
            if line.startswith("data: {"):
                chunk = json.loads(line[6:])
                chunks.append(chunk)
                if chunk["choices"] and chunk["choices"][0]["delta"].get("content"):
                    arrivals.append(time.monotonic() - started)
    assert arrivals[-1] - arrivals[0] > 1.0, "the tokens came in one burst, not as the LLM wrote them"
    content = "".join(c["choices"][0]["delta"].get("content", "") for c in chunks if c["choices"])
    assert "Sources:" in content and "[1]" in content
    stop = next(c for c in chunks if c["choices"] and c["choices"][0]["finish_reason"] == "stop")
    assert stop["forum_qa"]["mode"] == "generative"
    assert chunks[-1]["usage"]["total_tokens"] > 0 and chunks[-1]["choices"] == []


def test_the_openai_client_gets_a_generated_answer_and_usage(llm_url: str, fake: FakeLLM) -> None:
    fake.behaviour = Behaviour(reply=faithful)
    with openai.OpenAI(base_url=f"{llm_url}/v1", api_key="x", max_retries=0, timeout=60) as client:
        completion = client.chat.completions.create(
            model="forum-qa",
            messages=[{"role": "user", "content": QUESTION}],
            extra_body={"mode": "generative"},
        )
    assert completion.usage is not None and completion.usage.total_tokens > 0
    content = completion.choices[0].message.content or ""
    assert "[1]" in content and "Sources:" in content


@pytest.mark.parametrize("behaviour", [Behaviour(status=503), Behaviour(status=429), Behaviour(garbage=True)])
def test_a_failing_llm_never_costs_the_user_an_answer(
    llm_url: str, fake: FakeLLM, behaviour: Behaviour
) -> None:
    fake.behaviour = behaviour
    response = httpx.post(f"{llm_url}/api/answer", json={"question": QUESTION}, timeout=30)
    assert response.status_code == 200
    answer = response.json()
    assert answer["mode"] == "extractive" and answer["answerable"] and answer["notice"]
    body = {"model": "forum-qa", "messages": [{"role": "user", "content": QUESTION}], "stream": True}
    with httpx.stream("POST", f"{llm_url}/v1/chat/completions", json=body, timeout=30) as streamed:
        assert streamed.status_code == 200
        text = "".join(streamed.iter_text())
    assert "The LLM could not answer" in text and text.rstrip().endswith("data: [DONE]")


def test_fresh_asks_the_llm_again_at_the_regenerate_temperature(llm_url: str, fake: FakeLLM) -> None:
    """Regenerate on the page: ``fresh`` answers past the cache, and the LLM writes again at
    FORUMQA_LLM_REGENERATE_TEMPERATURE (0.7 by default; the configured temperature is 0)."""
    fake.behaviour = Behaviour(reply=faithful)
    fake.requests.clear()
    first = httpx.post(f"{llm_url}/api/answer", json={"question": QUESTION}, timeout=30).json()
    again = httpx.post(f"{llm_url}/api/answer", json={"question": QUESTION, "fresh": True}, timeout=30).json()
    assert [r["temperature"] for r in fake.requests] == [0.0, 0.7]
    assert first["mode"] == again["mode"] == "generative" and again["cached"] is False
    with httpx.stream("POST", f"{llm_url}/api/answer/stream", json={"question": QUESTION, "fresh": True},
                      timeout=30) as streamed:
        events = [json.loads(line) for line in streamed.iter_lines() if line.strip()]
    assert events[-1]["answer"]["mode"] == "generative" and fake.requests[-1]["temperature"] == 0.7
