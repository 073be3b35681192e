"""The stages of an index build, as a value, with their progress; and the work each stage does.

A build runs ``text`` (read the corpus), ``chunks`` (sentences and windows of them), ``bm25``, then one
stage per model, the fast English one first (MiniLM), then the others (e5, USE): :class:`Stages`. A model
stage embeds only the texts its vector cache lacks, sentences before chunks, so a document added to a
built index is served by every model that already covers it and by the fast model as soon as its
sentences are embedded (:mod:`rag.index.build` publishes between the parts).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from rag.config import Settings
from rag.hashing import sha256_text
from rag.index.embedders import EMBEDDERS, Embedder
from rag.index.lexical import LexicalIndex
from rag.index.search_index import Tables
from rag.index.vector_cache import VectorCache
from rag.ingest.chunking import ChunkingParams, chunk_documents
from rag.ingest.loading import corpus_files, load_corpus, source_key
from rag.types import Document

TABLE_STAGES = ("text", "chunks", "bm25")


@dataclass(frozen=True)
class Stages:
    """The stages of a build for some settings: the table stages, then one per model in build order."""

    models: tuple[str, ...]  # the fast (answerable) model first

    @classmethod
    def of(cls, settings: Settings) -> Stages:
        """The first English model of ``settings.embedders`` is the fast one (MiniLM); the rest follow in
        their configured order."""
        known = [n for n in settings.embedders if n in EMBEDDERS]
        english = [n for n in known if not EMBEDDERS[n].multilingual]
        fast = (english or list(settings.embedders))[0]
        return cls((fast, *(n for n in settings.embedders if n != fast)))

    @property
    def fast(self) -> str:
        """The model whose sentences make a document answerable."""
        return self.models[0]

    @property
    def slow(self) -> tuple[str, ...]:
        return self.models[1:]

    @property
    def names(self) -> tuple[str, ...]:
        return (*TABLE_STAGES, *self.models)

    def order(self, model: str) -> int:
        """Where ``model`` comes in the build (jobs are claimed in this order); unknown ones last."""
        return self.models.index(model) if model in self.models else len(self.models)

    def sort(self, models: Iterable[str]) -> tuple[str, ...]:
        return tuple(sorted(set(models), key=self.order))


StageState = Literal["waiting", "running", "done", "failed"]


@dataclass
class StageStatus:
    """One stage of a build as the status endpoint and ``forumqa build`` show it."""

    name: str
    state: StageState = "waiting"
    done: int | None = None
    total: int | None = None
    rate: float | None = None  # texts (or documents) per second
    seconds: float | None = None
    started: float | None = field(default=None, repr=False)  # perf_counter at start, not reported


class BuildCancelled(RuntimeError):
    """A newer change asked for a build: this one stops between batches (its vectors are kept)."""


class StageTracker:
    """The stages of one build call and their progress; ``on_change`` gets a snapshot after each change,
    ``should_stop`` is asked between batches of the slow stages (a newer change wants the builder)."""

    def __init__(
        self,
        names: Sequence[str],
        on_change: Callable[[list[StageStatus]], None] | None = None,
        should_stop: Callable[[], bool] | None = None,
    ) -> None:
        self.stages = {n: StageStatus(n) for n in names}
        self._on_change = on_change
        self._should_stop = should_stop
        self.cancellable = False  # only once the build is answerable: never starve the fast stages
        self._last_report = 0.0

    def snapshot(self) -> list[StageStatus]:
        return [replace(s) for s in self.stages.values()]

    def _changed(self, force: bool = True) -> None:
        now = time.perf_counter()
        if self._on_change is not None and (force or now - self._last_report >= 0.2):
            self._last_report = now
            self._on_change(self.snapshot())

    def start(self, name: str, total: int | None) -> None:
        stage = self.stages[name]
        if stage.state == "running":  # a model stage's second part (its chunks) goes on counting
            stage.total = (stage.done or 0) + (total or 0)
        else:
            stage.state, stage.done, stage.total, stage.started = "running", 0, total, time.perf_counter()
        self._changed()

    def advance(self, name: str, n: int) -> None:
        stage = self.stages[name]
        stage.done = (stage.done or 0) + n
        self._update_rate(stage)
        self._changed(force=False)

    def finish(self, name: str, done: int | None = None) -> None:
        stage = self.stages[name]
        if done is not None:
            stage.done = done
        if stage.started is None:  # nothing to do: done at once
            stage.done, stage.total, stage.seconds = stage.done or 0, stage.total or 0, 0.0
        stage.state = "done"
        if stage.total is None:
            stage.total = stage.done
        self._update_rate(stage)
        self._changed()

    def stop_running(self, state: StageState) -> None:
        """The running stage failed ("failed"), or was cancelled and waits for the next build."""
        name = self.running()
        if name is not None:
            self.stages[name].state = state
            self._update_rate(self.stages[name])
            self._changed()

    def running(self) -> str | None:
        return next((s.name for s in self.stages.values() if s.state == "running"), None)

    def check_cancelled(self) -> None:
        if self.cancellable and self._should_stop is not None and self._should_stop():
            raise BuildCancelled("a newer change to the corpus asked for a build")

    @staticmethod
    def _update_rate(stage: StageStatus) -> None:
        if stage.started is None:
            return
        stage.seconds = time.perf_counter() - stage.started
        stage.rate = (stage.done or 0) / stage.seconds if stage.seconds > 0 and stage.done else None


def progress_bar(total: int, desc: str, progress: bool) -> tqdm:
    """A bar on stderr showing texts done and texts/s; silent when ``progress`` is off or nothing to do."""
    return tqdm(
        total=total,
        desc=desc,
        unit="texts",
        disable=not progress or total == 0,
        leave=False,
        file=sys.stderr,
        dynamic_ncols=True,
    )


# ---------------------------------------------------------------------------------------- the stages


def stage_text(
    settings: Settings, tracker: StageTracker, known: Mapping[tuple[str, str], Document]
) -> tuple[list[Document], dict[str, str]]:
    """Read and clean every document of the corpus folder, and the source key of each file.

    A file whose (name, source key) is in ``known`` (read by an earlier build of the same format and
    libraries) is not read again: its document is taken from there.
    """
    total = len([p for p in corpus_files(settings.corpus_dir) if not p.name.endswith(".meta.json")])
    tracker.start("text", total)
    sources: dict[str, str] = {}

    def reuse(path: Path) -> Document | None:
        key = sources[path.name] = source_key(path)
        return known.get((path.name, key))

    documents = load_corpus(settings.corpus_dir, on_loaded=lambda: tracker.advance("text", 1), reuse=reuse)
    tracker.finish("text", len(documents))
    return documents, sources


def stage_chunks(settings: Settings, documents: list[Document], tracker: StageTracker) -> Tables:
    """Split the documents into sentences and overlapping windows of them (chunks)."""
    tracker.start("chunks", len(documents))
    params = ChunkingParams(settings.chunk_sentences, settings.chunk_overlap)
    chunks, sentences = chunk_documents(documents, params)
    tracker.finish("chunks", len(documents))
    return Tables(documents, chunks, sentences)


def stage_bm25(out: Path, tables: Tables, tracker: StageTracker, progress: bool) -> None:
    """BM25 over all chunk texts and all sentences (rebuilt whole: about a second for ten articles)."""
    tracker.start("bm25", len(tables.chunks) + len(tables.sentences))
    LexicalIndex.build(tables.chunk_texts, progress, "chunks").save(out / "bm25-chunks")
    tracker.advance("bm25", len(tables.chunks))
    LexicalIndex.build(tables.sentence_texts, progress, "sentences").save(out / "bm25-sentences")
    tracker.finish("bm25", len(tables.chunks) + len(tables.sentences))


def embed_missing(
    embedder: Embedder,
    texts: Sequence[str],
    cache: VectorCache,
    tracker: StageTracker,
    progress: bool,
    what: str = "texts",
) -> int:
    """Embed the texts ``cache`` lacks into it; how many were embedded.

    Each distinct text is embedded once (a text that is both a chunk and a sentence, or repeated across
    documents). The texts go in order of length, so a batch holds texts of about one length and pads
    little, in batches of the model's ``passage_batch``. The cache writes a shard every few hundred
    texts, so a kill loses little; ``tracker`` may cancel between batches.
    """
    missing = sorted(
        {k: t for t in texts if (k := sha256_text(t)) not in cache}.items(),
        key=lambda item: (len(item[1]), item[0]),
    )
    if not missing:
        return 0
    batch_size = max(1, embedder.passage_batch)
    tracker.start(embedder.name, len(missing))
    with progress_bar(len(missing), f"embedding {what} with {embedder.name}", progress) as bar:
        try:
            for i in range(0, len(missing), batch_size):
                tracker.check_cancelled()
                batch = missing[i : i + batch_size]
                vectors = embedder.encode_passages([t for _, t in batch])
                for (key, _), vector in zip(batch, vectors, strict=True):
                    cache.put(key, vector)
                cache.maybe_flush()
                bar.update(len(batch))
                tracker.advance(embedder.name, len(batch))
        finally:
            cache.flush()  # whatever was embedded survives a cancel or an error
    return len(missing)
