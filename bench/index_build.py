"""Index build: the report from scratch in a fresh folder, then unchanged (must skip), then forced.

The models are loaded before the clock starts (their load time is a row of its own), so the fresh
build measures chunking, embedding and writing. The unchanged build must return ``rebuilt=False`` and
embed nothing; the forced rebuild re-uses the embedding cache of the previous build (embeds nothing)
and shows what a build costs without the models.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

from bench.common import Check, Context, Report, bench_settings, log

TARGET_UNCHANGED_S = 1.0  # an unchanged corpus is detected from hashes: well under a second


def load_models(settings: Any) -> float:
    """Seconds to load (and verify) the embedders ``settings`` names, if not loaded yet in this process."""
    from rag.embedding import get_embedder

    started = time.perf_counter()
    for name in settings.embedders:
        get_embedder(name)
    return time.perf_counter() - started


def passage_throughput(index_dir: Any, embedders: list[str], repeats: int) -> list[list[object]]:
    """Per embedder: seconds to embed every chunk and sentence of the built index (in build batches)."""
    from rag import indexing
    from rag.embedding import get_embedder

    index = indexing.load_index(index_dir)
    texts = [c.text for c in index.chunks] + [s.text for s in index.sentences]
    batch = int(getattr(indexing, "EMBED_BATCH", 16))
    rows: list[list[object]] = []
    for name in embedders:
        model = get_embedder(name)
        times = []
        for _ in range(repeats):
            started = time.perf_counter()
            for i in range(0, len(texts), batch):
                model.encode_passages(texts[i : i + batch])
            times.append(time.perf_counter() - started)
        seconds = statistics.median(times)
        rows.append([name, len(texts), f"{seconds:.2f}", f"{len(texts) / seconds:.1f}"])
    return rows


def run(ctx: Context) -> Report:
    """Time fresh, unchanged and forced builds of the report; hand the last index to later sections."""
    from rag.indexing import build_index

    report = Report("index build")
    index_dir = ctx.scratch("build")
    settings = bench_settings(index_dir)
    model_load = load_models(settings)
    repeats = ctx.repeats(2)
    fresh: list[Any] = []
    for i in range(repeats):
        target = index_dir if i == repeats - 1 else ctx.scratch("build")
        log(f"index build: fresh build {i + 1}/{repeats}")
        fresh.append(build_index(bench_settings(target), progress=False))
    unchanged = [build_index(settings, progress=False) for _ in range(ctx.repeats(3))]
    log("index build: forced rebuild (embedding cache warm)")
    forced = build_index(settings, force=True, progress=False)

    first = fresh[-1]
    texts = first.chunks + first.sentences
    fresh_s = statistics.median(r.seconds for r in fresh)
    unchanged_s = statistics.median(r.seconds for r in unchanged)
    rows = [
        ["load models (once per process)", "-", "-", "-", f"{model_load:.2f}", "-", "-"],
        [
            f"fresh build (median of {repeats})",
            first.chunks,
            first.sentences,
            sum(first.embedded.values()),
            f"{fresh_s:.2f}",
            f"{first.chunks / fresh_s:.1f}",
            f"{texts / fresh_s:.1f}",
        ],
        [
            f"unchanged (median of {len(unchanged)})",
            "-",
            "-",
            sum(sum(r.embedded.values()) for r in unchanged),
            f"{unchanged_s:.3f}",
            "-",
            "-",
        ],
        [
            "forced, embedding cache warm",
            forced.chunks,
            forced.sentences,
            sum(forced.embedded.values()),
            f"{forced.seconds:.2f}",
            f"{forced.chunks / forced.seconds:.1f}",
            f"{texts / forced.seconds:.1f}",
        ],
    ]
    report.table(
        f"index build of the report ({', '.join(settings.embedders)})",
        ["build", "chunks", "sentences", "texts embedded", "seconds", "chunks/s", "texts/s"],
        rows,
    )
    log("index build: passage embedding per model")
    report.table(
        f"where a fresh build goes: embedding chunks + sentences per model (median of {repeats})",
        ["embedder", "texts", "seconds", "texts/s"],
        passage_throughput(index_dir, list(settings.embedders), repeats),
    )
    skipped = all(not r.rebuilt for r in unchanged)
    report.check(
        Check(
            "unchanged build skipped (rebuilt=False, 0 embedded)",
            float(skipped and not any(r.embedded for r in unchanged)),
            1.0,
            higher_is_better=True,
        )
    )
    report.check(Check("unchanged build seconds", unchanged_s, TARGET_UNCHANGED_S, unit="s"))
    report.check(Check("forced rebuild embeds nothing (cache)", float(sum(forced.embedded.values())), 0.0))
    report.print_checks()
    ctx.adopt_index(index_dir)
    return report
