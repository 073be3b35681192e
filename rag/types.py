"""Domain types shared by every stage of the pipeline: documents, chunks, passages, answers."""

from __future__ import annotations

import bisect
from dataclasses import asdict, dataclass, field
from typing import Any, Literal


@dataclass(frozen=True, slots=True)
class Section:
    """A titled stretch of a document; ``text[start:end]`` covers its heading and body."""

    title: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Document:
    """A source document after cleaning. Every offset in the system indexes ``text``."""

    id: str
    title: str
    text: str
    sections: tuple[Section, ...]
    source: str = ""
    path: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    # Offset in ``text`` where each page starts (PDF); empty for documents without pages.
    pages: tuple[int, ...] = ()

    def __post_init__(self) -> None:
        # A build's documents.json gives a list; a tuple keeps the field as immutable as the rest.
        object.__setattr__(self, "pages", tuple(self.pages))

    def page_at(self, offset: int) -> int | None:
        """The 1-based page holding ``offset``, or None for a document without pages."""
        if not self.pages:
            return None
        return max(1, bisect.bisect_right(self.pages, offset))

    def section_at(self, offset: int) -> Section:
        for section in self.sections:
            if section.start <= offset < section.end:
                return section
        return self.sections[-1]

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "source": self.source, "metadata": self.metadata}

    def to_dict(self) -> dict[str, Any]:
        out = {
            **self.summary(),
            "text": self.text,
            "sections": [asdict(s) for s in self.sections],
        }
        if self.pages:
            out["pages"] = list(self.pages)
        return out


@dataclass(frozen=True, slots=True)
class Span:
    """A sentence: ``document.text[start:end]``."""

    doc_id: str
    section: str
    start: int
    end: int
    text: str


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrieval unit: a window of consecutive sentences of one section."""

    id: int
    doc_id: str
    section: str
    start: int
    end: int
    text: str
    sentence_ids: tuple[int, ...]


@dataclass(frozen=True, slots=True)
class Turn:
    """One earlier message of a chat."""

    role: Literal["user", "assistant"]
    content: str


@dataclass(slots=True)
class Citation:
    """A cited passage with the sentence that supports the answer highlighted."""

    n: int
    doc_id: str
    title: str
    section: str
    start: int
    end: int
    text: str
    highlight_start: int
    highlight_end: int
    score: float
    # The short answer inside the highlight, (start, end, text) in document offsets, where confident.
    short_answer: tuple[int, int, str] | None = None
    # The 1-based page of a paged document (PDF) where the highlight starts; None otherwise.
    page: int | None = None

    def to_dict(self) -> dict[str, Any]:
        out = {
            "n": self.n,
            "doc_id": self.doc_id,
            "title": self.title,
            "section": self.section,
            "start": self.start,
            "end": self.end,
            "text": self.text,
            "highlight": {"start": self.highlight_start, "end": self.highlight_end},
            "score": round(self.score, 6),
        }
        if self.short_answer is not None:
            start, end, text = self.short_answer
            out["short_answer"] = {"start": start, "end": end, "text": text}
        if self.page is not None:
            out["page"] = self.page
        return out


@dataclass(frozen=True, slots=True)
class Dropped:
    """A generated sentence the grounding check struck, and why."""

    text: str
    reason: str


@dataclass(slots=True)
class Answer:
    """The answer object returned by the CLI (``--json``) and the HTTP API."""

    question: str
    answer: str
    answerable: bool
    confidence: float
    citations: list[Citation]
    took_ms: float
    # Which mode wrote ``answer``: the reader's own sentences, or an LLM (checked against them).
    mode: Literal["extractive", "generative"] = "extractive"
    model: str | None = None  # the LLM that wrote it (or whose answer was struck)
    grounded: bool | None = None  # None: no LLM answer was checked
    dropped: list[Dropped] = field(default_factory=list)
    notice: str | None = None  # why an LLM answer was asked for but the extractive one stands
    usage: dict[str, int] | None = None  # the LLM's token counts, when its server gives them
    generated_ms: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "question": self.question,
            "answer": self.answer,
            "answerable": self.answerable,
            "confidence": round(self.confidence, 4),
            "citations": [c.to_dict() for c in self.citations],
            "took_ms": round(self.took_ms, 3),
            "mode": self.mode,
            "model": self.model,
            "grounded": self.grounded,
            "dropped": [{"text": d.text, "reason": d.reason} for d in self.dropped],
            "notice": self.notice,
            "usage": self.usage,
        }
