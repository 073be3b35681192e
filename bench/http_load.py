"""HTTP: the real server (``forumqa serve`` subprocess) on loopback under load from another process.

POST /api/answer at concurrency 1 and 8 with unique questions (variants of the dev questions, so the
answer cache never hits; every setup gets the same ones, each from a fresh server), then with repeated
questions where the cache helps. Latencies come from the
load generator (bench/loadgen.py, a separate process with its own threads). The floor is the bare query
encoding of the same questions, measured in this process just before each run (the server idle).
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
    bench_settings,
    dev_questions,
    in_thread,
    log,
    ms,
    start_server,
    timed,
    unique_variants,
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


class FloorMeter:
    """Times the bare query encoding of a batch of questions in this process, per set of models.

    Measured right before each load run of the same batch (the server idle meanwhile), so the floor and
    the run it is compared with see the same machine: on a shared machine the load drifts by minutes.
    """

    def __init__(self) -> None:
        self._qa: dict[str, Any] = {}

    def measure(self, setup: Setup, batch: Sequence[Question]) -> Latency:
        if setup.models not in self._qa:
            encoder = "torch" if setup.models == "torch queries" else "onnx"
            self._qa[setup.models] = open_qa(
                setup.index_dir, cache_size=0, embedders=setup.embedders, query_encoder=encoder
            )
        qa = self._qa[setup.models]
        calls = [floor_call(qa, q) for q in batch]

        def measure() -> Latency:
            for call in calls[:3]:
                call()
            return Latency.of([timed(c) for c in calls])

        return in_thread(measure)


@dataclass(frozen=True)
class Measured:
    """One setup at one concurrency: medians over runs of the load, its floor, and their ratios."""

    setup: Setup
    concurrency: int
    result: LoadResult
    floor: Latency
    p50_ratio: float  # HTTP p50 / floor p50
    share: float  # req/s / (cores / floor mean)
    share_p50: float  # req/s / (cores / floor p50)


def measure_setup(
    url: str, setup: Setup, concurrency: int, batches: Sequence[Sequence[Question]], meter: FloorMeter
) -> Measured:
    """For each batch: its floor, then the batch sent at ``concurrency``; medians over the batches."""
    results, floors = [], []
    for batch in batches:
        floors.append(meter.measure(setup, batch))
        results.append(fire(url, batch, concurrency))
    return Measured(
        setup,
        concurrency,
        median_result(results),
        Latency.median_of(floors),
        statistics.median(r.latency.p50 / f.p50 for r, f in zip(results, floors, strict=True)),
        statistics.median(r.rps * f.mean / CORES for r, f in zip(results, floors, strict=True)),
        statistics.median(r.rps * f.p50 / CORES for r, f in zip(results, floors, strict=True)),
    )


# ``forumqa serve`` defaults to one thread per model call and passive OpenMP waiting; these put back the
# libraries' own defaults, and the full torch model for queries, to show what those choices are worth.
LIBRARY_THREADS = {"FORUMQA_THREADS": "0", "OMP_WAIT_POLICY": "ACTIVE"}
TORCH_QUERIES = {"FORUMQA_QUERY_ENCODER": "torch"}


@dataclass(frozen=True)
class Setup:
    """A server configuration under load: its environment and worker count."""

    label: str
    index_dir: Path
    embedders: list[str]
    env: dict[str, str]
    workers: int
    concurrencies: tuple[int, ...]

    @property
    def models(self) -> str:
        """Which encoding floor the setup is compared with."""
        return "torch queries" if self.env.get("FORUMQA_QUERY_ENCODER") == "torch" else "as shipped"


def setups(ctx: Context) -> list[Setup]:
    """As shipped (ONNX queries, one thread per call; 1 and 2 workers), with the libraries' thread
    defaults, and with queries through the full torch MiniLM (the earlier default)."""
    index_dir = ctx.index_dir()
    shipped = list(bench_settings(index_dir).embedders)
    return [
        Setup("as shipped", index_dir, shipped, {}, 1, (1, 8)),
        Setup("as shipped", index_dir, shipped, {}, 2, (8,)),
        Setup("library thread defaults", index_dir, shipped, LIBRARY_THREADS, 1, (8,)),
        Setup("torch queries", index_dir, shipped, TORCH_QUERIES, 1, (1, 8)),
    ]


def run(ctx: Context) -> Report:
    """Load the server with unique then repeated questions; print latency, throughput and errors."""
    report = Report("http")
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
    meter = FloorMeter()
    rows, cache_rows = [], []
    unique: list[Measured] = []
    overhead: dict[str, float] = {}  # core-seconds per request a cache hit costs (HTTP, JSON, load generator)
    cached: list[LoadResult] = []
    for setup in plan:
        log(f"http: {setup.label}: starting the server with {setup.workers} worker(s)")
        with start_server(setup.index_dir, setup.workers, setup.env) as server:
            server.wait_all_ready()
            url = server.base_url + "/api/answer"
            fire(url, warm, 2)
            for concurrency in setup.concurrencies:
                log(f"http: {setup.label}: workers={setup.workers} c={concurrency} unique questions")
                m = measure_setup(url, setup, concurrency, batches[concurrency], meter)
                unique.append(m)
                rows.append(
                    [
                        setup.label,
                        setup.workers,
                        concurrency,
                        m.result.requests,
                        ms(m.result.latency.p50),
                        ms(m.result.latency.p95),
                        f"{m.result.rps:.2f}",
                        m.result.errors,
                        ms(m.floor.p50),
                        ms(m.floor.mean),
                        f"{m.p50_ratio:.2f}x",
                        f"{CORES / m.floor.mean:.2f}",
                        f"{m.share:.2f}",
                        f"{m.share_p50:.2f}",
                    ]
                )
            if setup.workers == 1:
                repeated = base[:16]
                fire(url, repeated, 1)  # fills the answer cache
                for concurrency in (1, 8):
                    log(f"http: {setup.label}: c={concurrency} repeated questions (cache)")
                    result = median_result([fire(url, repeated * 4, concurrency) for _ in range(repeats)])
                    cached.append(result)
                    if concurrency == 8:
                        overhead[setup.label] = CORES / result.rps
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
        f"the same questions in process, just before each run; ideal = {CORES} cores / floor mean",
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
    bound_rows = []
    for m in unique:
        cost = overhead.get(m.setup.label) or overhead.get(m.setup.models)
        if m.concurrency != 8 or cost is None:
            continue
        ceiling = CORES / (m.floor.mean + cost)
        bound_rows.append(
            [
                m.setup.label,
                m.setup.workers,
                ms(m.floor.mean),
                ms(cost),
                f"{ceiling:.2f}",
                f"{m.result.rps:.2f}",
                f"{m.result.rps / ceiling:.2f}",
            ]
        )
    report.table(
        "what bounds c=8 throughput: a request costs its encoding (floor mean) plus what a cache hit costs "
        "(HTTP, validation, JSON, the load generator: cores / cached req/s); ceiling = cores / the sum",
        ["setup", "workers", "floor mean ms", "overhead ms", "ceiling req/s", "req/s", "req/s / ceiling"],
        bound_rows,
    )
    samples = [s for r in [*(m.result for m in unique), *cached] for s in r.error_samples]
    if samples:
        report.note("error samples: " + " | ".join(samples[:3]))
    for m in unique:
        suffix = f", {m.setup.workers} worker(s)" + (
            "" if m.setup.label == "as shipped" else f" ({m.setup.label})"
        )
        if m.concurrency == 1:
            report.check(Check("p50 at c=1 / floor p50" + suffix, m.p50_ratio, TARGET_P50_RATIO, unit="x"))
        else:
            report.check(
                Check(
                    f"req/s at c={m.concurrency} / ideal" + suffix,
                    m.share,
                    TARGET_THROUGHPUT_SHARE,
                    higher_is_better=True,
                )
            )
    errors = sum(r.errors for r in [*(m.result for m in unique), *cached])
    report.check(Check("errors (all runs)", float(errors), 0.0))
    report.print_checks()
    return report
