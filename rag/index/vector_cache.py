"""The embedding cache: every vector a model made, by the sha256 of the text, in shards written as it goes.

Layout under ``index_dir``::

    vectors/<model>-<encoder-hash>/<shard>.npz     keys (sha256 hex) and float32 vectors

One folder per model *and* encoder (see :func:`rag.index.embedders.embedder_fingerprint`), so vectors made by
another release of a model are never mixed in. A build writes a shard after each group of batches
(:data:`SHARD_TEXTS` texts or :data:`SHARD_SECONDS` seconds, whichever comes first), atomically (a
temporary file, fsync, rename): a build killed mid-stage loses at most the group in flight, and the next
build reads every shard and embeds only what is missing. When a stage ends the shards are compacted into
one that holds the vectors the build uses (so removed documents do not pile up).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
import uuid
import zipfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from rag.index.embedders import Embedder, embedder_fingerprint

log = logging.getLogger(__name__)

SHARD_TEXTS = 256  # a shard after this many new vectors...
SHARD_SECONDS = 10.0  # ...or after this long, whichever comes first: a kill loses at most that much


class VectorCache:
    """Vectors of one model and encoder by text hash, loaded from and appended to a folder of shards."""

    def __init__(self, root: Path, model: str, fingerprint: dict[str, str], dim: int) -> None:
        digest = hashlib.sha256(json.dumps(fingerprint, sort_keys=True).encode()).hexdigest()[:12]
        self.folder = root / f"{model}-{digest}"
        self.dim = dim
        self.vectors: dict[str, np.ndarray] = {}
        self._pending: dict[str, np.ndarray] = {}
        self._last_flush = time.monotonic()

    def load(self) -> VectorCache:
        """Read every sound shard; a damaged one (cut short by a crash of the disk) is skipped and logged."""
        if self.folder.is_dir():
            for shard in sorted(self.folder.glob("*.npz")):
                try:
                    with np.load(shard) as data:
                        keys, vectors = data["keys"], data["vectors"]
                    if vectors.ndim != 2 or vectors.shape[1] != self.dim or len(keys) != len(vectors):
                        raise ValueError(f"shape {vectors.shape} for {len(keys)} keys")
                except (OSError, KeyError, ValueError, EOFError, zipfile.BadZipFile) as exc:
                    log.warning("skipping unreadable embedding cache shard %s: %s", shard, exc)
                    continue
                self.vectors.update(zip((str(k) for k in keys), vectors, strict=True))
        return self

    def __contains__(self, key: str) -> bool:
        return key in self.vectors

    def __len__(self) -> int:
        return len(self.vectors)

    def get(self, key: str) -> np.ndarray:
        return self.vectors[key]

    def seed(self, keys: Iterable[str], vectors: np.ndarray) -> int:
        """Add vectors from elsewhere (a build of an earlier release); written with the next flush."""
        added = 0
        for key, vector in zip(keys, vectors, strict=True):
            if key not in self.vectors:
                self.put(str(key), vector)
                added += 1
        return added

    def put(self, key: str, vector: np.ndarray) -> None:
        own = np.array(vector, dtype=np.float32)  # own copy: frees the batch array it came from
        self.vectors[key] = own
        self._pending[key] = own

    def maybe_flush(self) -> None:
        """Write the vectors made since the last shard when enough of them, or enough time, has gone by."""
        if len(self._pending) >= SHARD_TEXTS or (
            self._pending and time.monotonic() - self._last_flush >= SHARD_SECONDS
        ):
            self.flush()

    def flush(self) -> None:
        if not self._pending:
            return
        keys = sorted(self._pending)
        self._write(f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}.npz", keys, self._pending)
        self._pending = {}
        self._last_flush = time.monotonic()

    def compact(self, keep: set[str]) -> None:
        """Replace the shards by one holding the vectors of ``keep`` (those the finished build uses)."""
        self.flush()
        old = sorted(self.folder.glob("*.npz")) if self.folder.is_dir() else []
        keys = sorted(k for k in keep if k in self.vectors)
        if len(old) == 1 and len(keys) == len(self.vectors):
            return  # already one shard of exactly these
        name = f"{time.time_ns():020d}-{uuid.uuid4().hex[:6]}.npz"
        if keys:
            self._write(name, keys, self.vectors)
        for path in old:  # after the new shard is durable: a crash here leaves duplicates, never a gap
            if path.name != name:
                path.unlink(missing_ok=True)
        self.vectors = {k: self.vectors[k] for k in keys}

    def _write(self, name: str, keys: list[str], vectors: dict[str, np.ndarray]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".{name}.tmp"
        with tmp.open("wb") as fh:
            np.savez(fh, keys=np.array(keys), vectors=np.stack([vectors[k] for k in keys]))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, self.folder / name)
        dir_fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)


def open_cache(index_dir: Path, embedder: Embedder) -> VectorCache:
    """The cache of ``embedder``'s vectors in the index folder ``index_dir``, loaded."""
    fingerprint = embedder_fingerprint(embedder)
    return VectorCache(index_dir / "vectors", embedder.name, fingerprint, embedder.dim).load()
