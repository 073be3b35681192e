"""Retrieve: rank chunks for a query by fusing dense (FAISS) and lexical (BM25) rankings with RRF.

Questions written in Latin script use the English model and BM25; questions in other scripts
(Korean, Russian) are routed to the multilingual model, with BM25 kept for any Latin words in them.
"""

from __future__ import annotations

from collections.abc import Iterable
from concurrent.futures import Executor
from dataclasses import dataclass

import numpy as np

from rag.index.build import SearchIndex
from rag.index.embedders import EMBEDDERS, Embedder
from rag.index.vectors import search
from rag.text import script_of


@dataclass(frozen=True, slots=True)
class Hit:
    """A ranked chunk with the scores that placed it."""

    chunk_id: int
    score: float  # fused RRF score
    dense: float  # best cosine similarity among the dense retrievers used
    lexical: float


def dense_models_for(script: str, available: list[str]) -> list[str]:
    """Which embedders to query for a question in ``script``.

    For other scripts the English model ranks the wrong passages first, and the multilingual models,
    fused, do far better (dev set). English questions use the English model and any model trained on
    question -> passage pairs (e5): on held-out plain questions about SQuAD articles the passage holding
    the answer came first for 0.598 of them with e5 fused in, 0.536 without (SQuAD's own questions:
    0.723 vs 0.675).
    """
    english = [n for n in available if not EMBEDDERS[n].multilingual]
    multilingual = [n for n in available if EMBEDDERS[n].multilingual]
    if script == "latin":
        return (english + [n for n in multilingual if EMBEDDERS[n].question_trained]) or multilingual
    return multilingual or english


# Similarities are ranked rounded to this many decimals, ties broken by chunk id: embeddings computed on
# another CPU (or with another thread count) differ in their last bits, and without this two near-equal
# passages could swap ranks there, changing what the reader sees and so what training fits. FAISS is
# asked for a few more than needed, so that the cut falls on the rounded order too.
SCORE_DECIMALS = 5
TIE_MARGIN = 8


def _ranked(ids: np.ndarray, scores: np.ndarray) -> list[tuple[int, float]]:
    """``(chunk id, score)`` best first by the rounded score, then by id; FAISS's -1 fillers dropped."""
    keep = ids >= 0
    ids, scores = ids[keep], scores[keep].astype(np.float64)
    order = np.lexsort((ids, -np.round(scores, SCORE_DECIMALS)))
    return [(int(ids[i]), float(scores[i])) for i in order]


class Retriever:
    """Ranks the chunks of a :class:`SearchIndex` for a query."""

    def __init__(
        self,
        index: SearchIndex,
        embedders: dict[str, Embedder],
        rrf_k: int = 60,
        pool: Executor | None = None,
    ) -> None:
        self.index = index
        self.embedders = embedders
        self.rrf_k = rrf_k
        # Where the query's other models encode it while this thread runs the first: an English question
        # goes through MiniLM and e5, each a single-threaded native call that releases the GIL, so on two
        # cores the two take about as long as the slower one alone (bench: python -m bench latency).
        self.pool = pool

    def query_vectors(self, query: str) -> dict[str, np.ndarray]:
        models = dense_models_for(script_of(query), self.index.embedder_names)
        if self.pool is None or len(models) < 2:
            return {name: self.embedders[name].encode_queries([query])[0] for name in models}
        others = {name: self.pool.submit(self.embedders[name].encode_queries, [query]) for name in models[1:]}
        first = self.embedders[models[0]].encode_queries([query])[0]
        # In the models' order, as a sequential call gives them: features average over this order.
        return {name: first if name == models[0] else others[name].result()[0] for name in models}

    def chunks_of(self, doc_ids: Iterable[str]) -> np.ndarray:
        """The ids of the chunks of documents ``doc_ids``, ascending."""
        wanted = set(doc_ids)
        return np.array([c.id for c in self.index.chunks if c.doc_id in wanted], dtype=np.int64)

    def retrieve(
        self,
        query: str,
        k: int,
        vectors: dict[str, np.ndarray] | None = None,
        doc_ids: Iterable[str] | None = None,
    ) -> list[Hit]:
        """The ``k`` best chunks for ``query``; only chunks of ``doc_ids`` when it is given."""
        vectors = vectors if vectors is not None else self.query_vectors(query)
        n = len(self.index.chunks)
        allowed = self.chunks_of(doc_ids) if doc_ids is not None else None
        if allowed is not None and not len(allowed):
            return []
        depth = min(n if allowed is None else len(allowed), max(k, 50))  # fusion needs only the heads
        fused = np.zeros(n, dtype=np.float64)
        dense_best = np.full(n, -1.0, dtype=np.float64)
        for name, vector in vectors.items():
            wider = min(n if allowed is None else len(allowed), depth + TIE_MARGIN)
            scores, ids = search(self.index.chunk_vectors[name], vector[None, :], wider, allowed)
            for rank, (cid, score) in enumerate(_ranked(ids[0], scores[0])[:depth]):
                fused[cid] += 1.0 / (self.rrf_k + rank + 1)
                dense_best[cid] = max(dense_best[cid], score)
        lexical = self.index.chunk_lexicon.scores(query)
        if allowed is not None:
            outside = np.ones(n, dtype=bool)
            outside[allowed] = False
            lexical = np.where(outside, 0.0, lexical)
        if lexical.any():
            order = np.argsort(-lexical, kind="stable")[:depth]
            for rank, cid in enumerate(order):
                if lexical[cid] <= 0:
                    break
                fused[cid] += 1.0 / (self.rrf_k + rank + 1)
        top = np.argsort(-fused, kind="stable")[:k]
        if allowed is not None:  # a chunk no ranking reached still has score 0: keep to the documents
            top = top[np.isin(top, allowed)]
        return [Hit(int(c), float(fused[c]), float(dense_best[c]), float(lexical[c])) for c in top]
