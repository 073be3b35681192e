"""Retrieve: rank chunks for a query by fusing dense (FAISS) and lexical (BM25) rankings with RRF.

Questions written in Latin script use the English model and BM25; questions in other scripts
(Korean, Russian) are routed to the multilingual model, with BM25 kept for any Latin words in them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from rag.embedding import EMBEDDERS, Embedder
from rag.indexing import SearchIndex
from rag.vectors import search

_LATIN = re.compile(r"[A-Za-z]")
_OTHER_LETTER = re.compile(r"[^\W\d_A-Za-z]")


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked chunk with the scores that placed it."""

    chunk_id: int
    score: float  # fused RRF score
    dense: float  # best cosine similarity among the dense retrievers used
    lexical: float


def script_of(text: str) -> str:
    """ "latin", "other" or "mixed", by the letters of ``text``."""
    latin = len(_LATIN.findall(text))
    other = len(_OTHER_LETTER.findall(text))
    if other == 0:
        return "latin"
    if latin == 0:
        return "other"
    return "mixed" if latin >= 3 else "other"


def dense_models_for(script: str, available: list[str]) -> list[str]:
    """Which embedders to query for a question in ``script``.

    Measured on the dev set: the English model is best and fastest for English; for other scripts it
    ranks the wrong passages first, and the multilingual models, fused, do far better.
    """
    english = [n for n in available if not EMBEDDERS[n].multilingual]
    multilingual = [n for n in available if EMBEDDERS[n].multilingual]
    if script == "latin":
        return english or multilingual
    return multilingual or english


class Retriever:
    """Ranks the chunks of a :class:`SearchIndex` for a query."""

    def __init__(self, index: SearchIndex, embedders: dict[str, Embedder], rrf_k: int = 60) -> None:
        self.index = index
        self.embedders = embedders
        self.rrf_k = rrf_k

    def query_vectors(self, query: str) -> dict[str, np.ndarray]:
        models = dense_models_for(script_of(query), self.index.embedder_names)
        return {name: self.embedders[name].encode_queries([query])[0] for name in models}

    def retrieve(self, query: str, k: int, vectors: dict[str, np.ndarray] | None = None) -> list[Hit]:
        vectors = vectors if vectors is not None else self.query_vectors(query)
        n = len(self.index.chunks)
        depth = min(n, max(k, 50))  # fusion only needs the head of each ranking
        fused = np.zeros(n, dtype=np.float64)
        dense_best = np.full(n, -1.0, dtype=np.float64)
        for name, vector in vectors.items():
            scores, ids = search(self.index.chunk_vectors[name], vector[None, :], depth)
            for rank, (cid, score) in enumerate(zip(ids[0], scores[0], strict=True)):
                if cid < 0:
                    continue
                fused[cid] += 1.0 / (self.rrf_k + rank + 1)
                dense_best[cid] = max(dense_best[cid], float(score))
        lexical = self.index.chunk_lexicon.scores(query)
        if lexical.any():
            order = np.argsort(-lexical, kind="stable")[:depth]
            for rank, cid in enumerate(order):
                if lexical[cid] <= 0:
                    break
                fused[cid] += 1.0 / (self.rrf_k + rank + 1)
        top = np.argsort(-fused, kind="stable")[:k]
        return [Hit(int(c), float(fused[c]), float(dense_best[c]), float(lexical[c])) for c in top]
