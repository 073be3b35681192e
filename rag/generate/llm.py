"""A small client for any OpenAI-compatible chat server (Ollama, llama.cpp, vLLM, OpenAI).

Only ``POST {base_url}/chat/completions`` is used, streamed or not, through one reader, so a total
deadline is enforced between tokens: a server that trickles tokens forever cannot hold a request
past ``timeout``. Every failure becomes an
:class:`LLMError` with a short ``kind`` and a message safe to show a user: it never carries the API
key, credentials in the URL, or the server's raw error body.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx

log = logging.getLogger(__name__)

ErrorKind = Literal[
    "unreachable", "timeout", "rate_limited", "refused", "unavailable", "bad_response", "busy"
]

#: Stop reading an answer past this many characters (a runaway model, or a server sending junk).
MAX_ANSWER_CHARS = 8000


class LLMError(Exception):
    """The LLM could not give an answer; ``kind`` says why in one word, the message in a sentence."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind = kind


@dataclass(frozen=True, slots=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int

    def to_dict(self) -> dict[str, int]:
        return {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.total_tokens,
        }


@dataclass(frozen=True, slots=True)
class LLMConfig:
    base_url: str
    model: str
    api_key: str | None = field(default=None, repr=False)  # a secret: kept out of repr and logs
    timeout: float = 60.0
    connect_timeout: float = 5.0
    max_concurrent: int = 2
    queue_timeout: float = 5.0
    max_tokens: int = 300
    temperature: float = 0.0


@dataclass(slots=True)
class Stream:
    """The tokens of one answer as they arrive; ``usage`` and ``model`` are set once it ends."""

    tokens: Iterator[str]
    model: str
    usage: Usage | None = None
    seconds: float = 0.0


def safe_url(url: str) -> str:
    """``url`` without user:password, for logs and messages."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


class LLMClient:
    """Thread-safe; at most ``max_concurrent`` calls at once, the rest wait up to ``queue_timeout``."""

    def __init__(self, config: LLMConfig, transport: httpx.BaseTransport | None = None) -> None:
        self.config = config
        self._slots = threading.BoundedSemaphore(config.max_concurrent)
        headers = {"Accept": "text/event-stream"}
        if config.api_key:
            headers["Authorization"] = f"Bearer {config.api_key}"
        self._http = httpx.Client(
            base_url=config.base_url.rstrip("/") + "/",
            headers=headers,
            timeout=httpx.Timeout(config.timeout, connect=config.connect_timeout),
            transport=transport,
            follow_redirects=False,  # a redirect could carry the Authorization header elsewhere
        )
        self.where = safe_url(config.base_url)

    @property
    def model(self) -> str:
        return self.config.model

    def close(self) -> None:
        self._http.close()

    def complete(
        self, messages: list[dict[str, str]], temperature: float | None = None
    ) -> tuple[str, Stream]:
        """The whole answer text and its record (usage, timings), asked for without streaming:
        servers that leave ``usage`` out of streams (llama.cpp's Python server) report it here.
        ``temperature``: this call's, instead of the configured one."""
        record = Stream(tokens=iter(()), model=self.config.model)
        text = "".join(self._tokens(messages, record, stream=False, temperature=temperature))
        return text, record

    def stream(self, messages: list[dict[str, str]], temperature: float | None = None) -> Stream:
        """Start a chat completion; iterate ``.tokens``. Raises :class:`LLMError` on any failure,
        at the start or while iterating. ``temperature``: this call's, instead of the configured one."""
        record = Stream(tokens=iter(()), model=self.config.model)
        record.tokens = self._tokens(messages, record, stream=True, temperature=temperature)
        return record

    def _tokens(
        self, messages: list[dict[str, str]], record: Stream, stream: bool, temperature: float | None = None
    ) -> Iterator[str]:
        if not self._slots.acquire(timeout=self.config.queue_timeout):
            raise LLMError("busy", "the LLM is busy with other questions")
        started = time.monotonic()
        deadline = started + self.config.timeout
        body: dict[str, Any] = {
            "model": self.config.model,
            "messages": messages,
            "stream": stream,
            "max_tokens": self.config.max_tokens,
            "temperature": self.config.temperature if temperature is None else temperature,
        }
        if stream:
            body["stream_options"] = {"include_usage": True}
        chars = 0
        try:
            with self._http.stream("POST", "chat/completions", json=body) as response:
                self._check_status(response)
                for payload in _sse_payloads(response, deadline, self.config.timeout):
                    if payload.get("model"):
                        record.model = str(payload["model"])
                    if isinstance(payload.get("usage"), dict):
                        record.usage = _usage(payload["usage"])
                    piece = _delta_text(payload)
                    if piece:
                        chars += len(piece)
                        if chars > MAX_ANSWER_CHARS:
                            raise LLMError("bad_response", "the LLM's answer ran far too long")
                        yield piece
        except httpx.TimeoutException as exc:
            raise LLMError("timeout", f"the LLM did not answer within {self.config.timeout:g} s") from exc
        except (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError) as exc:
            raise LLMError("unreachable", f"cannot reach the LLM server at {self.where}") from exc
        except httpx.HTTPError as exc:
            raise LLMError("unreachable", f"the LLM request failed ({type(exc).__name__})") from exc
        finally:
            record.seconds = time.monotonic() - started
            self._slots.release()
        if chars == 0:
            raise LLMError("bad_response", "the LLM sent an empty answer")

    def _check_status(self, response: httpx.Response) -> None:
        status = response.status_code
        if status == 200:
            kind = response.headers.get("content-type", "")
            if "text/event-stream" not in kind and "application/json" not in kind:
                raise LLMError("bad_response", f"the LLM server sent {kind or 'no content type'}")
            return
        # The body is read only to close the exchange cleanly; it is never shown (it may echo secrets).
        response.read()
        if status == 429:
            raise LLMError("rate_limited", "the LLM server is rate-limiting (HTTP 429)")
        if status in (401, 403):
            raise LLMError(
                "refused", f"the LLM server refused the request (HTTP {status}); check the API key"
            )
        if status == 404:
            raise LLMError("refused", f"the LLM server has no model {self.config.model!r} (HTTP 404)")
        if status >= 500:
            raise LLMError("unavailable", f"the LLM server failed (HTTP {status})")
        raise LLMError("refused", f"the LLM server rejected the request (HTTP {status})")


def _sse_payloads(response: httpx.Response, deadline: float, timeout: float) -> Iterator[dict[str, Any]]:
    """The JSON objects of an SSE stream; a plain JSON body (a server ignoring ``stream``) also works."""
    if "application/json" in response.headers.get("content-type", ""):
        yield _json(response.read().decode("utf-8", "replace"))
        return
    for line in response.iter_lines():
        if time.monotonic() > deadline:
            raise LLMError("timeout", f"the LLM did not finish within {timeout:g} s")
        line = line.strip()
        if not line.startswith("data:"):
            continue  # comments (": ping"), event names, blank separators
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield _json(data)


def _json(text: str) -> dict[str, Any]:
    try:
        payload = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LLMError("bad_response", "the LLM server sent something that is not JSON") from exc
    if not isinstance(payload, dict):
        raise LLMError("bad_response", "the LLM server sent JSON of the wrong shape")
    if "error" in payload and "choices" not in payload:
        raise LLMError("unavailable", "the LLM server reported an error")
    return payload


def _delta_text(payload: dict[str, Any]) -> str:
    choices = payload.get("choices")
    if not choices:
        return ""  # the usage-only last chunk has an empty list
    if not isinstance(choices, list) or not isinstance(choices[0], dict):
        raise LLMError("bad_response", "the LLM server sent choices of the wrong shape")
    choice = choices[0]
    part = choice.get("delta") or choice.get("message") or {}
    content = part.get("content") if isinstance(part, dict) else None
    if content is None:
        return ""
    if not isinstance(content, str):
        raise LLMError("bad_response", "the LLM server sent content that is not text")
    return content


def _usage(raw: dict[str, Any]) -> Usage | None:
    try:
        prompt = int(raw.get("prompt_tokens") or 0)
        completion = int(raw.get("completion_tokens") or 0)
        total = int(raw.get("total_tokens") or prompt + completion)
    except (TypeError, ValueError):
        return None
    return Usage(prompt, completion, total)
