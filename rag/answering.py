"""Answer: pick the supporting sentences inside the top chunks, compose a cited answer, decide answerability.

Sentences are scored, not just chunks: each candidate sentence gets its own cosine similarity to the
question, a BM25 score over sentences and the rank of the chunk it sits in. The answer is made of the
best sentence(s), verbatim, with ``[n]`` markers pointing at citations.

Whether the report answers at all is decided from several signals, because a raw cosine threshold does
not separate covered from uncovered questions here (an unrelated question naming Korea scores as high
as a real one): how similar the best sentence is, how many of the question's own content words the
report contains at all, and whether numbers in the question occur in the report.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import numpy as np

from rag.indexing import SearchIndex
from rag.lexical import terms
from rag.retrieval import Hit, script_of
from rag.types import Citation

_NUMBER = re.compile(r"\b\d[\d,.]*\b")

# Similarity scales differ by model: all-MiniLM spreads cosines widely, e5 packs them into 0.7-0.9.
_DENSE_SCALE = {"minilm": (0.35, 0.12), "minilm-onnx": (0.35, 0.12), "e5": (0.82, 0.03)}


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    sentence_id: int
    score: float
    dense: float
    lexical: float


@dataclass(frozen=True, slots=True)
class Support:
    """Evidence for the answerability decision, kept for logging and evaluation."""

    dense: float
    coverage: float
    unknown_numbers: int
    confidence: float


def score_sentences(
    index: SearchIndex, query: str, vectors: dict[str, np.ndarray], hits: list[Hit]
) -> list[ScoredSentence]:
    """Score every sentence of the ``hits`` chunks for ``query``, best first."""
    if not hits:
        return []
    chunk_score = {h.chunk_id: h.score for h in hits}
    top_chunk = max(chunk_score.values()) or 1.0
    candidates = sorted({sid for h in hits for sid in index.chunks[h.chunk_id].sentence_ids})
    ids = np.array(candidates)
    dense = np.zeros(len(ids))
    for name, vector in vectors.items():
        dense += np.asarray(index.sentence_vectors[name][ids] @ vector, dtype=np.float64)
    dense /= max(1, len(vectors))
    lexical_all = index.sentence_lexicon.scores(query)
    lexical = lexical_all[ids] / (float(lexical_all.max()) or 1.0)
    scored = []
    for i, sid in enumerate(candidates):
        rank = max(chunk_score.get(c, 0.0) for c in index.sentence_chunks[sid]) / top_chunk
        total = float(dense[i]) + 0.25 * float(lexical[i]) + 0.10 * rank
        scored.append(ScoredSentence(sid, total, float(dense[i]), float(lexical[i])))
    scored.sort(key=lambda s: -s.score)
    return scored


def support_for(
    index: SearchIndex, question: str, best: ScoredSentence | None, models: list[str], vocabulary: frozenset[str]
) -> Support:
    """Combine the signals into a confidence in 0..1 that the report answers ``question``."""
    if best is None:
        return Support(0.0, 0.0, 0, 0.0)
    centre = np.mean([_DENSE_SCALE.get(m, (0.35, 0.12))[0] for m in models])
    spread = np.mean([_DENSE_SCALE.get(m, (0.35, 0.12))[1] for m in models])
    z = (best.dense - centre) / spread
    question_terms = [t for t in terms(question) if not t.isdigit()]
    latin = script_of(question) == "latin"
    coverage = (
        sum(t in vocabulary for t in question_terms) / len(question_terms) if latin and question_terms else 1.0
    )
    text = " ".join(d.text for d in index.documents.values())
    unknown_numbers = sum(1 for n in _NUMBER.findall(question) if n not in text)
    if latin:
        z += 4.0 * (coverage - 0.6)
    z -= 3.0 * unknown_numbers
    confidence = 1.0 / (1.0 + math.exp(-z))
    return Support(best.dense, coverage, unknown_numbers, confidence)


def compose(
    index: SearchIndex, hits: list[Hit], sentences: list[ScoredSentence], top_k: int
) -> tuple[str, list[Citation]]:
    """Citations (best first, distinct supporting sentences) and the answer text with ``[n]`` markers."""
    by_chunk: dict[int, ScoredSentence] = {}
    for s in sentences:  # best first, so the first seen per chunk is its best sentence
        for cid in index.sentence_chunks[s.sentence_id]:
            by_chunk.setdefault(cid, s)
    fused = {h.chunk_id: h.score for h in hits}
    top_fused = max(fused.values()) if fused else 1.0
    ranked = sorted(
        (c for c in fused if c in by_chunk),
        key=lambda c: -(by_chunk[c].score + 0.2 * fused[c] / top_fused),
    )
    citations: list[Citation] = []
    used_sentences: set[int] = set()
    for cid in ranked:
        best = by_chunk[cid]
        if best.sentence_id in used_sentences:
            continue
        used_sentences.add(best.sentence_id)
        chunk = index.chunks[cid]
        sentence = index.sentences[best.sentence_id]
        citations.append(
            Citation(
                n=len(citations) + 1,
                doc_id=chunk.doc_id,
                title=index.documents[chunk.doc_id].title,
                section=chunk.section,
                start=chunk.start,
                end=chunk.end,
                text=chunk.text,
                highlight_start=sentence.start,
                highlight_end=sentence.end,
                score=best.score,
            )
        )
        if len(citations) == top_k:
            break
    if not citations:
        return "", []
    parts = [f"{_sentence_text(index, citations[0])} [1]"]
    # A second sentence joins when it scores nearly as well: questions often span two sentences.
    if len(citations) > 1 and citations[1].score >= citations[0].score - 0.05:
        parts.append(f"{_sentence_text(index, citations[1])} [2]")
    return " ".join(parts), citations


def _sentence_text(index: SearchIndex, citation: Citation) -> str:
    return index.documents[citation.doc_id].text[citation.highlight_start : citation.highlight_end]
