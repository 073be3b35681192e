"""Build folders: the file store's form of the index, written aside, published atomically, and loaded.

Layout under ``index_dir``::

    CURRENT                 name of the build that serves (replaced atomically)
    builds/<build-id>/      manifest.json, documents.json, chunks.json, sentences.json,
                            <model>.chunks.faiss, <model>.sentences.npy, bm25-chunks/, bm25-sentences/
    builds/.tmp-*           a build (or a stage of one) in progress; renamed into place only when complete
    vectors/<model>-<hash>/ every vector each model made, by text sha256, in shards (rag.index.vector_cache)

Every build holds the files of every model the settings name; its manifest's ``coverage`` says which
documents each model does not serve yet (``missing``) and which it serves with chunk vectors derived from
their sentences until their chunks are embedded (``derived``). A later stage of the same corpus
hard-links the published build, rewrites the files of the model it advanced, and is published in turn.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import logging
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from rag.hashing import sha256_file
from rag.index.embedders import Embedder, embedder_fingerprint
from rag.index.fingerprint import FORMAT_VERSION, library_versions
from rag.index.lexical import LexicalIndex
from rag.index.search_index import (
    Coverage,
    IndexUnavailable,
    ModelVectors,
    SearchIndex,
    Tables,
    assemble,
    model_vectors,
)
from rag.index.vector_cache import VectorCache
from rag.index.vectors import load_vector_index, save_vector_index
from rag.types import Chunk, Document, Section, Span

log = logging.getLogger(__name__)


@contextlib.contextmanager
def build_lock(index_dir: Path) -> Iterator[None]:
    """One build at a time per index folder, across processes (server workers, CLI)."""
    index_dir.mkdir(parents=True, exist_ok=True)
    with (index_dir / ".lock").open("w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


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


def coverage_of(manifest: dict[str, Any] | None) -> dict[str, Coverage]:
    """Each model's coverage as a build's manifest records it."""
    recorded = (manifest or {}).get("coverage")
    if not isinstance(recorded, dict):
        return {}
    return {
        name: Coverage(tuple(c.get("missing", ())), tuple(c.get("derived", ())))
        for name, c in recorded.items()
        if isinstance(c, dict)
    }


def unfinished(manifest: dict[str, Any] | None) -> list[str]:
    """The models of a build with work left: documents they do not serve, or serve with derived chunks."""
    return [name for name, c in coverage_of(manifest).items() if not c.complete]


# ---------------------------------------------------------------------------------------- files


def _write_json(path: Path, data: Any) -> None:
    path.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")


def write_tables(out: Path, tables: Tables) -> None:
    _write_json(out / "documents.json", [_document_record(d) for d in tables.documents])
    _write_json(out / "chunks.json", [asdict(c) for c in tables.chunks])
    _write_json(out / "sentences.json", [asdict(s) for s in tables.sentences])


def _document_record(doc: Document) -> dict[str, Any]:
    """A document as a build folder keeps it (its disk format; the API shows documents otherwise)."""
    record: dict[str, Any] = {
        "id": doc.id,
        "title": doc.title,
        "source": doc.source,
        "metadata": doc.metadata,
        "text": doc.text,
        "sections": [asdict(s) for s in doc.sections],
        "path": doc.path,
    }
    if doc.pages:
        record["pages"] = list(doc.pages)
    return record


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


def model_files(name: str) -> tuple[str, str]:
    return f"{name}.chunks.faiss", f"{name}.sentences.npy"


def write_model(out: Path, name: str, tables: Tables, cache: VectorCache, derive_chunks: bool) -> Coverage:
    """Write model ``name``'s files for ``tables`` from what ``cache`` holds; whom they cover."""
    vectors = model_vectors(tables, cache.vectors, cache.dim, derive_chunks)
    chunks_file, sentences_file = model_files(name)
    for file in (chunks_file, sentences_file):  # a hard link of the build it extends: never written through
        (out / file).unlink(missing_ok=True)
    save_vector_index(vectors.chunks, out / chunks_file)
    np.save(out / sentences_file, vectors.sentences)
    return vectors.coverage


def seed_from_legacy(cache: VectorCache, build_dir: Path | None, embedder: Embedder) -> None:
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


def readable_sources(previous: Path | None) -> dict[tuple[str, str], Document]:
    """The documents of ``previous`` by (file name, source key), when it was made as a build now would
    be (same format version and library versions: another PDF library may read a file otherwise)."""
    manifest = read_manifest(previous)
    if previous is None or manifest is None:
        return {}
    if manifest.get("format_version") != FORMAT_VERSION or manifest.get("libraries") != library_versions():
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


def _fsync_tree(path: Path) -> None:
    for file in path.rglob("*"):
        if file.is_file():
            with file.open("rb") as fh:
                os.fsync(fh.fileno())


# ---------------------------------------------------------------------------------------- publishing


def new_tmp(index_dir: Path) -> Path:
    builds = index_dir / "builds"
    builds.mkdir(parents=True, exist_ok=True)
    tmp = builds / f".tmp-{uuid.uuid4().hex[:12]}"
    tmp.mkdir()
    return tmp


def link_build(source: Path, tmp: Path) -> None:
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


def publish(
    index_dir: Path,
    tmp: Path,
    fingerprint: dict[str, Any],
    coverage: dict[str, Coverage],
    base: Path | None,
    sources: dict[str, str] | None = None,
    corpus: list[str] | None = None,
) -> Path:
    """Write the manifest of ``tmp`` (each model's ``coverage``), make it durable, rename it into
    ``builds/`` and repoint ``CURRENT`` at it. ``base``: the build ``tmp`` extends (same corpus)."""
    previous = (read_manifest(base) or {}) if base is not None else {}
    doc_ids = [d["id"] for d in json.loads((tmp / "documents.json").read_text(encoding="utf-8"))]
    counts = {
        "documents": len(doc_ids),
        "chunks": len(json.loads((tmp / "chunks.json").read_text(encoding="utf-8"))),
        "sentences": len(json.loads((tmp / "sentences.json").read_text(encoding="utf-8"))),
    }
    build_id = time.strftime("%Y%m%dT%H%M%S") + "-" + fingerprint["corpus_hash"][:8] + "-" + tmp.name[5:11]
    pending: dict[str, list[str]] = {}
    for name, covered in coverage.items():
        for doc_id in covered.missing:
            pending.setdefault(doc_id, []).append(name)
    _write_json(
        tmp / "manifest.json",
        {
            **fingerprint,
            "coverage": {
                n: {"missing": list(c.missing), "derived": list(c.derived)} for n, c in coverage.items()
            },
            "pending": pending,
            "documents": doc_ids,
            "build_id": build_id,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            # A later stage keeps the list of the build it extends (the folder may have changed since).
            "corpus_files": previous.get("corpus_files") if base is not None else corpus,
            "libraries": library_versions(),
            # Each document file's source key (its bytes and metadata): a later build reuses the document
            # of an unchanged file instead of reading it again.
            "sources": previous.get("sources", {}) if base is not None else sources,
            "counts": counts,
            "files": file_digests(tmp, previous.get("files", {})),
        },
    )
    _fsync_tree(tmp)
    final = index_dir / "builds" / build_id
    os.rename(tmp, final)
    _point_current(index_dir, build_id)
    log.info("published build %s (%s)", build_id, ", ".join(
        f"{n}: {f'{len(c.missing)} document(s) to come' if c.missing else 'every document'}"
        for n, c in coverage.items()))
    return final


def file_digests(
    build_dir: Path, known: dict[str, dict[str, Any]] | None = None
) -> dict[str, dict[str, Any]]:
    """Size and sha256 of every file of a build, recorded in its manifest and checked when loading.

    ``known``: the digests of the build whose files were hard-linked here (not hashed again, as long as
    the file is that build's: same inode)."""
    known = known or {}
    digests = {}
    for p in sorted(build_dir.rglob("*")):
        if not p.is_file() or p.name == "manifest.json":
            continue
        rel = str(p.relative_to(build_dir))
        stat = p.stat()
        seen = known.get(rel)
        linked = stat.st_nlink > 1  # a hard link of the build it extends, not a file written anew
        if isinstance(seen, dict) and seen.get("size") == stat.st_size and linked and "sha256" in seen:
            digests[rel] = {"size": stat.st_size, "sha256": seen["sha256"]}
        else:
            digests[rel] = {"size": stat.st_size, "sha256": sha256_file(p)}
    return digests


def damage(build_dir: Path) -> str | None:
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


def _point_current(index_dir: Path, build_id: str) -> None:
    tmp = index_dir / f".CURRENT.{uuid.uuid4().hex[:8]}"
    tmp.write_text(build_id + "\n", encoding="utf-8")
    with tmp.open("rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, index_dir / "CURRENT")


def remove_abandoned_temp_dirs(index_dir: Path) -> None:
    # Called under the build lock: any temporary folder left now belongs to a build that died.
    for path in (index_dir / "builds").glob(".tmp-*"):
        log.info("removing the remains of an interrupted build: %s", path.name)
        shutil.rmtree(path, ignore_errors=True)


def remove_old_builds(index_dir: Path, keep: set[str]) -> None:
    for path in (index_dir / "builds").iterdir():
        if path.is_dir() and not path.name.startswith(".") and path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


# ---------------------------------------------------------------------------------------- loading


def load_build(index_dir: Path, build_dir: Path | None = None) -> SearchIndex:
    """Load the current build completely, or raise :class:`IndexUnavailable` saying what is wrong."""
    build_dir = build_dir or current_build_dir(index_dir)
    if build_dir is None:
        raise IndexUnavailable(f"no built index in {index_dir}")
    manifest = read_manifest(build_dir)
    if manifest is None:
        raise IndexUnavailable(f"{build_dir / 'manifest.json'} is missing or not valid JSON")
    problem = damage(build_dir)
    if problem is not None:
        raise IndexUnavailable(problem)
    try:
        tables = read_tables(build_dir)
        coverage = coverage_of(manifest)
        models = {}
        for name in manifest["embedders"]:
            covered = coverage.get(name, Coverage())
            absent = set(covered.missing)
            chunks_file, sentences_file = model_files(name)
            chunks = load_vector_index(build_dir / chunks_file)
            sentences = np.load(build_dir / sentences_file, mmap_mode="r")
            served = sum(1 for c in tables.chunks if c.doc_id not in absent)
            if chunks.ntotal != served or len(sentences) != len(tables.sentences):
                raise IndexUnavailable(f"{build_dir}: vectors of {name} do not match the chunk table")
            models[name] = ModelVectors(sentences, chunks, covered)
        chunk_lexicon = LexicalIndex.load(build_dir / "bm25-chunks", len(tables.chunks))
        sentence_lexicon = LexicalIndex.load(build_dir / "bm25-sentences", len(tables.sentences))
    except IndexUnavailable:
        raise
    except Exception as exc:  # any parse or FAISS error means the build cannot serve
        raise IndexUnavailable(f"{build_dir}: cannot load index: {exc}") from exc
    return assemble(str(manifest["build_id"]), tables, models, chunk_lexicon, sentence_lexicon)
