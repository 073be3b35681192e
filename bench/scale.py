"""Scale: the vector index of rag/index/vectors.py on synthetic corpora of 10k, 100k and 1M passages.

The passages are 384-dim unit vectors from a seeded two-level Gaussian mixture (topics, then subtopics
of ~100 passages each, then passages), so neighbourhoods look like sentence embeddings' (nearest
cosine ~0.55) and nothing is downloaded. For each size: build time, bytes per vector, resident memory,
single-query search p50/p95 and recall@10 against exact search (``IndexFlatIP``, also timed as the
baseline). At 100k the index is built twice, with different thread counts, and must come out the same.
Targets at 1M: p50 <= 5 ms, recall@10 >= 0.95, index <= 1 GiB in memory.

Then the whole pipeline on real text: the ten SQuAD articles of ``../shared/eval/squad`` and the same
articles ten times over under distinct ids, each built in a child process (time, peak memory), then
English questions answered in this process against both, interleaved (answer p50/p95). Targets: p50
at 10x within 1.5x of 1x; the 10x build within 1 GiB peak.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from bench.common import ROOT, Check, Context, Latency, Memory, Report, log, mb, memory_of, ms
from rag.hashing import sha256_file

DIM = 384
K = 10
PASSAGES_PER_SUBTOPIC = 100
TOPICS = 100
TARGET_P50_S = 0.005
TARGET_RECALL = 0.95
TARGET_INDEX_BYTES = 2**30
TARGET_10X_P50_RATIO = 1.5
TARGET_10X_PEAK_BYTES = 2**30


# ---------------------------------------------------------------------------------------- data


def synthetic_vectors(
    n: int, seed: int = 0, queries: int = 0, dim: int = DIM
) -> tuple[np.ndarray, np.ndarray]:
    """``n`` passages and ``queries`` queries: unit vectors from one seeded two-level Gaussian mixture.

    Topic centres are random unit vectors; each topic has subtopic centres scattered around it, each
    subtopic ~100 passages scattered around it. Queries are drawn like passages (same centres) from a
    separate random stream, so they are not copies of passages. Same arguments, same arrays.
    """
    rng = np.random.default_rng(seed)
    subtopics_per_topic = max(1, n // PASSAGES_PER_SUBTOPIC // TOPICS)
    topics = _unit(rng.standard_normal((TOPICS, dim), dtype=np.float32))
    subtopics = np.repeat(topics, subtopics_per_topic, axis=0)
    subtopics = _unit(subtopics + rng.standard_normal(subtopics.shape, dtype=np.float32) / np.sqrt(dim))
    passages = _draw(np.random.default_rng([seed, 1]), subtopics, n)
    asked = _draw(np.random.default_rng([seed, 2]), subtopics, queries)
    return passages, asked


def _draw(rng: np.random.Generator, centres: np.ndarray, count: int, block: int = 100_000) -> np.ndarray:
    out = np.empty((count, centres.shape[1]), dtype=np.float32)
    for start in range(0, count, block):
        size = min(block, count - start)
        labels = rng.integers(0, len(centres), size)
        noise = rng.standard_normal((size, centres.shape[1]), dtype=np.float32) / np.sqrt(centres.shape[1])
        out[start : start + size] = _unit(centres[labels] + noise)
    return out


def _unit(x: np.ndarray) -> np.ndarray:
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x


# ---------------------------------------------------------------------------------------- measures


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int = K) -> float:
    """Mean over queries of |found top-k ∩ true top-k| / k (ids of -1, "no result", never match)."""
    if found.shape[0] != truth.shape[0]:
        raise ValueError("found and truth must have one row per query")
    hits = 0
    for got, want in zip(found[:, :k], truth[:, :k], strict=True):
        hits += len({int(i) for i in got if i >= 0} & {int(i) for i in want})
    return hits / (k * len(truth))


def exact_index(passages: np.ndarray) -> Any:
    """The exact baseline: ``IndexFlatIP`` over ``passages``."""
    import faiss

    index = faiss.IndexFlatIP(passages.shape[1])
    index.add(passages)
    return index


def search_latency(index: Any, queries: np.ndarray, repeats: int, k: int = K) -> Latency:
    """Single-query search latency: each query alone, as a request would; median over ``repeats`` runs."""
    search = index.search
    runs = []
    for _ in range(repeats):
        times = []
        for i in range(len(queries)):
            one = queries[i : i + 1]
            started = time.perf_counter()
            search(one, k)
            times.append(time.perf_counter() - started)
        runs.append(Latency.of(times))
    return Latency.median_of(runs)


def probe_memory(path: str, queries_path: str) -> None:
    """Run in a fresh process: print JSON of the RSS growth from loading ``path`` (copy, then mmap)."""
    import psutil

    from rag.index.vectors import load_vector_index

    queries = np.load(queries_path)
    proc = psutil.Process()
    out: dict[str, dict[str, int]] = {}
    for mode, mmap in (("mmap", True), ("copy", False)):
        before = proc.memory_info().rss
        index = load_vector_index(Path(path), mmap=mmap)
        loaded = proc.memory_info().rss
        index.search(queries, K)
        out[mode] = {"load": loaded - before, "after_search": proc.memory_info().rss - before}
        del index
    print(json.dumps(out))


def memory_probe(path: Path, queries: np.ndarray) -> dict[str, Any]:
    """RSS figures of loading ``path`` in a fresh process (so nothing else is on its heap)."""
    with tempfile.TemporaryDirectory() as tmp:
        qpath = Path(tmp) / "q.npy"
        np.save(qpath, queries)
        code = f"from bench.scale import probe_memory; probe_memory({str(path)!r}, {str(qpath)!r})"
        done = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=600, check=True
        )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def hold_index(path: str, queries_path: str, mmap: bool) -> None:
    """Run in a fresh process: load ``path`` (unless empty), search, say "ready", wait for stdin to close."""
    from rag.index.vectors import load_vector_index

    if path:
        index = load_vector_index(Path(path), mmap=mmap)
        index.search(np.load(queries_path), K)
    print("ready", flush=True)
    sys.stdin.read()


def sharing(path: Path, queries: np.ndarray, processes: int = 2) -> dict[str, Memory]:
    """Memory of ``processes`` processes holding the index at once: memory-mapped, copied, and none."""
    out: dict[str, Memory] = {}
    with tempfile.TemporaryDirectory() as tmp:
        qpath = Path(tmp) / "q.npy"
        np.save(qpath, queries)
        for mode, target, mmap in (
            ("none (interpreter + faiss)", "", True),
            ("mmap", str(path), True),
            ("copy", str(path), False),
        ):
            code = f"from bench.scale import hold_index; hold_index({target!r}, {str(qpath)!r}, {mmap})"
            procs = [
                subprocess.Popen(
                    [sys.executable, "-c", code],
                    cwd=ROOT,
                    stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE,
                    text=True,
                )
                for _ in range(processes)
            ]
            try:
                for proc in procs:
                    assert proc.stdout is not None
                    if proc.stdout.readline().strip() != "ready":
                        raise RuntimeError(f"index holder exited with {proc.wait(60)}")
                out[mode] = memory_of(p.pid for p in procs)
            finally:
                for proc in procs:
                    if proc.stdin is not None:
                        proc.stdin.close()
                for proc in procs:
                    try:
                        proc.wait(60)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(10)
    return out


# ---------------------------------------------------------------------------------------- one size


@dataclass
class SizeResult:
    """The measures of one corpus size."""

    n: int
    index_type: str
    generate_s: float
    build_s: float
    file_bytes: int
    mmap_rss: int
    copy_rss: int
    latency_1: Latency
    latency_default: Latency
    exact: Latency
    recall: float
    params: str
    shared: dict[str, Memory]


def describe(index: Any) -> tuple[str, str]:
    """(type name, its search parameters) of a FAISS index."""
    import faiss

    concrete: Any = faiss.downcast_index(index)
    name = type(concrete).__name__
    if hasattr(concrete, "nlist"):
        return name, f"nlist={concrete.nlist} nprobe={concrete.nprobe}"
    return name, "exact"


def measure_size(n: int, n_queries: int, repeats: int, workdir: Path, share: bool = False) -> SizeResult:
    """Generate, build, save, probe and search one corpus of ``n`` passages."""
    import faiss

    from rag.index.vectors import build_vector_index, load_vector_index, save_vector_index

    log(f"scale {n:,}: generating")
    started = time.perf_counter()
    passages, queries = synthetic_vectors(n, queries=n_queries)
    generate_s = time.perf_counter() - started
    log(f"scale {n:,}: building")
    started = time.perf_counter()
    built = build_vector_index(passages)
    build_s = time.perf_counter() - started
    path = workdir / f"scale-{n}.faiss"
    save_vector_index(built, path)
    del built
    index = load_vector_index(path)
    index_type, params = describe(index)
    log(f"scale {n:,}: exact baseline and search")
    exact = exact_index(passages)
    _, truth = exact.search(queries, K)
    default_threads = faiss.omp_get_max_threads()
    try:
        faiss.omp_set_num_threads(1)
        exact_latency = search_latency(exact, queries[: max(20, n_queries // 4)], 1)
        latency_1 = search_latency(index, queries, repeats)
        faiss.omp_set_num_threads(default_threads)
        latency_default = search_latency(index, queries, repeats)
    finally:
        faiss.omp_set_num_threads(default_threads)
    del exact, passages
    _, found = index.search(queries, K)
    recall = recall_at_k(found, truth)
    del index
    memory = memory_probe(path, queries)
    shared = sharing(path, queries) if share else {}
    result = SizeResult(
        n,
        index_type,
        generate_s,
        build_s,
        path.stat().st_size,
        int(memory["mmap"]["after_search"]),
        int(memory["copy"]["after_search"]),
        latency_1,
        latency_default,
        exact_latency,
        recall,
        params,
        shared,
    )
    path.unlink()
    return result


def reproducibility(n: int, workdir: Path) -> tuple[bool, bool, float]:
    """Build the index of ``n`` passages twice (1 thread, then the default) and compare.

    Returns (files byte-identical, search results identical, seconds of the second build).
    """
    import faiss

    from rag.index.vectors import build_vector_index, load_vector_index, save_vector_index

    passages, queries = synthetic_vectors(n, queries=200)
    default_threads = faiss.omp_get_max_threads()
    digests: list[str] = []
    results: list[tuple[np.ndarray, np.ndarray]] = []
    seconds = 0.0
    for threads in (1, default_threads):
        faiss.omp_set_num_threads(threads)
        started = time.perf_counter()
        index = build_vector_index(passages)
        seconds = time.perf_counter() - started
        path = workdir / f"repro-{threads}.faiss"
        save_vector_index(index, path)
        digests.append(sha256_file(path))
        results.append(load_vector_index(path).search(queries, K))
        path.unlink()
    faiss.omp_set_num_threads(default_threads)
    same_results = all(np.array_equal(a, b) for a, b in zip(results[0], results[1], strict=True))
    return digests[0] == digests[1], same_results, seconds


# PQ (e.g. IVF256,PQ48) was tried too: 70 s to train at 100k and recall@10 0.44 - not worth a row.
# "{nlist}" becomes the list count rag.index.vectors picks for the size.
ALTERNATIVES: tuple[str, ...] = ("Flat", "IVF{nlist},SQ8", "IVF{nlist},SQfp16", "HNSW32,SQ8", "HNSW32")


def alternatives(n: int, n_queries: int, repeats: int) -> list[list[object]]:
    """Other FAISS index types on the same ``n`` passages: build, size, single-query latency, recall@10.

    What ``build_vector_index`` is compared with: IVF lists probed 16 at a time, HNSW searched with
    efSearch 64 (efConstruction 40), everything on one FAISS thread at search time.
    """
    import faiss

    from rag.index.vectors import EXACT_SEARCH_MAX, _ivf_lists

    passages, queries = synthetic_vectors(n, queries=n_queries)
    _, truth = exact_index(passages).search(queries, K)
    nlist = _ivf_lists(n)
    chosen = "Flat" if n <= EXACT_SEARCH_MAX else f"IVF{nlist},SQ8"
    rows: list[list[object]] = []
    default_threads = faiss.omp_get_max_threads()
    for spec in (a.format(nlist=nlist) for a in ALTERNATIVES):
        log(f"scale: alternative {spec} at {n:,}")
        index: Any = faiss.index_factory(DIM, spec, faiss.METRIC_INNER_PRODUCT)
        started = time.perf_counter()
        if not index.is_trained:
            rows_for_training = np.random.default_rng(0).choice(n, min(n, 64 * nlist), replace=False)
            index.train(passages[np.sort(rows_for_training)])
        index.add(passages)
        build_s = time.perf_counter() - started
        if spec.startswith("IVF"):
            faiss.extract_index_ivf(index).nprobe = 16
        if spec.startswith("HNSW"):
            hnsw: Any = faiss.downcast_index(index)
            hnsw.hnsw.efSearch = 64
        size = len(faiss.serialize_index(index))
        faiss.omp_set_num_threads(1)
        try:
            latency = search_latency(index, queries, repeats)
        finally:
            faiss.omp_set_num_threads(default_threads)
        _, found = index.search(queries, K)
        rows.append(
            [
                spec,
                "<- build_vector_index" if spec == chosen else "",
                f"{build_s:.1f}",
                f"{size / n:.0f}",
                ms(latency.p50),
                ms(latency.p95),
                f"{recall_at_k(found, truth):.3f}",
            ]
        )
    return rows


# ---------------------------------------------------------------------------------------- section


def article_scale(ctx: Context, report: Report, n_questions: int) -> None:
    """Build the ten articles 1x and 10x (child processes) and time answers against both."""
    from bench import articles
    from rag.config import Settings
    from rag.qa import ForumQA

    data = articles.prepare(ctx.scratch("squad"))
    if data is None:
        report.note(f"{articles.SQUAD_DIR} is absent: the 1x/10x corpus comparison is skipped")
        return
    embedders = list(Settings().embedders)
    corpora = {"1x": data / "corpus", "10x": articles.copies(data / "corpus", ctx.scratch("squad-10x"), 10)}
    builds: dict[str, dict[str, Any]] = {}
    engines: dict[str, ForumQA] = {}
    index_dirs: dict[str, Path] = {}
    for label, corpus in corpora.items():
        log(f"scale: building the articles {label}")
        index_dir = index_dirs[label] = ctx.scratch(f"squad-index-{label}")
        if label == "10x":  # the same texts: its cache starts as 1x's (the build would embed them once)
            shutil.copytree(index_dirs["1x"] / "vectors", index_dir / "vectors")
        builds[label] = articles.measure_build(corpus, index_dir, embedders)
        engines[label] = ForumQA.open(
            Settings(corpus_dir=corpus, index_dir=index_dir, embedders=embedders), progress=False
        )
    records = [
        json.loads(line) for line in (data / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    asked = [r["question"] for r in records if r.get("answerable")]
    asked = [asked[i] for i in np.random.default_rng(0).choice(len(asked), n_questions, replace=False)]
    for engine in engines.values():
        engine.warm_up()
        engine.answer(asked[0])
    times: dict[str, list[float]] = {label: [] for label in engines}
    for question in asked:  # interleaved, so both see the same machine load
        for label, engine in engines.items():
            started = time.perf_counter()
            engine.answer(question)
            times[label].append(time.perf_counter() - started)
    latency = {label: Latency.of(t) for label, t in times.items()}
    report.table(
        f"answers on the ten articles and on them ten times over ({n_questions} English questions, "
        f"{', '.join(embedders)})",
        ["corpus", "documents", "chunks", "sentences", "texts embedded", "build s", "peak MiB", "p50", "p95"],
        [
            [
                label,
                len(engines[label].documents),
                builds[label]["chunks"],
                builds[label]["sentences"],
                sum(builds[label]["embedded"].values()),
                f"{builds[label]['build_s']:.1f}",
                mb(builds[label]["peak_rss_bytes"]),
                ms(latency[label].p50),
                ms(latency[label].p95),
            ]
            for label in engines
        ],
    )
    report.note(
        "the 10x corpus repeats the same texts: its build starts from 1x's vector cache and embeds nothing "
        "(from scratch it would embed each distinct text once, as 1x does)"
    )
    report.check(
        Check(
            "answer p50 at 10x / 1x",
            latency["10x"].p50 / latency["1x"].p50,
            TARGET_10X_P50_RATIO,
            unit="x",
        )
    )
    report.check(
        Check(
            "10x build peak memory",
            builds["10x"]["peak_rss_bytes"] / 2**20,
            TARGET_10X_PEAK_BYTES / 2**20,
            unit=" MiB",
        )
    )


def run(
    ctx: Context,
    sizes: Sequence[int] | None = None,
    n_queries: int | None = None,
    articles: bool | None = None,
) -> Report:
    """Measure every size, check reproducibility at 100k (or the largest size below it), print tables."""
    import faiss

    report = Report("scale")
    sizes = list(sizes or ([10_000, 100_000] if ctx.quick else [10_000, 100_000, 1_000_000]))
    n_queries = n_queries or (100 if ctx.quick else 200)
    repeats = ctx.repeats(3)
    workdir = ctx.scratch("scale")
    results = [measure_size(n, n_queries, repeats, workdir, share=n == max(sizes)) for n in sizes]
    threads = faiss.omp_get_max_threads()
    report.table(
        f"vector index by corpus size ({n_queries} single queries, k={K}, ms; median of {repeats} runs)",
        [
            "passages",
            "index",
            "params",
            "build s",
            "bytes/vec",
            "file MiB",
            "RSS mmap",
            "RSS copy",
            "p50 1thr",
            "p95 1thr",
            f"p50 {threads}thr",
            f"p95 {threads}thr",
            "exact p50",
            "recall@10",
        ],
        [
            [
                f"{r.n:,}",
                r.index_type,
                r.params,
                f"{r.build_s:.1f}",
                f"{r.file_bytes / r.n:.0f}",
                mb(r.file_bytes),
                mb(r.mmap_rss),
                mb(r.copy_rss),
                ms(r.latency_1.p50),
                ms(r.latency_1.p95),
                ms(r.latency_default.p50),
                ms(r.latency_default.p95),
                ms(r.exact.p50),
                f"{r.recall:.3f}",
            ]
            for r in results
        ],
    )
    report.table(
        "synthetic data generation (not part of the build)",
        ["passages", "seconds"],
        [[f"{r.n:,}", f"{r.generate_s:.1f}"] for r in results],
    )
    largest = results[-1]
    base = largest.shared["none (interpreter + faiss)"]
    report.table(
        f"two processes holding the {largest.n:,}-passage index ({mb(largest.file_bytes)} MiB file) after "
        f"{n_queries} searches each (MiB; PSS counts a shared page once overall)",
        ["index loaded", "RSS sum", "PSS sum", "PSS sum - none"],
        [[mode, mb(m.rss), mb(m.pss), mb(m.pss - base.pss)] for mode, m in largest.shared.items()],
    )
    alt_n = 100_000 if max(sizes) >= 100_000 else max(sizes)
    report.table(
        f"index types on the same {alt_n:,} passages ({n_queries} single queries, 1 FAISS thread; ms)",
        ["factory", "chosen", "build s", "bytes/vec", "p50", "p95", "recall@10"],
        alternatives(alt_n, n_queries, repeats),
    )
    repro_n = max([n for n in sizes if n <= 100_000] or [min(sizes)])
    log(f"scale: reproducibility at {repro_n:,}")
    same_bytes, same_results, seconds = reproducibility(repro_n, workdir)
    report.table(
        f"reproducibility: the index of {repro_n:,} passages built with 1 and {threads} threads",
        ["passages", "identical files", "identical search results", "build s"],
        [[f"{repro_n:,}", same_bytes, same_results, f"{seconds:.1f}"]],
    )
    label = f"{largest.n:,}"
    best = min(largest.latency_1.p50, largest.latency_default.p50)
    report.check(
        Check(f"search p50 at {label} (best thread setting)", best * 1000, TARGET_P50_S * 1000, unit=" ms")
    )
    report.check(Check(f"recall@10 at {label}", largest.recall, TARGET_RECALL, higher_is_better=True))
    report.check(
        Check(f"index size at {label}", largest.file_bytes / 2**20, TARGET_INDEX_BYTES / 2**20, unit=" MiB")
    )
    report.check(
        Check(
            f"build reproducible at {repro_n:,}",
            float(same_bytes and same_results),
            1.0,
            higher_is_better=True,
        )
    )
    if articles if articles is not None else sizes is None:  # explicit sizes (the tests): vectors only
        log("scale: the ten articles, 1x and 10x")
        article_scale(ctx, report, 30 if ctx.quick else 100)
    report.print_checks()
    os.rmdir(workdir)
    return report
