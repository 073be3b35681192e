"""Chunk: split documents into sentences, then into overlapping sentence windows within a section.

Every sentence and chunk carries document offsets such that ``doc.text[start:end] == text``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

from rag.ingest.loading import heading_spans
from rag.types import Chunk, Document, Section, Span

# Bumped when the sentence splitter cuts otherwise (2: titles such as "Engr." and "Cllr." end no sentence),
# so that indexes built with the earlier cuts are rebuilt (rag.index.build's fingerprint holds it).
SPLITTER_VERSION = 2

# A sentence ends at . ! ? (or their CJK forms), optionally followed by closing quotes/brackets,
# then white space. Initials ("A.P.") and common abbreviations do not end a sentence.
_BOUNDARY = re.compile(r"[.!?。！？][\"'”’)\]]*(?=\s+)")
_ABBREVIATIONS = frozenset(
    [
        "mr",
        "mrs",
        "ms",
        "dr",
        "prof",
        "st",
        "jr",
        "sr",
        "vs",
        "etc",
        "e.g",
        "i.e",
        "no",
        "gen",
        "col",
        "lt",
        "sgt",
        "gov",
        "sen",
        "rep",
        "pres",
        "jan",
        "feb",
        "mar",
        "apr",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "inc",
        "ltd",
        "co",
        "corp",
        # titles before a name in reports and minutes: "Engr. Teresita Villanueva", "Cllr. Nally"
        "engr",
        "eng",
        "cllr",
        "cr",
        "hon",
        "rev",
        "fr",
        "capt",
        "maj",
        "cdr",
        "adm",
        "supt",
        "insp",
        "mme",
        "messrs",
        "atty",
        "approx",
        "dept",
        "est",
        "fig",
        "vol",
    ]
)
_INITIALS = re.compile(r"(?:\b[A-Z]\.)+$")


@dataclass(frozen=True, slots=True)
class ChunkingParams:
    """How sentences are grouped into chunks."""

    sentences: int = 3
    overlap: int = 1

    def __post_init__(self) -> None:
        if self.sentences < 1 or not 0 <= self.overlap < self.sentences:
            raise ValueError("need sentences >= 1 and 0 <= overlap < sentences")


def split_sentences(text: str, start: int = 0, end: int | None = None) -> list[tuple[int, int]]:
    """Sentence spans of ``text[start:end]`` as absolute ``(start, end)`` offsets, white space trimmed."""
    end = len(text) if end is None else end
    spans: list[tuple[int, int]] = []
    for para_start, para_end in _paragraphs(text, start, end):
        cursor = para_start
        for match in _BOUNDARY.finditer(text, para_start, para_end):
            if _is_abbreviation(text, cursor, match.start()):
                continue
            spans.append((cursor, match.end()))
            cursor = match.end()
        spans.append((cursor, para_end))
    return [t for t in (_trim(text, s, e) for s, e in spans) if t is not None]


def sentences_of(doc: Document) -> list[Span]:
    """All sentences of ``doc`` outside heading lines, in order."""
    headings = heading_spans(doc)
    spans: list[Span] = []
    for section in doc.sections:
        for s, e in _minus(section.start, section.end, headings):
            for a, b in split_sentences(doc.text, s, e):
                spans.append(Span(doc.id, section.title, a, b, doc.text[a:b]))
    return spans


def chunk_documents(
    documents: Iterable[Document], params: ChunkingParams | None = None
) -> tuple[list[Chunk], list[Span]]:
    """Chunks and the sentence table they point into (``Chunk.sentence_ids`` index it)."""
    params = params or ChunkingParams()
    step = params.sentences - params.overlap
    chunks: list[Chunk] = []
    sentences: list[Span] = []
    for doc in documents:
        doc_sentences = sentences_of(doc)
        base = len(sentences)
        sentences.extend(doc_sentences)
        by_section: dict[Section, list[int]] = {}
        for i, span in enumerate(doc_sentences):
            by_section.setdefault(doc.section_at(span.start), []).append(base + i)
        for section, ids in by_section.items():
            windows = range(0, max(1, len(ids) - params.overlap), step)
            for w in windows:
                window = ids[w : w + params.sentences]
                first, last = sentences[window[0]], sentences[window[-1]]
                chunks.append(
                    Chunk(
                        id=len(chunks),
                        doc_id=doc.id,
                        section=section.title,
                        start=first.start,
                        end=last.end,
                        text=doc.text[first.start : last.end],
                        sentence_ids=tuple(window),
                    )
                )
    return chunks, sentences


_PARAGRAPH_BREAK = re.compile(r"\n[ \t]*\n")


def _paragraphs(text: str, start: int, end: int) -> list[tuple[int, int]]:
    """Paragraph spans: a sentence may wrap over lines, but never runs across a blank line."""
    out = []
    pos = start
    for match in _PARAGRAPH_BREAK.finditer(text, start, end):
        out.append((pos, match.start()))
        pos = match.end()
    out.append((pos, end))
    return out


def _is_abbreviation(text: str, sentence_start: int, period: int) -> bool:
    if text[period] != ".":
        return False
    before = text[sentence_start : period + 1]
    word = before.split()[-1] if before.split() else ""
    if _INITIALS.search(word):  # "U.S.", "A.P." -- initials, not the end of a sentence
        return True
    return word.rstrip(".").lower() in _ABBREVIATIONS


def _trim(text: str, start: int, end: int) -> tuple[int, int] | None:
    while start < end and text[start].isspace():
        start += 1
    while end > start and text[end - 1].isspace():
        end -= 1
    return (start, end) if end > start else None


def _minus(start: int, end: int, holes: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``[start, end)`` without the ``holes`` (heading lines)."""
    pieces = []
    cursor = start
    for h_start, h_end in sorted(holes):
        if h_end <= cursor or h_start >= end:
            continue
        if h_start > cursor:
            pieces.append((cursor, h_start))
        cursor = max(cursor, h_end)
    if cursor < end:
        pieces.append((cursor, end))
    return pieces
