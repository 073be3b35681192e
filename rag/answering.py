"""Answer: pick the supporting sentences inside the top chunks, compose a cited answer, decide answerability.

Sentences are scored, not just chunks: each candidate sentence gets its own similarity to the question
(per model, as a z-score against that model's typical similarity), a BM25 score over sentences, and a
prior from the rank of the chunk it sits in. The answer is made of the best sentence(s), verbatim, with
``[n]`` markers pointing at citations.

Whether the report answers at all is decided from several signals, because a raw cosine threshold does
not separate covered from uncovered questions here (an unrelated question naming Korea scores as high
as a real one): how similar the best sentence is, how many of the question's own content words the
report contains at all, and whether numbers in the question occur in the report.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from rag.embedding import EMBEDDERS
from rag.indexing import SearchIndex
from rag.lexical import terms
from rag.retrieval import Hit, script_of
from rag.types import Citation

_NUMBER = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")


@dataclass(frozen=True)
class Weights:
    """How the signals combine; tuned on the dev set, chosen in a flat region rather than at a peak."""

    lexical: float = 1.5  # BM25 of the sentence, scaled to the best sentence's
    chunk_prior: float = 0.5  # 1 / (1 + rank) of the best chunk holding the sentence
    second_margin: float = 0.5  # a second sentence joins the answer when within this of the first
    # Answerability: a logistic model over the best sentence's z-score, the share of the question's
    # words found in the corpus (Latin script only) and numbers absent from the corpus. Fitted by
    # logistic regression on dev.jsonl + eval/extra.jsonl, then rounded.
    z_centre: float = 0.5
    z_scale: float = 2.0
    coverage_centre: float = 0.9
    coverage_weight: float = 1.5
    unknown_number_weight: float = 3.0
    # A question in another script that names a rare thing of the report (a person, a place),
    # transliterated, found in the best sentence: strong evidence the report covers it.
    anchor_weight: float = 2.0


WEIGHTS = Weights()


@dataclass(frozen=True, slots=True)
class ScoredSentence:
    sentence_id: int
    score: float
    dense_z: float
    lexical: float


@dataclass(frozen=True, slots=True)
class Support:
    """Evidence for the answerability decision, kept for logging and evaluation."""

    dense_z: float
    coverage: float
    unknown_numbers: int
    confidence: float


def similarity_z(name: str, cosines: np.ndarray) -> np.ndarray:
    cls = EMBEDDERS[name]
    return (np.asarray(cosines, dtype=np.float64) - cls.similarity_mean) / cls.similarity_std


def score_sentences(
    index: SearchIndex,
    query: str,
    vectors: dict[str, np.ndarray],
    hits: list[Hit],
    weights: Weights = WEIGHTS,
    question_vectors: dict[str, np.ndarray] | None = None,
) -> list[ScoredSentence]:
    """Score every sentence of the ``hits`` chunks for ``query``, best first.

    For a follow-up, ``query`` carries the earlier question too; ``question_vectors`` (the follow-up's
    own words) then count as much as the whole, so the sentence answers what was asked now.
    """
    if not hits:
        return []
    prior: dict[int, float] = {}
    for rank, hit in enumerate(hits):
        for sid in index.chunks[hit.chunk_id].sentence_ids:
            prior.setdefault(sid, 1.0 / (1 + rank))
    ids = np.array(sorted(prior))
    dense = _mean_z(index, ids, vectors)
    evidence_z = dense
    if question_vectors:
        own = _mean_z(index, ids, question_vectors)
        evidence_z = np.maximum(dense, own)
        dense = (dense + own) / 2
    lexical_all = index.sentence_lexicon.scores(query)
    lexical = lexical_all[ids] / (float(lexical_all.max()) or 1.0)
    scored = [
        ScoredSentence(
            int(sid),
            float(dense[i] + weights.lexical * lexical[i] + weights.chunk_prior * prior[int(sid)]),
            float(evidence_z[i]),
            float(lexical[i]),
        )
        for i, sid in enumerate(ids)
    ]
    scored.sort(key=lambda s: -s.score)
    return scored


def _mean_z(index: SearchIndex, ids: np.ndarray, vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Per sentence of ``ids``: the mean over models of its similarity z-score to the query vectors."""
    total = np.zeros(len(ids))
    for name, vector in vectors.items():
        total += similarity_z(name, index.sentence_vectors[name][ids] @ vector)
    return total / max(1, len(vectors))


def support_for(
    index: SearchIndex,
    question: str,
    best: ScoredSentence | None,
    vocabulary: frozenset[str],
    weights: Weights = WEIGHTS,
) -> Support:
    """Combine the signals into a confidence in 0..1 that the report answers ``question``."""
    if best is None:
        return Support(0.0, 0.0, 0, 0.0)
    logit = (best.dense_z - weights.z_centre) * weights.z_scale
    question_terms = [t for t in terms(question) if not t.isdigit()]
    coverage = 1.0
    if script_of(question) == "latin":
        if question_terms:
            coverage = sum(_covered(t, vocabulary) for t in question_terms) / len(question_terms)
            logit += weights.coverage_weight * (coverage - weights.coverage_centre)
    else:
        anchors = index.sentence_lexicon.rare_terms(question) - _title_terms(index)
        if anchors & set(terms(index.sentences[best.sentence_id].text)):
            logit += weights.anchor_weight
    unknown_numbers = sum(1 for n in _NUMBER.findall(question) if not _in_corpus(index, n))
    logit -= weights.unknown_number_weight * unknown_numbers
    confidence = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, logit))))
    return Support(best.dense_z, coverage, unknown_numbers, confidence)


def _title_terms(index: SearchIndex) -> set[str]:
    """Words of the documents' titles: naming the report's own subject is no sign of coverage."""
    return {t for doc in index.documents.values() for t in terms(doc.title)}


def _covered(term: str, vocabulary: frozenset[str]) -> bool:
    """``term`` occurs in the corpus, allowing a spelling variant ("Pyongyang" / "Pyeongyang")."""
    if term in vocabulary:
        return True
    if len(term) < 6:
        return False
    return bool(difflib.get_close_matches(term, _same_initial(vocabulary, term[0]), n=1, cutoff=0.85))


@lru_cache(maxsize=256)
def _same_initial(vocabulary: frozenset[str], initial: str) -> list[str]:
    # frozenset caches its hash, so this lookup stays cheap for a large vocabulary.
    return [v for v in vocabulary if v[:1] == initial]


def _in_corpus(index: SearchIndex, number: str) -> bool:
    pattern = re.compile(rf"(?<![\d]){re.escape(number)}(?![\d])")
    return any(pattern.search(doc.text) for doc in index.documents.values())


def compose(
    index: SearchIndex,
    hits: list[Hit],
    sentences: list[ScoredSentence],
    top_k: int,
    weights: Weights = WEIGHTS,
) -> tuple[str, list[Citation]]:
    """Citations (best first, distinct supporting sentences) and the answer text with ``[n]`` markers."""
    by_chunk: dict[int, ScoredSentence] = {}
    for s in sentences:  # best first, so the first seen per chunk is its best sentence
        for cid in index.sentence_chunks[s.sentence_id]:
            by_chunk.setdefault(cid, s)
    rank = {h.chunk_id: r for r, h in enumerate(hits)}
    ranked = sorted((c for c in rank if c in by_chunk), key=lambda c: (-by_chunk[c].score, rank[c]))
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
    return _answer_text(index, sentences, citations, weights), citations


def _answer_text(
    index: SearchIndex, sentences: list[ScoredSentence], citations: list[Citation], weights: Weights
) -> str:
    """The best sentence, plus the runner-up when it scores nearly as well (answers often span two)."""
    chosen = [sentences[0]]
    if len(sentences) > 1 and sentences[1].score >= sentences[0].score - weights.second_margin:
        chosen.append(sentences[1])
    chosen.sort(key=lambda s: (index.sentences[s.sentence_id].doc_id, index.sentences[s.sentence_id].start))
    parts = []
    for s in chosen:
        span = index.sentences[s.sentence_id]
        n = next(
            (
                c.n
                for c in citations
                if c.doc_id == span.doc_id and c.start <= span.start and span.end <= c.end
            ),
            None,
        )
        if n is not None:
            parts.append(f"{span.text} [{n}]")
    return " ".join(parts)


def _sentence_text(index: SearchIndex, citation: Citation) -> str:
    return index.documents[citation.doc_id].text[citation.highlight_start : citation.highlight_end]
