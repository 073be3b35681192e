"""A stand-in OpenAI-compatible server, only for faults a real LLM server will not produce on demand:
refusing connections, answering past a timeout, trickling tokens, rate-limiting, sending garbage, or
obeying a hostile document. What it says is whatever the test's ``reply`` function returns for the
request it got, so tests can also have it cite passages it was not given.

The real server (llama.cpp's, with a packaged GGUF model) is exercised in tests/test_llm_real.py.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Reply = Callable[[list[dict[str, str]]], str]


@dataclass
class Behaviour:
    """What the stand-in does with the next requests."""

    reply: Reply = lambda messages: "OK [1]."
    status: int = 200
    delay: float = 0.0  # seconds before the response starts
    token_delay: float = 0.0  # seconds between tokens
    garbage: bool = False  # a 200 whose events are not JSON
    endless: bool = False  # tokens forever (until the client goes away)
    usage: bool = True
    error_body: str = ""  # the body of a non-200 answer
    headers: dict[str, str] = field(default_factory=dict)  # more headers of a non-200 answer (Location)


@dataclass
class FakeLLM:
    """``with FakeLLM() as llm: llm.url`` is an OpenAI-compatible base URL (``.../v1``)."""

    behaviour: Behaviour = field(default_factory=Behaviour)
    requests: list[dict[str, Any]] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    url: str = ""
    peak: int = 0  # the most requests it was answering at once
    _active: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def __enter__(self) -> FakeLLM:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                fake.requests.append(body)
                fake.headers.append(dict(self.headers))
                with fake._lock:
                    fake._active += 1
                    fake.peak = max(fake.peak, fake._active)
                try:
                    fake.serve(self, body)
                finally:
                    with fake._lock:
                        fake._active -= 1

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="fake-llm", daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def serve(self, handler: BaseHTTPRequestHandler, body: dict[str, Any]) -> None:
        b = self.behaviour
        if b.delay:
            time.sleep(b.delay)
        if b.status != 200:
            payload = (b.error_body or json.dumps({"error": {"message": "nope"}})).encode()
            handler.send_response(b.status)
            for name, value in b.headers.items():
                handler.send_header(name, value)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
            return
        if body.get("stream") is False:
            self._whole(handler, b, body.get("messages", []))
            return
        handler.send_response(200)
        handler.send_header("Content-Type", "text/event-stream")
        handler.send_header("Connection", "close")
        handler.end_headers()
        try:
            if b.garbage:
                handler.wfile.write(b"data: <html>this is not json</html>\n\n")
                handler.wfile.flush()
                return
            text = b.reply(body.get("messages", []))
            pieces = [text[i : i + 6] for i in range(0, len(text), 6)] or [""]
            while True:
                for piece in pieces:
                    self._event(handler, {"choices": [{"index": 0, "delta": {"content": piece}}]})
                    if b.token_delay:
                        time.sleep(b.token_delay)
                if not b.endless:
                    break
            self._event(handler, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]})
            if b.usage:
                n = max(1, len(text) // 4)
                usage = {"prompt_tokens": 100, "completion_tokens": n, "total_tokens": 100 + n}
                self._event(handler, {"choices": [], "usage": usage})
            handler.wfile.write(b"data: [DONE]\n\n")
            handler.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a timeout under test): that is the point

    def _whole(self, handler: BaseHTTPRequestHandler, b: Behaviour, messages: list[dict[str, str]]) -> None:
        """A non-streamed answer: one JSON body, after the time the tokens would have taken."""
        text = b.reply(messages)
        time.sleep(b.token_delay * (len(text) // 6 + 1) * (100 if b.endless else 1))
        n = max(1, len(text) // 4)
        message = {"role": "assistant", "content": text}
        completion: dict[str, Any] = {
            "id": "x",
            "object": "chat.completion",
            "model": "fake-model",
            "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
        }
        if b.usage:
            completion["usage"] = {"prompt_tokens": 100, "completion_tokens": n, "total_tokens": 100 + n}
        payload = b"<html>this is not json</html>" if b.garbage else json.dumps(completion).encode()
        try:
            handler.send_response(200)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(payload)))
            handler.end_headers()
            handler.wfile.write(payload)
        except (BrokenPipeError, ConnectionResetError):
            pass

    @staticmethod
    def _event(handler: BaseHTTPRequestHandler, chunk: dict[str, Any]) -> None:
        chunk = {"id": "x", "object": "chat.completion.chunk", "model": "fake-model", **chunk}
        handler.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
        handler.wfile.flush()


def passages(messages: list[dict[str, str]]) -> dict[int, str]:
    """The numbered passages of the user message forum-qa sent (as the LLM sees them)."""
    import re

    prompt = messages[-1]["content"]
    return {
        int(m.group(1)): m.group(2).strip()
        for m in re.finditer(r'<passage n="(\d+)"[^>]*>\n(.*?)\n</passage>', prompt, re.S)
    }


def first_sentence(text: str) -> str:
    import re

    match = re.match(r"(.+?[.!?])(\s|$)", " ".join(text.split()))
    return match.group(1) if match else text
