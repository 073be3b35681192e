"""Vector index: FAISS inner-product search over unit vectors, with the index type chosen by size."""

from __future__ import annotations

from pathlib import Path

import faiss
import numpy as np

# Exact search stays fast enough up to here on 2 cores; beyond it an approximate index is used.
EXACT_SEARCH_MAX = 200_000


def build_vector_index(vectors: np.ndarray) -> faiss.Index:
    """An inner-product index holding ``vectors`` (rows must be L2-normalised float32)."""
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    dim = vectors.shape[1]
    index: faiss.Index
    if len(vectors) <= EXACT_SEARCH_MAX:
        index = faiss.IndexFlatIP(dim)
    else:
        index = faiss.IndexHNSWFlat(dim, 32, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = 80
        index.hnsw.efSearch = 64
    index.add(vectors)
    return index


def save_vector_index(index: faiss.Index, path: Path) -> None:
    faiss.write_index(index, str(path))


def load_vector_index(path: Path, mmap: bool = True) -> faiss.Index:
    """Read an index; memory-mapped where FAISS allows, so worker processes share the pages."""
    if mmap:
        try:
            return faiss.read_index(str(path), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError:
            pass
    return faiss.read_index(str(path))


def search(index: faiss.Index, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores and ids of the ``k`` nearest rows for each query (ids are -1 past the index size)."""
    k = max(1, min(k, index.ntotal))
    scores, ids = index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
    return scores, ids
