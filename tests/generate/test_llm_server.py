"""The real OpenAI-compatible server the generative tests talk to: it answers, streams, and stops cleanly.

These check the test harness itself (tests/llm_support.py) with the `openai` client, so a failure in the
generative tests can be told apart from a broken server.
"""

from __future__ import annotations

import signal
import socket
from pathlib import Path

import pytest
from llm_support import LLMServer, LLMServerError, llm_server, model_path
from openai import OpenAI

# Small budgets: the model is a 135M test model and CI has two cores.
MAX_TOKENS = 24


def _client(server: LLMServer) -> OpenAI:
    # The server needs no key; the client insists on one. Timeout: no request may hang the suite.
    return OpenAI(base_url=server.base_url, api_key="not-needed", timeout=60.0, max_retries=0)


def test_lists_the_model_under_its_alias(llm_server: LLMServer) -> None:
    models = _client(llm_server).models.list()
    assert [model.id for model in models.data] == [llm_server.model]


def test_chat_completion_returns_text_and_usage(llm_server: LLMServer) -> None:
    response = _client(llm_server).chat.completions.create(
        model=llm_server.model,
        messages=[{"role": "user", "content": "Name the capital of France in one word."}],
        max_tokens=MAX_TOKENS,
        temperature=0,
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant"
    assert choice.message.content and choice.message.content.strip()
    assert choice.finish_reason in {"stop", "length"}
    assert response.usage is not None
    assert response.usage.prompt_tokens > 0
    assert 0 < response.usage.completion_tokens <= MAX_TOKENS
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens


def test_streaming_chat_completion_yields_chunks_then_finishes(llm_server: LLMServer) -> None:
    stream = _client(llm_server).chat.completions.create(
        model=llm_server.model,
        messages=[{"role": "user", "content": "Count from one to ten in words."}],
        max_tokens=MAX_TOKENS,
        temperature=0,
        stream=True,
    )
    pieces: list[str] = []
    finish_reasons: list[str] = []
    for chunk in stream:
        for choice in chunk.choices:
            if choice.delta.content:
                pieces.append(choice.delta.content)
            if choice.finish_reason:
                finish_reasons.append(choice.finish_reason)
    assert len(pieces) >= 3, pieces  # tokens arrive one by one, not as one block
    assert "".join(pieces).strip()
    assert finish_reasons and finish_reasons[-1] in {"stop", "length"}


def _port_is_closed(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def test_server_stops_cleanly_when_its_context_ends(tmp_path: Path) -> None:
    # A server of its own (the session's stays up for the other tests): what the fixture does at session end.
    with llm_server(tmp_path, n_ctx=512) as server:
        port = int(server.base_url.rsplit(":", 1)[1].split("/")[0])
        assert server.process.poll() is None
    # SIGTERM -> uvicorn's orderly shutdown, which then re-raises the signal: -15 is a clean exit, -9 (the
    # fallback kill) is not.
    assert server.process.returncode in {0, -signal.SIGTERM}, server.log_tail()
    assert "Application shutdown complete" in server.log_tail()
    assert _port_is_closed(port)


def test_a_server_that_cannot_load_its_model_fails_fast_with_its_log(tmp_path: Path) -> None:
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(b"GGUF" + b"\0" * 64)  # a GGUF header and nothing the loader can use
    with pytest.raises(LLMServerError, match="exited with code") as raised, llm_server(
        tmp_path / "logs", model=broken, startup_timeout=60.0
    ):
        pass
    assert f"Failed to load model from file: {broken}" in str(raised.value)  # the log's tail, in the error


def test_the_model_comes_from_the_installed_package() -> None:
    path = model_path()
    assert path.suffix == ".gguf"
    assert "site-packages" in path.parts or "dist-packages" in path.parts
    with path.open("rb") as gguf:
        assert gguf.read(4) == b"GGUF"
