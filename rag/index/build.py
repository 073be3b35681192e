"""Build the index of a corpus folder, in stages, publishing as soon as there is something new to serve.

A changed corpus runs ``text``, ``chunks`` and ``bm25`` (well under a second for ten articles, since an
unchanged file is not read again), then writes every model's files from its vector cache: each model
serves every document whose vectors it already holds, so a document added to a built index leaves the
others with every model, and a removal embeds nothing. The fast model (MiniLM) then embeds the sentences
it lacks, and the build is published: every document answers, a new one with chunk vectors derived from
its sentences. Then the fast model's chunks, and each slower model's sentences and chunks (e5, USE), are
embedded and published in turn (:mod:`rag.index.publish`).

A build that dies midway leaves ``CURRENT`` on the last published build and the vectors it made in the
shared cache: the next build embeds only what is still missing. A newer change may cancel a build once
it is answerable, between batches (:class:`rag.index.stages.BuildCancelled`).
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from rag.config import Settings
from rag.index.embedders import get_embedder
from rag.index.fingerprint import derives_chunks, expected_fingerprint, stale_reason
from rag.index.publish import (
    build_lock,
    current_build_dir,
    damage,
    link_build,
    load_build,
    new_tmp,
    publish,
    read_manifest,
    read_tables,
    readable_sources,
    remove_abandoned_temp_dirs,
    remove_old_builds,
    seed_from_legacy,
    unfinished,
    write_model,
    write_tables,
)
from rag.index.search_index import Coverage, IndexUnavailable, SearchIndex, Tables
from rag.index.stages import (
    BuildCancelled,
    Stages,
    StageStatus,
    StageTracker,
    embed_missing,
    stage_bm25,
    stage_chunks,
    stage_text,
)
from rag.index.vector_cache import VectorCache, open_cache
from rag.ingest.loading import corpus_files

log = logging.getLogger(__name__)

__all__ = ["BuildReport", "IndexUnavailable", "SearchIndex", "Until", "build_index", "ensure_index"]

Until = Literal["answerable", "all"]


@dataclass(frozen=True)
class BuildReport:
    """What a call to :func:`build_index` did."""

    build_dir: Path
    rebuilt: bool
    reason: str
    chunks: int
    sentences: int
    embedded: dict[str, int]
    seconds: float
    # Seconds each model spent embedding (texts/s = embedded / embed_seconds).
    embed_seconds: dict[str, float] = field(default_factory=dict)
    stages: list[StageStatus] = field(default_factory=list)
    # Models with work left (when the build stopped once answerable, or was cancelled by a newer change).
    pending: list[str] = field(default_factory=list)
    # Seconds from the call until the build first served every document (published with the fast model).
    answerable_seconds: float | None = None


class _Build:
    """One call of :func:`build_index`: the tables, each model's cache and coverage, the last published
    build; publishes a new build each time a model covers more."""

    def __init__(self, settings: Settings, tracker: StageTracker, progress: bool,
                 on_publish: Callable[[Path], None] | None) -> None:
        self.settings = settings
        self.stages = Stages.of(settings)
        self.tracker = tracker
        self.progress = progress
        self.on_publish = on_publish
        self.fingerprint = expected_fingerprint(settings)
        self.caches: dict[str, VectorCache] = {}
        self.coverage: dict[str, Coverage] = {}
        self.embedded: dict[str, int] = {}
        self.embed_seconds: dict[str, float] = {}
        self.base: Path | None = None

    def cache(self, name: str, legacy: Path | None = None) -> VectorCache:
        if name not in self.caches:
            embedder = get_embedder(name, self.settings.build_threads)
            cache = open_cache(self.settings.index_dir, embedder)
            if not len(cache):
                seed_from_legacy(cache, legacy, embedder)
            self.caches[name] = cache
        return self.caches[name]

    def first(self, tables: Tables, tmp: Path, sources: dict[str, str]) -> Path:
        """Publish ``tmp`` (tables and BM25 written) with every model's files from its cache, once the
        fast model has the sentences it lacked: a published build serves every document."""
        self._embed(self.stages.fast, tables.sentence_texts, "sentences")
        for name in self.stages.models:
            self.coverage[name] = self._write(tmp, name, tables)
        corpus = [p.name for p in corpus_files(self.settings.corpus_dir)]
        return self._publish(tmp, None, sources, corpus)

    def _write(self, tmp: Path, name: str, tables: Tables) -> Coverage:
        return write_model(tmp, name, tables, self.cache(name), derives_chunks(self.settings, name))

    def _embed(self, name: str, texts: list[str], what: str) -> None:
        embedder = get_embedder(name, self.settings.build_threads)
        started = time.perf_counter()
        made = embed_missing(embedder, texts, self.cache(name), self.tracker, self.progress, what)
        if made or name in self.embedded:
            self.embedded[name] = self.embedded.get(name, 0) + made
            self.embed_seconds[name] = self.embed_seconds.get(name, 0.0) + time.perf_counter() - started

    def advance(self, tables: Tables, name: str, part: Literal["sentences", "chunks"]) -> bool:
        """Embed what model ``name`` lacks of ``part`` and publish; False when there was nothing to do."""
        covered = self.coverage[name]
        todo = set(covered.missing if part == "sentences" else covered.derived)
        if not todo:
            return False
        if part == "sentences":
            texts = [s.text for s in tables.sentences if s.doc_id in todo]
        else:
            texts = [t for c, t in zip(tables.chunks, tables.chunk_texts, strict=True) if c.doc_id in todo]
        self._embed(name, texts, part)
        assert self.base is not None
        tmp = new_tmp(self.settings.index_dir)
        try:
            link_build(self.base, tmp)
            self.coverage[name] = self._write(tmp, name, tables)
            self._publish(tmp, self.base)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        return True

    def _publish(self, tmp: Path, base: Path | None, sources: dict[str, str] | None = None,
                 corpus: list[str] | None = None) -> Path:
        index_dir = self.settings.index_dir
        self.base = publish(index_dir, tmp, self.fingerprint, dict(self.coverage), base, sources, corpus)
        if self.on_publish is not None:
            self.on_publish(self.base)
        return self.base

    def finished(self, tables: Tables) -> None:
        """Every model covers everything: compact each cache to the texts the build uses."""
        for name, cache in self.caches.items():
            keep = set(_keys(tables.sentence_texts))
            if not derives_chunks(self.settings, name):
                keep |= set(_keys(tables.chunk_texts))
            cache.compact(keep)


def _keys(texts: list[str]) -> list[str]:
    from rag.hashing import sha256_text

    return [sha256_text(t) for t in texts]


def build_index(
    settings: Settings,
    *,
    force: bool = False,
    progress: bool = True,
    until: Until = "all",
    on_stage: Callable[[list[StageStatus]], None] | None = None,
    on_publish: Callable[[Path], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> BuildReport:
    """Bring the index of ``settings.corpus_dir`` up to date, stage by stage (see above).

    ``until="answerable"`` stops once every document is served by the fast model. ``on_stage`` gets each
    stage's progress, ``on_publish`` each build made current, and ``should_stop`` may cancel a model stage
    once the build is answerable (the vectors made so far stay in the cache; the report lists the models
    with work left in ``pending``).
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    stages = Stages.of(settings)
    tracker = StageTracker(stages.names, on_stage, should_stop)
    build = _Build(settings, tracker, progress, on_publish)
    answerable_at: float | None = None
    with build_lock(index_dir):
        previous = current_build_dir(index_dir)
        manifest = read_manifest(previous)
        reason = stale_reason(settings, manifest, previous, build.fingerprint)
        problem = damage(previous) if previous is not None else None
        (index_dir / "builds").mkdir(parents=True, exist_ok=True)
        remove_abandoned_temp_dirs(index_dir)
        if previous is not None and reason is None and problem is None and not force:
            todo = unfinished(manifest)
            if not todo:
                log.info("index %s is up to date; nothing to build", previous.name)
                return BuildReport(previous, False, "up to date", 0, 0, {}, time.perf_counter() - started,
                                   stages=tracker.snapshot())
            reason = f"adding {', '.join(todo)} to build {previous.name}"
            log.info("building index: %s", reason)
            for name in ("text", "chunks", "bm25"):
                tracker.finish(name, 0)
            tables = read_tables(previous)
            build.base = previous
            from rag.index.publish import coverage_of

            build.coverage = {n: coverage_of(manifest).get(n, Coverage()) for n in stages.models}
        else:
            reason = reason or problem or "forced rebuild"
            log.info("building index: %s", reason)
            legacy = previous if previous is not None and problem is None else None
            build.embedded = dict.fromkeys(stages.models, 0)
            tmp = new_tmp(index_dir)
            try:
                documents, sources = stage_text(settings, tracker, readable_sources(legacy))
                tables = stage_chunks(settings, documents, tracker)
                write_tables(tmp, tables)
                stage_bm25(tmp, tables, tracker, progress)
                for name in stages.models:
                    build.cache(name, legacy)
                build.first(tables, tmp, sources)
            except BaseException:
                tracker.stop_running("failed")
                shutil.rmtree(tmp, ignore_errors=True)
                raise
        try:
            answerable_at = time.perf_counter() - started  # every published build serves every document
            tracker.cancellable = True
            if until == "all":
                for name in stages.models:
                    for part in ("sentences", "chunks"):
                        build.advance(tables, name, part)
                    tracker.finish(name)
        except BuildCancelled:
            tracker.stop_running("waiting")
            log.info("stopped: a newer change asked for a build")
        except BaseException:
            tracker.stop_running("failed")
            raise
        pending = [n for n in stages.models if not build.coverage[n].complete]
        tracker.stop_running("waiting")  # stopped once answerable: the rest comes in the next build
        if not pending:
            build.finished(tables)
        assert build.base is not None
        remove_old_builds(index_dir, {build.base.name, *(p.name for p in (previous,) if p is not None)})
    seconds = time.perf_counter() - started
    log.info(
        "index %s: %d documents, %d chunks, %d sentences, embedded %s in %.1fs%s",
        build.base.name, len(tables.documents), len(tables.chunks), len(tables.sentences), build.embedded,
        seconds, f"; still to add: {', '.join(pending)}" if pending else "",
    )
    return BuildReport(build.base, True, reason, len(tables.chunks), len(tables.sentences), build.embedded,
                       seconds, build.embed_seconds, tracker.snapshot(), pending, answerable_at)


def ensure_index(settings: Settings, progress: bool = True, until: Until = "all") -> SearchIndex:
    """Load the current index, first (re)building it when it is missing, stale or damaged.

    ``until="answerable"`` (the server) stops once the index answers and leaves the other models to a
    background build; "all" (the CLI) runs every stage first.
    """
    build_dir = current_build_dir(settings.index_dir)
    manifest = read_manifest(build_dir)
    reason = stale_reason(settings, manifest, build_dir)
    if reason is None:
        try:
            index = load_build(settings.index_dir, build_dir)
        except IndexUnavailable as exc:
            log.warning("index unusable, rebuilding: %s", exc)
            build_index(settings, force=True, progress=progress, until=until)
            return load_build(settings.index_dir)
        fast = Stages.of(settings).fast
        if (until == "all" and unfinished(manifest)) or index.lacking(index.documents, [fast]):
            build_index(settings, progress=progress, until=until)
            return load_build(settings.index_dir)
        return index
    log.info("index needs a build: %s", reason)
    build_index(settings, progress=progress, until=until)
    return load_build(settings.index_dir)
