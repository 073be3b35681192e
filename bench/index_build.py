"""Index build: the report from scratch in a fresh folder, then unchanged (must skip), then forced.

The models are loaded before the clock starts (their load time is a row of its own), so the fresh
build measures chunking, embedding and writing. The unchanged build must return ``rebuilt=False`` and
embed nothing; the forced rebuild re-uses the embedding cache of the previous build (embeds nothing)
and shows what a build costs without the models.

Then the ten SQuAD articles of ``../shared/eval/squad`` with the default embedders, each build in a child
process (:mod:`bench.articles`): from scratch (seconds, texts/s per model, peak memory), and one 54 KB
article added to a built index of the other nine (seconds, texts embedded). The baseline beside it:
each model's passage throughput embedding as builds did before (batches of 16 in corpus order, chunks
and sentences apart, MiniLM through torch) and as they do now, on the same sample of texts.
Targets: ten articles <= 60 s and <= 1 GiB peak; one added document <= 5 s.
"""

from __future__ import annotations

import random
import statistics
import time
from typing import Any

from bench.common import Check, Context, Report, bench_settings, log, mb

TARGET_UNCHANGED_S = 1.0  # an unchanged corpus is detected from hashes: well under a second
TARGET_ARTICLES_S = 60.0
TARGET_ARTICLES_PEAK_BYTES = 2**30
TARGET_ADD_S = 5.0
OLD_BATCH = 16  # what builds used before batches were sized per model


def load_models(settings: Any) -> float:
    """Seconds to load (and verify) the embedders ``settings`` names, if not loaded yet in this process."""
    from rag.index.embedders import get_embedder

    started = time.perf_counter()
    for name in settings.embedders:
        get_embedder(name)
    return time.perf_counter() - started


def passage_throughput(texts: list[str], embedders: list[str]) -> list[list[object]]:
    """Per embedder: texts/s as builds embedded before (batches of 16 in the given order, MiniLM through
    torch) and now (the model's ``passage_batch``, sorted by length, MiniLM through int8 ONNX)."""
    from rag.index.embedders import MiniLMEmbedder, get_embedder

    rows: list[list[object]] = []
    for name in embedders:
        model = get_embedder(name)
        old = model.encode_passages_torch if isinstance(model, MiniLMEmbedder) else model.encode_passages
        old(texts[:2])  # the torch model loads on first use: not part of the timing
        started = time.perf_counter()
        for i in range(0, len(texts), OLD_BATCH):
            old(texts[i : i + OLD_BATCH])
        before = time.perf_counter() - started
        ordered = sorted(texts, key=len)
        started = time.perf_counter()
        for i in range(0, len(ordered), model.passage_batch):
            model.encode_passages(ordered[i : i + model.passage_batch])
        now = time.perf_counter() - started
        rows.append(
            [
                name,
                len(texts),
                f"{len(texts) / before:.1f}",
                f"{len(texts) / now:.1f}",
                f"{before / now:.1f}x",
            ]
        )
    return rows


def ten_articles(ctx: Context, report: Report) -> None:
    """The ten SQuAD articles from scratch and one of them added to the other nine, in child processes."""
    from bench import articles
    from rag.config import Settings
    from rag.index.build import chunk_embed_text
    from rag.ingest.chunking import ChunkingParams, chunk_documents
    from rag.ingest.loading import load_corpus

    data = articles.prepare(ctx.scratch("squad"))
    if data is None:
        report.note(f"{articles.SQUAD_DIR} is absent: the ten-article builds are skipped")
        return
    corpus = data / "corpus"
    embedders = list(Settings().embedders)
    log("index build: the ten articles from scratch (child process)")
    ten = articles.measure_build(corpus, ctx.scratch("squad-index"), embedders)
    nine = articles.without(corpus, ctx.scratch("squad-nine"), articles.ADDED_ARTICLE)
    added = corpus / f"{articles.ADDED_ARTICLE}.txt"
    log("index build: nine articles, then the tenth added (child process)")
    add = articles.measure_build(nine, ctx.scratch("squad-index-nine"), embedders, add=added)
    texts = ten["chunks"] + ten["sentences"]
    rows = [
        [
            "ten articles from scratch",
            f"{ten['chunks']} + {ten['sentences']}",
            sum(ten["embedded"].values()),
            f"{ten['build_s']:.1f}",
            f"{texts / ten['build_s']:.1f}",
            mb(ten["peak_rss_bytes"]),
        ],
        [
            f"add {added.name} ({added.stat().st_size // 1000} KB) to the other nine",
            "-",
            sum(add["add_embedded"].values()),
            f"{add['add_s']:.2f}",
            "-",
            mb(add["peak_rss_bytes"]),
        ],
        ["load the models (once per process)", "-", "-", f"{ten['load_s']:.1f}", "-", "-"],
    ]
    report.table(
        f"index build of the ten SQuAD articles ({', '.join(embedders)})",
        ["build", "chunks + sentences", "texts embedded", "seconds", "texts/s", "peak MiB"],
        rows,
    )
    report.table(
        "where the ten-article build goes: embedding per model (distinct texts)",
        ["embedder", "texts embedded", "seconds", "texts/s"],
        [
            [
                name,
                ten["embedded"][name],
                f"{ten['embed_s'][name]:.1f}",
                f"{ten['embedded'][name] / seconds:.1f}",
            ]
            for name, seconds in ten["embed_s"].items()
        ],
    )
    documents = load_corpus(corpus)
    chunks, sentences = chunk_documents(documents, ChunkingParams(3, 1))
    pool = [chunk_embed_text(c) for c in chunks] + [s.text for s in sentences]
    sample = [pool[i] for i in sorted(random.Random(0).sample(range(len(pool)), 100 if ctx.quick else 400))]
    log("index build: passage throughput per model, as before and now")
    report.table(
        f"baseline: passage texts/s per model on {len(sample)} of the articles' texts, as builds embedded "
        "before (batches of 16, corpus order, MiniLM via torch) and now",
        ["embedder", "texts", "before texts/s", "now texts/s", "speed-up"],
        passage_throughput(sample, embedders),
    )
    report.check(Check("ten articles from scratch", ten["build_s"], TARGET_ARTICLES_S, unit="s"))
    report.check(
        Check(
            "ten-article build peak memory",
            ten["peak_rss_bytes"] / 2**20,
            TARGET_ARTICLES_PEAK_BYTES / 2**20,
            unit=" MiB",
        )
    )
    report.check(Check("one ~50 KB document added", add["add_s"], TARGET_ADD_S, unit="s"))


def run(ctx: Context) -> Report:
    """Time fresh, unchanged and forced builds of the report; hand the last index to later sections."""
    from rag.index.build import build_index

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
    ten_articles(ctx, report)
    report.print_checks()
    ctx.adopt_index(index_dir)
    return report
