"""Cold start and memory: ``forumqa serve`` from process start to /readyz 200 over a built index, then RSS.

Readiness is timed from ``Popen`` to the first 200 of /readyz (polled every 20 ms), with /healthz (the
port answers) alongside. Memory is read after a warm-up of answers in all three languages, for
``--workers 1`` and ``--workers 2``: summed RSS of the serving processes, and their unique (USS) and
proportional (PSS) shares, which show what the workers share (the memory-mapped index, library code)
and what each holds alone (model weights, Python heaps). A fresh process also times the start-up
steps one by one, so a slow start points at its cause.
Targets: ready <= 5 s; RSS after warm-up <= 1 GiB (1 worker).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

from bench.common import (
    Check,
    Context,
    Memory,
    Report,
    Server,
    bench_settings,
    dev_questions,
    embedders_env,
    http_status,
    log,
    mb,
    memory_of,
    start_server,
    unique_variants,
    with_onnx,
)
from bench.http_load import fire
from bench.levers import run_probe

TARGET_READY_S = 5.0
TARGET_RSS = 2**30


@dataclass(frozen=True)
class Start:
    """One server start: seconds to /healthz 200 and to /readyz 200."""

    healthz: float
    readyz: float


def time_start(server: Server, timeout: float = 180.0) -> Start:
    """Poll /healthz then /readyz from the server's start; seconds to each first 200."""
    deadline = time.monotonic() + timeout
    healthz = None
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"server exited with {server.process.returncode}: {server.tail_log()}")
        if healthz is None and http_status(server.base_url + "/healthz", 1.0) == 200:
            healthz = time.perf_counter() - server.started
        if healthz is not None and http_status(server.base_url + "/readyz", 1.0) == 200:
            return Start(healthz, time.perf_counter() - server.started)
        time.sleep(0.02)
    raise TimeoutError(f"server not ready after {timeout:.0f}s: {server.tail_log()}")


def startup_steps(index_dir: str, embedders: list[str]) -> None:
    """Run in a fresh process: print JSON of the seconds each start-up step takes, in order."""
    steps: dict[str, float] = {}
    started = time.perf_counter()

    def step(name: str) -> None:
        nonlocal started
        now = time.perf_counter()
        steps[name] = now - started
        started = now

    from rag.config import Settings  # noqa: F401  (what the CLI imports first)

    step("import rag.config")
    import api.main  # noqa: F401

    step("import api.main (fastapi, rag, faiss)")
    from rag.index.build import ensure_index
    from rag.index.publish import load_build as load_index

    settings = bench_settings(Path(index_dir), embedders=embedders)
    ensure_index(settings, progress=False)
    step("ensure_index: staleness check (serve, before uvicorn)")
    index = load_index(settings.index_dir)
    step("load_index (tables, FAISS mmap, BM25)")
    from rag.index.embedders import get_embedder

    for name in index.embedder_names:
        get_embedder(name)
        step(f"load model {name}")
    for name in index.embedder_names:
        get_embedder(name).encode_queries(["warm up"])
        step(f"warm up {name} (first query)")
    from rag.qa import ForumQA

    qa = ForumQA(settings, index)
    step("ForumQA(settings, index): retriever, vocabulary")
    qa.warm_up()
    step("ForumQA.warm_up (models already warm)")
    print(json.dumps(steps))


def measure_memory(
    index_dir: Path, workers: int, warmup: int, env: dict[str, str] | None = None
) -> tuple[Start, Memory, Memory]:
    """Start with ``workers``, warm up with ``warmup`` answers; (start, serving processes, all processes)."""
    questions = unique_variants(dev_questions(), warmup)
    with start_server(index_dir, workers, env) as server:
        start = time_start(server)
        server.wait_all_ready()
        result = fire(server.base_url + "/api/answer", questions, min(4, 2 * workers))
        if result.errors:
            raise RuntimeError(f"warm-up requests failed: {result.error_samples}")
        time.sleep(0.5)
        return start, memory_of(server.worker_pids()), memory_of(server.pids())


@dataclass
class Config:
    """A server configuration to start: a label, its index and its environment."""

    label: str
    index_dir: Path
    embedders: list[str]
    env: dict[str, str]


def configs(ctx: Context) -> list[Config]:
    """As shipped, and with the torch MiniLM swapped for the int8 ONNX one (no torch import at all)."""
    index_dir = ctx.index_dir()
    shipped = list(bench_settings(index_dir).embedders)
    out = [Config("as shipped: " + "+".join(shipped), index_dir, shipped, {})]
    onnx = with_onnx(shipped)
    if onnx != shipped:
        out.append(Config("lever: " + "+".join(onnx), ctx.variant_index(onnx), onnx, embedders_env(onnx)))
    return out


def run(ctx: Context) -> Report:
    """Time starts, break one down, and read memory for 1 and 2 workers, as shipped and with ONNX."""
    report = Report("cold start")
    repeats = ctx.repeats(3)
    warmup = 12 if ctx.quick else 40
    start_rows, memory_rows, ratio_rows = [], [], []
    for config in configs(ctx):
        starts = []
        for i in range(repeats):
            log(f"cold start: {config.label}: start {i + 1}/{repeats}")
            with start_server(config.index_dir, 1, config.env) as server:
                starts.append(time_start(server))
        ready = statistics.median(s.readyz for s in starts)
        start_rows.append(
            [config.label, *_spread([s.healthz for s in starts])[:1], *_spread([s.readyz for s in starts])]
        )
        log(f"cold start: {config.label}: start-up steps in a fresh process")
        steps = run_probe(
            f"from bench.cold_start import startup_steps; startup_steps({str(config.index_dir)!r}, "
            f"{config.embedders!r})"
        )
        report.table(
            f"cold start, {config.label}: where the time goes (one fresh process, s)",
            ["step", "seconds"],
            [[name, f"{seconds:.2f}"] for name, seconds in steps.items()]
            + [["total", f"{sum(steps.values()):.2f}"]],
        )
        memory: dict[int, tuple[Start, Memory, Memory]] = {}
        for workers in (1, 2):
            log(f"cold start: {config.label}: memory with {workers} worker(s)")
            memory[workers] = measure_memory(config.index_dir, workers, warmup, config.env)
        for workers, (start, serving, everything) in memory.items():
            memory_rows.append(
                [
                    config.label,
                    workers,
                    serving.processes,
                    mb(serving.rss),
                    mb(serving.uss),
                    mb(serving.pss),
                    mb(serving.rss - serving.uss),
                    everything.processes,
                    mb(everything.pss),
                    f"{start.readyz:.1f}",
                ]
            )
        one, two = memory[1][1], memory[2][1]
        ratio_rows.append(
            [
                config.label,
                f"{two.rss / one.rss:.2f}x",
                f"{two.pss / one.pss:.2f}x",
                f"{two.uss / one.uss:.2f}x",
                mb(two.pss - one.pss),
            ]
        )
        shipped = not config.env
        suffix = "" if shipped else " (with minilm-onnx)"
        report.check(
            Check("process start -> /readyz 200 (median)" + suffix, ready, TARGET_READY_S, unit=" s")
        )
        report.check(
            Check("RSS after warm-up, 1 worker" + suffix, one.rss / 2**20, TARGET_RSS / 2**20, unit=" MiB")
        )
    report.table(
        f"cold start: process start -> first 200, built index (s; {repeats} starts each)",
        ["configuration", "/healthz median", "/readyz median", "min", "max"],
        start_rows,
    )
    report.table(
        f"memory after {warmup} warm-up answers (MiB; serving = worker processes)",
        [
            "configuration",
            "workers",
            "serving procs",
            "RSS sum",
            "USS sum",
            "PSS sum",
            "RSS-USS (shared)",
            "all procs",
            "PSS all",
            "ready s",
        ],
        memory_rows,
    )
    report.table(
        "memory: 2 workers against 1 (sums over the serving processes)",
        ["configuration", "RSS ratio", "PSS ratio", "USS ratio", "PSS added by worker 2 (MiB)"],
        ratio_rows,
    )
    report.print_checks()
    return report


def _spread(values: list[float]) -> list[str]:
    return [f"{statistics.median(values):.2f}", f"{min(values):.2f}", f"{max(values):.2f}"]
