"""Answer: compose the cited answer from what the reader (:mod:`rag.answer.reader`) found.

The answer is made of the report's own sentences, verbatim, each followed by an ``[n]`` marker that
points at a citation whose highlight covers exactly the quoted text:

- the best sentence, and the runner-up when the reader finds it nearly as likely (answers often span
  two sentences);
- a sentence that opens by pointing back ("It was...", "They...") brings the sentence it leans on;
- a two-part question ("Where was it held and who attended?") gets the best sentence for each part;
- where the short-answer finder (:mod:`rag.answer.short_answer`) is confident, the citation also marks the
  short answer inside the highlighted sentence.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from rag.answer.question import WH_WORDS, AnswerType, answer_type, question_form
from rag.answer.reader import Reading, next_in_section, previous_in_section
from rag.answer.retrieval import Hit
from rag.answer.short_answer import ShortAnswerFinder, offers, sentence_spans
from rag.index.build import SearchIndex
from rag.text import PRONOUN_START, is_latin
from rag.types import Citation

# The short answer is shown for every answer type, when the finder's estimate that it is right reaches
# the threshold trained for the question's type (stored in the model: precision at least 0.85 on its
# fitting data, cross-fitted; ShortAnswerFinder.find returns nothing below it). Held out, evidence
# sentence given: SQuAD shown for 0.27 of the questions, right 0.85; report-like documents 0.74, 0.98.
SHORT_ANSWER_TYPES = frozenset(AnswerType)
# A Korean or Russian question's words are not in the English sentence that answers it, so the finder
# ranks candidates by the sentence alone. Simulated on held-out SQuAD's typed questions with the question's
# words withheld, the short answers shown (confidence >= SHORT_ANSWER_THRESHOLD) stay right for dates (0.97,
# 72% shown) and numbers (0.88, 42%), but not for people (0.63) or places.
FOREIGN_SHORT_ANSWER_TYPES = frozenset({AnswerType.DATE, AnswerType.NUMBER})
SHORT_ANSWER_THRESHOLD = 0.7  # for Korean and Russian questions, above the trained thresholds

_SECOND_PART = re.compile(
    rf"(?:,\s*|\s+)(?:and|or|;)\s+(?=(?:{'|'.join(WH_WORDS)}|in what|in which)\b)"
    r"|[?;]\s+(?=\S)",
    re.IGNORECASE,
)


def question_parts(question: str) -> list[str]:
    """The parts of a two-part question ("Where was it held and who attended?"), else ``[question]``."""
    match = _SECOND_PART.search(question)
    if match is None:
        return [question]
    first, second = question[: match.start()].strip(), question[match.end() :].strip()
    if len(first.split()) < 2 or len(second.split()) < 2:
        return [question]
    # After a question mark only another question is a part: "Who led it? Please answer briefly." or
    # "...? Thanks, I am curious." asks one thing (a second reading would cost a second retrieval).
    if not (second.endswith("?") or second.split()[0].lower().strip(",") in WH_WORDS):
        return [question]
    return [first.rstrip("?") + "?", second]


@dataclass(frozen=True, slots=True)
class _Unit:
    """A stretch of consecutive sentences quoted together, answering ``question``."""

    first: int
    last: int
    main: int  # the sentence the reader chose; ``first`` may be the one it leans on
    question: str


def _leaning(index: SearchIndex, sid: int) -> int:
    """The sentence ``sid`` leans on when it opens by pointing back, else ``sid`` itself."""
    if not PRONOUN_START.match(index.sentences[sid].text):
        return sid
    before = previous_in_section(index, sid)
    return sid if before is None else before


def _units(
    index: SearchIndex, readings: list[tuple[str, Reading]], second_ratio: float, main_through: int | None
) -> list[_Unit]:
    chosen: list[tuple[int, str]] = []
    main_question, main = readings[0]
    chosen.append((main.sentence_ids[0], main_question))
    if len(main.sentence_ids) > 1 and main.probabilities[1] >= second_ratio * main.probabilities[0]:
        chosen.append((main.sentence_ids[1], main_question))
    for part_question, reading in readings[1:]:
        chosen.append((reading.sentence_ids[0], part_question))
    units: list[_Unit] = []
    covered: set[int] = set()
    for n, (sid, question) in enumerate(chosen):
        if sid in covered:
            continue
        first = _leaning(index, sid)
        # The main sentence may run on to the sentence that settles it ("...moved that X. ... The motion
        # was defeated."), which is then quoted with it, in reading order.
        last = max(sid, main_through) if n == 0 and main_through is not None else sid
        units.append(_Unit(first, last, sid, question))
        covered.update(range(first, last + 1))
    return units


def _chunk_for(index: SearchIndex, first: int, last: int, preference: dict[int, int]) -> int | None:
    """A chunk holding sentences ``first..last``: the best-ranked retrieved one, else any."""
    holding = set(index.sentence_chunks[first])
    for sid in range(first + 1, last + 1):
        holding &= set(index.sentence_chunks[sid])
    if not holding:
        return None
    return min(holding, key=lambda c: (preference.get(c, math.inf), c))


def _citation(
    index: SearchIndex,
    n: int,
    chunk_id: int,
    first: int,
    last: int,
    score: float,
    question: str | None,
    finder: ShortAnswerFinder | None = None,
    main: int | None = None,
) -> Citation:
    chunk = index.chunks[chunk_id]
    start, end = index.sentences[first].start, index.sentences[last].end
    short = None
    latin = question is None or is_latin(question)
    types = SHORT_ANSWER_TYPES if latin else FOREIGN_SHORT_ANSWER_TYPES
    if question is not None and finder is not None and answer_type(question) in types:
        # The sentence the reader chose first, then the others quoted with it (the one it leans on, the
        # one that completes it): the answer may sit in any of them.
        order = [main] + [sid for sid in range(first, last + 1) if sid != main] if main is not None else []
        order = order or list(range(last, first - 1, -1))
        # Those holding a span of the type asked for first ("12 billion roubles" for a budget, not the
        # terminal's "400,000 containers" in the sentence between).
        form = question_form(question)
        order.sort(key=lambda sid: not offers(form, sentence_spans(index.sentences[sid].text)))
        for sid in order:
            sentence = index.sentences[sid]
            found = finder.find(question, sentence.text)
            # The finder applies its own threshold per answer type; Korean and Russian questions, whose
            # words the English sentence lacks, need more.
            if found is not None and (latin or found.confidence >= SHORT_ANSWER_THRESHOLD):
                short = (sentence.start + found.start, sentence.start + found.end, found.text)
                break
    return Citation(
        n=n,
        doc_id=chunk.doc_id,
        title=index.documents[chunk.doc_id].title,
        section=chunk.section,
        start=chunk.start,
        end=chunk.end,
        text=chunk.text,
        highlight_start=start,
        highlight_end=end,
        score=score,
        short_answer=short,
        page=index.documents[chunk.doc_id].page_at(start),
    )


def compose(
    index: SearchIndex,
    hits: list[Hit],
    readings: list[tuple[str, Reading]],
    top_k: int,
    second_ratio: float,
    short_answers: ShortAnswerFinder | None = None,
    main_through: int | None = None,
) -> tuple[str, list[Citation]]:
    """Citations (the answer's first, then the other retrieved passages) and the answer text.

    ``readings`` holds the reader's view of the whole question first, then of each further part of a
    two-part question. ``short_answers`` marks the short answer in the answer's citations (None: none).
    ``main_through``: a later sentence of the same paragraph that the best sentence's quote runs on to.
    """
    main = readings[0][1]
    if not main.sentence_ids:
        return "", []
    rank = {h.chunk_id: r for r, h in enumerate(hits)}
    score_of = dict(zip(main.sentence_ids, main.scores, strict=True))
    for _, reading in readings[1:]:
        for sid, score in zip(reading.sentence_ids, reading.scores, strict=True):
            score_of[sid] = max(score_of.get(sid, -math.inf), score)

    citations: list[Citation] = []
    used_chunks: set[int] = set()
    used_sentences: set[int] = set()
    markers: list[tuple[int, int, int]] = []  # (doc order key: sentence id, first, citation n)
    for unit in _units(index, readings, second_ratio, main_through):
        chunk_id = _chunk_for(index, unit.first, unit.last, rank)
        first = unit.first
        if chunk_id is None:  # cannot happen with overlapping windows; quote the sentence alone then
            first, chunk_id = unit.main, _chunk_for(index, unit.main, unit.main, rank)
        if chunk_id is None or len(citations) == top_k:
            continue
        n = len(citations) + 1
        citations.append(
            _citation(
                index,
                n,
                chunk_id,
                first,
                unit.last,
                score_of[unit.main],
                unit.question,
                short_answers,
                unit.main,
            )
        )
        used_chunks.add(chunk_id)
        used_sentences.update(range(first, unit.last + 1))
        markers.append((first, unit.last, n))

    # The other retrieved passages in retrieval order (the reader only chose what the answer quotes),
    # each with its best sentence highlighted, one citation per sentence.
    best_in_chunk: dict[int, int] = {}
    for sid in main.sentence_ids:  # best first, so the first seen per chunk is its best sentence
        for cid in index.sentence_chunks[sid]:
            if cid in rank:
                best_in_chunk.setdefault(cid, sid)
    for cid in sorted(best_in_chunk, key=lambda c: rank[c]):
        if len(citations) == top_k:
            break
        sid = best_in_chunk[cid]
        if cid in used_chunks or sid in used_sentences:
            continue
        used_chunks.add(cid)
        used_sentences.add(sid)
        citations.append(_citation(index, len(citations) + 1, cid, sid, sid, score_of[sid], None))

    parts = []
    for first, last, n in sorted(markers, key=lambda m: _position(index, m[0])):
        text = " ".join(index.sentences[sid].text for sid in range(first, last + 1))
        parts.append(f"{text} [{n}]")
    return " ".join(parts), citations


def passages(index: SearchIndex, hits: list[Hit], top_k: int) -> list[Citation]:
    """The retrieved chunks as citations, in retrieval order, no sentence chosen (each whole chunk
    highlighted): for a question the reader cannot read yet (its script's models are still building)."""
    citations: list[Citation] = []
    for hit in hits[:top_k]:
        ids = index.chunks[hit.chunk_id].sentence_ids
        citations.append(_citation(index, len(citations) + 1, hit.chunk_id, ids[0], ids[-1], hit.score, None))
    return citations


def _position(index: SearchIndex, sid: int) -> tuple[str, int]:
    span = index.sentences[sid]
    return span.doc_id, span.start


# ------------------------------------------------------------------------------------ overviews

LEAD_SENTENCES = 3  # an overview quotes at most this many opening sentences of a document
OVERVIEW_DOCUMENTS = 3  # and the leads of at most this many documents


def lead(index: SearchIndex, doc_id: str, max_sentences: int = LEAD_SENTENCES) -> list[int]:
    """The opening sentences of ``doc_id``: its first paragraph, at most ``max_sentences`` of it.

    A document's opening says what it is about (a report's summary paragraph, an article's lead), so it
    answers "What is this about?", which no single sentence resembles.
    """
    first = next((i for i, s in enumerate(index.sentences) if s.doc_id == doc_id), None)
    if first is None:
        return []
    text = index.documents[doc_id].text
    chosen = [first]
    while len(chosen) < max_sentences:
        following = next_in_section(index, chosen[-1])
        if following is None:
            break  # the section ends here
        if "\n\n" in text[index.sentences[chosen[-1]].end : index.sentences[following].start]:
            break  # the first paragraph ends here
        chosen.append(following)
    return chosen


def overview(index: SearchIndex, doc_ids: list[str], top_k: int) -> tuple[str, list[Citation]]:
    """Each document's lead, cited: the answer to an overview question about ``doc_ids``."""
    parts: list[str] = []
    citations: list[Citation] = []
    for doc_id in doc_ids[: min(top_k, OVERVIEW_DOCUMENTS)]:
        sentences = lead(index, doc_id)
        while sentences:
            chunk_id = _chunk_for(index, sentences[0], sentences[-1], {})
            if chunk_id is not None:
                break
            sentences = sentences[:-1]  # a lead longer than a chunk: quote what one chunk holds
        else:
            continue
        n = len(citations) + 1
        citations.append(_citation(index, n, chunk_id, sentences[0], sentences[-1], 0.0, None))
        text = " ".join(index.sentences[sid].text for sid in sentences)
        parts.append(f"{text} [{n}]")
    return " ".join(parts), citations
