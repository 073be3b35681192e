"""rag/generate/llm.py on its own, against a real HTTP server on 127.0.0.1 (tests/llm_fakes.py's stand-in,
which serves whatever each test tells it to): streamed and whole answers, the total deadline, the bound on
calls at once, every error kind, the API key kept out of every message, and no redirect followed."""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Iterator

import pytest
from llm_fakes import Behaviour, FakeLLM

from rag.generate.llm import MAX_ANSWER_CHARS, LLMClient, LLMConfig, LLMError, safe_url

KEY = "sk-test-7f3a9c1e5b"  # must never appear in a message, a log line or a repr
MESSAGES = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Who led it?"}]
REPLY = "The delegation was led by Lee In-ho [1]. It met in Moscow [2]."


@pytest.fixture()
def fake() -> Iterator[FakeLLM]:
    with FakeLLM() as llm:
        llm.behaviour = Behaviour(reply=lambda messages: REPLY)
        yield llm


def client_for(url: str, **config: object) -> LLMClient:
    settings: dict[str, object] = {"api_key": KEY, "timeout": 5.0, "connect_timeout": 1.0, **config}
    return LLMClient(LLMConfig(base_url=url, model="fake-model", **settings))  # type: ignore[arg-type]


def failure(call: object) -> LLMError:
    assert callable(call)
    with pytest.raises(LLMError) as raised:
        call()
    error = raised.value
    assert KEY not in str(error) and KEY not in repr(error)
    return error


# ------------------------------------------------------------------------------------------ answers


def test_a_streamed_answer_arrives_token_by_token_with_its_usage(fake: FakeLLM) -> None:
    fake.behaviour.token_delay = 0.02
    record = client_for(fake.url).stream(MESSAGES)
    started = time.monotonic()
    pieces = []
    first_at = None
    for piece in record.tokens:
        first_at = first_at or time.monotonic() - started
        pieces.append(piece)
    whole = time.monotonic() - started
    assert "".join(pieces) == REPLY and len(pieces) > 1
    assert first_at is not None and first_at < whole / 2  # the first token came before the rest
    assert record.usage is not None and record.usage.completion_tokens > 0
    assert record.usage.total_tokens == record.usage.prompt_tokens + record.usage.completion_tokens
    assert record.model == "fake-model" and record.seconds >= whole * 0.5
    sent = fake.requests[-1]
    assert sent["messages"] == MESSAGES and sent["model"] == "fake-model" and sent["stream"] is True
    assert sent["stream_options"] == {"include_usage": True}
    assert sent["max_tokens"] == LLMConfig("u", "m").max_tokens and sent["temperature"] == 0.0
    assert fake.headers[-1]["Authorization"] == f"Bearer {KEY}"


def test_a_whole_answer_is_asked_for_without_streaming(fake: FakeLLM) -> None:
    text, record = client_for(fake.url, max_tokens=64, temperature=0.5).complete(MESSAGES)
    assert text == REPLY
    assert record.usage is not None and record.usage.total_tokens > 0
    sent = fake.requests[-1]
    assert sent["stream"] is False and "stream_options" not in sent
    assert sent["max_tokens"] == 64 and sent["temperature"] == 0.5


def test_without_a_key_no_authorization_is_sent(fake: FakeLLM) -> None:
    client_for(fake.url, api_key=None).complete(MESSAGES)
    assert "Authorization" not in fake.headers[-1]


def test_an_answer_without_usage_still_counts(fake: FakeLLM) -> None:
    fake.behaviour.usage = False
    record = client_for(fake.url).stream(MESSAGES)
    assert "".join(record.tokens) == REPLY and record.usage is None


# ------------------------------------------------------------------------------------ deadlines


def test_a_server_that_trickles_forever_is_cut_off_at_the_total_deadline(fake: FakeLLM) -> None:
    fake.behaviour = Behaviour(reply=lambda m: "more ", endless=True, token_delay=0.01)
    client = client_for(fake.url, timeout=0.6)
    started = time.monotonic()
    error = failure(lambda: "".join(client.stream(MESSAGES).tokens))
    assert error.kind == "timeout" and "0.6 s" in str(error)
    assert time.monotonic() - started < 0.6 + 1.0


@pytest.mark.parametrize("streamed", [True, False])
def test_a_server_that_does_not_answer_in_time_is_a_timeout(fake: FakeLLM, streamed: bool) -> None:
    fake.behaviour.delay = 1.5
    client = client_for(fake.url, timeout=0.4)
    started = time.monotonic()
    if streamed:
        error = failure(lambda: "".join(client.stream(MESSAGES).tokens))
    else:
        error = failure(lambda: client.complete(MESSAGES))
    assert error.kind == "timeout"
    assert time.monotonic() - started < 1.5


# ---------------------------------------------------------------------------------- concurrency


def test_no_more_calls_at_once_than_allowed(fake: FakeLLM) -> None:
    fake.behaviour.token_delay = 0.02  # each answer takes ~0.25 s, so the calls overlap
    client = client_for(fake.url, max_concurrent=2, queue_timeout=10.0)
    results: list[str] = []
    threads = [
        threading.Thread(target=lambda: results.append("".join(client.stream(MESSAGES).tokens)))
        for _ in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == [REPLY] * 5  # every call waited for a slot and got its answer
    assert fake.peak == 2


def test_a_call_that_finds_no_free_slot_in_time_is_busy(fake: FakeLLM) -> None:
    fake.behaviour.delay = 1.0
    client = client_for(fake.url, max_concurrent=1, queue_timeout=0.2)
    holder = threading.Thread(target=lambda: client.complete(MESSAGES))
    holder.start()
    while not fake.requests:  # the first call holds the only slot
        time.sleep(0.01)
    started = time.monotonic()
    error = failure(lambda: client.complete(MESSAGES))
    assert error.kind == "busy" and 0.15 < time.monotonic() - started < 0.9
    holder.join(10)
    assert len(fake.requests) == 1  # the busy call never reached the server


def test_a_failed_call_gives_its_slot_back(fake: FakeLLM) -> None:
    client = client_for(fake.url, max_concurrent=1, queue_timeout=0.1)
    fake.behaviour.status = 500
    assert failure(lambda: client.complete(MESSAGES)).kind == "unavailable"
    fake.behaviour.status = 200
    assert client.complete(MESSAGES)[0] == REPLY


# ---------------------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("status", "kind", "says"),
    [(429, "rate_limited", "429"), (401, "refused", "API key"), (403, "refused", "API key"),
     (404, "refused", "'fake-model'"), (400, "refused", "400"), (500, "unavailable", "500"),
     (503, "unavailable", "503")],
)
def test_each_http_failure_has_its_kind_and_never_echoes_the_body(
    fake: FakeLLM, status: int, kind: str, says: str
) -> None:
    # A server may echo the request, key included, in its error body: none of it is shown.
    fake.behaviour.status = status
    fake.behaviour.error_body = f'{{"error": {{"message": "bad key {KEY}", "detail": "internal trace"}}}}'
    for call in (lambda: client_for(fake.url).complete(MESSAGES),
                 lambda: "".join(client_for(fake.url).stream(MESSAGES).tokens)):
        error = failure(call)
        assert error.kind == kind and says in str(error)
        assert "internal trace" not in str(error)


@pytest.mark.parametrize(
    ("behaviour", "says"),
    [(Behaviour(garbage=True), "not JSON"), (Behaviour(reply=lambda m: ""), "empty"),
     (Behaviour(reply=lambda m: "x" * (MAX_ANSWER_CHARS + 10)), "too long")],
    ids=["garbage", "empty", "runaway"],
)
@pytest.mark.parametrize("streamed", [True, False])
def test_a_bad_answer_is_a_bad_response(
    fake: FakeLLM, behaviour: Behaviour, says: str, streamed: bool
) -> None:
    fake.behaviour = behaviour
    client = client_for(fake.url)
    if streamed:
        error = failure(lambda: "".join(client.stream(MESSAGES).tokens))
    else:
        error = failure(lambda: client.complete(MESSAGES))
    assert error.kind == "bad_response" and says in str(error)


def test_an_unreachable_server_is_named_without_its_credentials(caplog: pytest.LogCaptureFixture) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on once closed
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    url = f"http://admin:hunter2@127.0.0.1:{port}/v1"
    caplog.set_level(logging.DEBUG)
    client = client_for(url)
    error = failure(lambda: client.complete(MESSAGES))
    assert error.kind == "unreachable"
    assert f"127.0.0.1:{port}/v1" in str(error) and "hunter2" not in str(error) and "admin" not in str(error)
    assert client.where == safe_url(url) == f"http://127.0.0.1:{port}/v1"
    assert KEY not in caplog.text and "hunter2" not in caplog.text
    assert KEY not in repr(client.config)


def test_a_redirect_is_not_followed(fake: FakeLLM) -> None:
    # Following it would send the Authorization header to wherever the Location points.
    with FakeLLM() as elsewhere:
        fake.behaviour.status = 307
        fake.behaviour.headers = {"Location": f"{elsewhere.url}/chat/completions"}
        error = failure(lambda: client_for(fake.url).complete(MESSAGES))
        assert error.kind == "refused" and "307" in str(error)
        assert elsewhere.requests == [] and len(fake.requests) == 1
