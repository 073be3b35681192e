"""Load: 5,000 mixed valid and invalid requests at concurrency 32 against a real ``forumqa serve`` process.

Nothing may fail on the server's side (no 5xx), no connection may be dropped, and the server's resident
memory may grow by less than 10% between the first and the last thousand requests.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import psutil

from rag.config import Settings

from .support import ServerProcess

REQUESTS = 5_000
CONCURRENCY = 32
TIME_LIMIT = 240.0  # seconds for the whole run; it takes far less

QUESTIONS = [
    "When did the Third Korea-Russia Forum take place?",
    "Who led the Russian delegation?",
    "What did participants agree about terrorism?",
    "How many people attended the forum?",
    "Where was the forum held?",
    "What is the capital of Australia?",
    "포럼은 언제 열렸습니까?",
    "Когда состоялся форум?",
]

OVERSIZE = b'{"question": "' + b"x" * (70 * 1024) + b'"}'


@dataclass
class Call:
    """One request of the mix: what to send and the statuses that count as correct."""

    method: str
    path: str
    expect: tuple[int, ...]
    json: Any = None
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


def call_for(i: int) -> Call:
    """The ``i``-th request: about two thirds valid, one third invalid, deterministic."""
    question = QUESTIONS[i % len(QUESTIONS)]
    as_json = {"content-type": "application/json"}
    kinds: list[Callable[[], Call]] = [
        lambda: Call("POST", "/api/answer", (200,), json={"question": question, "top_k": 1 + i % 5}),
        lambda: Call("POST", "/api/search", (200,), json={"query": question}),
        lambda: Call("POST", "/v1/chat/completions", (200,),
                     json={"model": "forum-qa", "messages": [{"role": "user", "content": question}]}),
        lambda: Call("GET", "/api/documents/third-korea-russia-forum", (200,)),
        lambda: Call("GET", "/healthz", (200,)),
        lambda: Call("GET", "/", (200,)),
        lambda: Call("POST", "/api/answer", (200,), json={"question": f"What happened on day {i % 97}?"}),
        lambda: Call("POST", "/api/answer", (400,), content=b'{"question": "unfinished', headers=as_json),
        lambda: Call("POST", "/api/answer", (422,), json={"question": 5}),
        lambda: Call("POST", "/api/answer", (422,), json={"question": "ы" * 5000}),
        lambda: Call("POST", "/api/answer", (422,), content=b'{"question": "\\ud800"}', headers=as_json),
        lambda: Call("GET", "/api/documents/..%2F..%2Fetc%2Fpasswd", (404,)),
        lambda: Call("DELETE", "/api/answer", (405,)),
        lambda: Call("POST", "/api/answer", (413,), content=OVERSIZE, headers=as_json),
        lambda: Call("POST", "/api/search", (400,), content=b"\xff\xfe{}", headers=as_json),
    ]
    return kinds[i % len(kinds)]()


@dataclass
class Tally:
    statuses: Counter[int] = field(default_factory=Counter)
    wrong: list[str] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)
    rss: dict[int, int] = field(default_factory=dict)


async def run_load(url: str, pid: int) -> Tally:
    tally = Tally()
    server = psutil.Process(pid)
    next_index = 0
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(base_url=url, timeout=60, limits=limits) as client:

        async def worker() -> None:
            nonlocal next_index
            while next_index < REQUESTS:
                i = next_index
                next_index += 1
                call = call_for(i)
                started = time.perf_counter()
                try:
                    response = await client.request(
                        call.method, call.path, json=call.json, content=call.content, headers=call.headers
                    )
                except httpx.TransportError as exc:
                    tally.dropped.append(f"{call.method} {call.path}: {exc!r}")
                    continue
                tally.latencies.append(time.perf_counter() - started)
                tally.statuses[response.status_code] += 1
                if response.status_code not in call.expect:
                    got = f"{response.status_code} {response.text[:120]}"
                    tally.wrong.append(f"{call.method} {call.path} -> {got}")
                done = len(tally.latencies) + len(tally.dropped)
                if done in (1000, REQUESTS - 1000, REQUESTS):
                    tally.rss[done] = server.memory_info().rss

        await asyncio.wait_for(asyncio.gather(*(worker() for _ in range(CONCURRENCY))), TIME_LIMIT)
    return tally


def test_load_mixed_requests(private: Settings, start_server: Callable[..., ServerProcess]) -> None:
    server = start_server(private)
    server.wait_ready()
    assert "serve" in psutil.Process(server.pid).cmdline()  # RSS is the server's own (one worker, no fork)

    started = time.perf_counter()
    tally = asyncio.run(run_load(server.url, server.pid))
    seconds = time.perf_counter() - started

    latencies = sorted(tally.latencies)
    p50 = statistics.median(latencies) * 1000
    p95 = latencies[int(len(latencies) * 0.95)] * 1000
    first, last = tally.rss[1000], tally.rss[REQUESTS]
    growth = (last - first) / first
    server_errors = sum(n for status, n in tally.statuses.items() if status >= 500)
    rss = ", ".join(f"after {n}: {v / 2**20:.1f} MiB" for n, v in sorted(tally.rss.items()))
    print(
        f"\nload: {REQUESTS} requests, concurrency {CONCURRENCY}, {seconds:.1f} s "
        f"({REQUESTS / seconds:.0f} req/s); statuses {dict(sorted(tally.statuses.items()))}; "
        f"5xx {server_errors}; dropped {len(tally.dropped)}; unexpected {len(tally.wrong)}; "
        f"latency p50 {p50:.1f} ms, p95 {p95:.1f} ms; server RSS {rss} ({growth:+.1%})"
    )
    assert server_errors == 0, tally.wrong[:5]
    assert not tally.dropped, tally.dropped[:5]
    assert not tally.wrong, tally.wrong[:5]
    assert len(tally.latencies) == REQUESTS
    assert growth < 0.10, f"server RSS grew {growth:.1%} between the first and the last thousand requests"
    assert "Traceback" not in server.log(), server.log()[-3000:]
