"""Load generator, run as its own process: ``python -m bench.loadgen URL CONCURRENCY < questions.json``.

Reads a JSON list of request bodies (``{"question", "top_k", "history"}``) on stdin, POSTs each exactly
once to ``URL`` from CONCURRENCY threads (one keep-alive httpx client each), and prints one JSON object:
per-request latencies in seconds, the error count (non-200 or transport error), a few error samples,
and the wall time. Bounded: as many requests as bodies, each with a timeout, the whole run with a deadline.
"""

from __future__ import annotations

import argparse
import json
import sys
import threading
import time
from typing import Any
from urllib.parse import urlsplit

import httpx

LOOPBACK = ("127.", "localhost", "::1")


def fire(
    url: str, bodies: list[dict[str, Any]], concurrency: int, timeout: float, deadline_s: float
) -> dict[str, Any]:
    """POST every body once from ``concurrency`` threads; latencies, errors and wall time."""
    if concurrency < 1:
        raise ValueError("concurrency must be at least 1")
    host = urlsplit(url).hostname or ""
    if not host.startswith(LOOPBACK):
        raise ValueError(f"refusing to load {host!r}: benchmarks only target loopback")
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()
    next_index = 0
    deadline = time.monotonic() + deadline_s

    def worker() -> None:
        nonlocal next_index
        with httpx.Client(timeout=timeout) as client:
            while time.monotonic() < deadline:
                with lock:
                    if next_index >= len(bodies):
                        return
                    body = bodies[next_index]
                    next_index += 1
                started = time.perf_counter()
                try:
                    response = client.post(url, json=body)
                    ok = response.status_code == 200 and "answer" in response.json()
                    problem = "" if ok else f"HTTP {response.status_code}: {response.text[:200]}"
                except (httpx.HTTPError, ValueError) as exc:
                    problem = f"{type(exc).__name__}: {exc}"
                took = time.perf_counter() - started
                with lock:
                    if problem:
                        errors.append(problem)
                    else:
                        latencies.append(took)

    threads = [threading.Thread(target=worker, daemon=True) for _ in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()) + timeout)
    wall = time.perf_counter() - started
    unsent = len(bodies) - next_index
    return {
        "latencies": latencies,
        "errors": len(errors) + unsent,
        "error_samples": errors[:3] + ([f"{unsent} requests not sent before the deadline"] if unsent else []),
        "wall": wall,
        "requests": len(latencies) + len(errors),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.loadgen", description=__doc__.split("\n\n")[0])
    parser.add_argument("url")
    parser.add_argument("concurrency", type=int)
    parser.add_argument("--timeout", type=float, default=60.0, help="per request, seconds")
    parser.add_argument("--deadline", type=float, default=300.0, help="whole run, seconds")
    args = parser.parse_args(argv)
    bodies = json.load(sys.stdin)
    print(json.dumps(fire(args.url, bodies, args.concurrency, args.timeout, args.deadline)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
