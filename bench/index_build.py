"""Index build: the report from scratch in a fresh folder, then unchanged (must skip), then forced.

The models are loaded before the clock starts (their load time is a row of its own), so the fresh
build measures chunking, embedding and writing. The unchanged build must return ``rebuilt=False`` and
embed nothing; the forced rebuild re-uses the embedding cache of the previous build (embeds nothing)
and shows what a build costs without the models.

Then the ten SQuAD articles of ``../shared/eval/squad`` with the default embedders, each build in a child
process (:mod:`bench.articles`), before (one shot, every model embedding chunks and sentences) and now
(staged) in the same run: from scratch (seconds until it answers and until every stage is done, CPU
seconds, peak memory, and per stage its seconds, texts, texts/s and the peak memory so far), one 54 KB
article added to a built index of the other nine, and removed again (seconds until answerable, and all
stages). Targets (issue 17): ten articles answerable <= 60 s, all stages <= 150 s, <= 1 GiB peak; one
added document answerable <= 5 s, all stages <= 30 s; its removal <= 2 s. Passage encoders per model
are compared by ``python -m bench.encoders``; answer p50 at 10x the corpus by the scale section.
"""

from __future__ import annotations

import json
import statistics
import time
from pathlib import Path
from typing import Any

from bench.common import Check, Context, Report, bench_settings, log, mb

TARGET_UNCHANGED_S = 1.0  # an unchanged corpus is detected from hashes: well under a second
# Issue 17's targets on this 2-core machine.
TARGET_ARTICLES_ANSWERABLE_S = 60.0
TARGET_ARTICLES_S = 150.0
TARGET_ARTICLES_PEAK_BYTES = 2**30
TARGET_ADD_ANSWERABLE_S = 5.0
TARGET_ADD_S = 30.0
TARGET_REMOVE_S = 2.0


def load_models(settings: Any) -> float:
    """Seconds to load (and verify) the embedders ``settings`` names, if not loaded yet in this process."""
    from rag.index.embedders import get_embedder

    started = time.perf_counter()
    for name in settings.embedders:
        get_embedder(name)
    return time.perf_counter() - started


def _seeded(source_index: Path, target: Path) -> Path:
    """``target`` with the vector cache of ``source_index``: a build of part of its corpus embeds nothing,
    and its stages' compaction drops the vectors of what it lacks (so an add after it embeds for real)."""
    import shutil

    target.mkdir(parents=True, exist_ok=True)
    shutil.copytree(source_index / "vectors", target / "vectors", dirs_exist_ok=True)
    return target


def ten_articles(ctx: Context, report: Report) -> None:
    """The ten SQuAD articles from scratch, one of them added to the other nine and removed again, each
    in a child process: as builds were before (one shot, every model embedding chunks and sentences)
    and as they are now (staged, chunk vectors derived where measured to hold), in the same run."""
    from bench import articles
    from rag.config import Settings

    data = articles.prepare(ctx.scratch("squad"))
    if data is None:
        report.note(f"{articles.SQUAD_DIR} is absent: the ten-article builds are skipped")
        return
    corpus = data / "corpus"
    embedders = list(Settings().embedders)
    nine = articles.without(corpus, ctx.scratch("squad-nine"), articles.ADDED_ARTICLE)
    added = corpus / f"{articles.ADDED_ARTICLE}.txt"
    runs: dict[str, dict[str, Any]] = {}
    adds: dict[str, dict[str, Any]] = {}
    for label, baseline in (("now", False), ("before", True)):
        log(f"index build ({label}): the ten articles from scratch (child process)")
        index_dir = ctx.scratch(f"squad-index-{label}")
        runs[label] = articles.measure_build(corpus, index_dir, embedders, baseline=baseline)
        log(f"index build ({label}): ten articles: {json.dumps(runs[label])}")
        log(f"index build ({label}): nine articles, the tenth added, then removed (child process)")
        nine_index = _seeded(index_dir, ctx.scratch(f"squad-index-nine-{label}"))
        adds[label] = articles.measure_build(nine, nine_index, embedders, add=added, baseline=baseline)
        log(f"index build ({label}): add and remove: {json.dumps(adds[label])}")
    before, now = runs["before"], runs["now"]
    size = f"{added.stat().st_size // 1000} KB"
    rows = [
        ["ten articles from scratch, answerable", f"{before['answerable_s']:.1f}",
         f"{now['answerable_s']:.1f}", f"<= {TARGET_ARTICLES_ANSWERABLE_S:.0f}"],
        ["ten articles from scratch, all stages", f"{before['build_s']:.1f}", f"{now['build_s']:.1f}",
         f"<= {TARGET_ARTICLES_S:.0f}"],
        ["  CPU seconds of that build", f"{before['build_cpu_s']:.1f}", f"{now['build_cpu_s']:.1f}", "-"],
        ["  peak memory (MiB)", mb(before["peak_rss_bytes"]), mb(now["peak_rss_bytes"]), "<= 1024"],
        [f"add {added.name} ({size}) to nine, answerable", f"{adds['before']['add_answerable_s']:.1f}",
         f"{adds['now']['add_answerable_s']:.1f}", f"<= {TARGET_ADD_ANSWERABLE_S:.0f}"],
        [f"add {added.name} ({size}) to nine, all stages", f"{adds['before']['add_s']:.1f}",
         f"{adds['now']['add_s']:.1f}", f"<= {TARGET_ADD_S:.0f}"],
        ["remove it again, answerable", f"{adds['before']['remove_answerable_s']:.2f}",
         f"{adds['now']['remove_answerable_s']:.2f}", f"<= {TARGET_REMOVE_S:.0f}"],
        ["remove it again, all stages", f"{adds['before']['remove_s']:.2f}", f"{adds['now']['remove_s']:.2f}",
         "-"],
        ["texts embedded from scratch", sum(before["embedded"].values()), sum(now["embedded"].values()), "-"],
        ["texts embedded for the add", sum(adds["before"]["add_embedded"].values()),
         sum(adds["now"]["add_embedded"].values()), "-"],
        ["load the models (once per process)", f"{before['load_s']:.1f}", f"{now['load_s']:.1f}", "-"],
    ]
    report.table(
        f"index builds of the ten SQuAD articles ({', '.join(embedders)}; {now['chunks']} chunks, "
        f"{now['sentences']} sentences), before (one shot, every model embeds chunks and sentences) and now "
        "(staged), seconds",
        ["build", "before", "now", "target"],
        rows,
    )
    for label, run, add in (("before", before, adds["before"]), ("now", now, adds["now"])):
        report.table(
            f"stages ({label}): ten articles from scratch, and the add of {added.name}",
            ["stage", "seconds", "texts", "texts/s", "peak MiB so far", "add: seconds", "add: texts",
             "add: texts/s"],
            [
                [
                    name,
                    f"{stage['seconds']:.2f}",
                    stage["done"],
                    f"{stage['rate']:.1f}" if stage["rate"] else "-",
                    mb(stage["peak_rss_bytes"]),
                    f"{add['add_stages'].get(name, {}).get('seconds', 0.0):.2f}",
                    add["add_stages"].get(name, {}).get("done", "-"),
                    f"{add['add_stages'][name]['rate']:.1f}"
                    if add["add_stages"].get(name, {}).get("rate")
                    else "-",
                ]
                for name, stage in run["stages"].items()
            ],
        )
    report.note(
        "text and chunks count documents, the other stages texts (a model: the distinct texts it embedded); "
        "'before' is this code with every model embedding its chunks, answering only once all stages are "
        "done, as builds did before stages"
    )
    report.check(Check("ten articles from scratch, answerable", now["answerable_s"],
                       TARGET_ARTICLES_ANSWERABLE_S, unit="s"))
    report.check(Check("ten articles from scratch, all stages", now["build_s"], TARGET_ARTICLES_S, unit="s"))
    report.check(
        Check(
            "ten-article build peak memory",
            now["peak_rss_bytes"] / 2**20,
            TARGET_ARTICLES_PEAK_BYTES / 2**20,
            unit=" MiB",
        )
    )
    report.check(Check("one ~50 KB document added, answerable", adds["now"]["add_answerable_s"],
                       TARGET_ADD_ANSWERABLE_S, unit="s"))
    report.check(Check("one ~50 KB document added, all stages", adds["now"]["add_s"], TARGET_ADD_S, unit="s"))
    report.check(Check("that document removed, answerable", adds["now"]["remove_answerable_s"],
                       TARGET_REMOVE_S, unit="s"))


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
