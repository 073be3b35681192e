"""Domain types shared by every stage of the pipeline: documents, chunks, passages, answers; and the
answer object's JSON schema, read from those types (see "The answer object's JSON" below)."""

from __future__ import annotations

import bisect
from dataclasses import dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator


@dataclass(frozen=True, slots=True)
class Section:
    """A titled stretch of a document; ``text[start:end]`` covers its heading and body."""

    title: str
    start: int
    end: int


@dataclass(frozen=True, slots=True)
class Document:
    """A source document after cleaning. Every offset in the system indexes ``text``. How a build folder
    keeps it (rag.index.publish) and how the API shows it (api.schemas) are each their own."""

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
        """This citation as the API's JSON (:class:`Passage`)."""
        return Passage.of(self).model_dump(mode="json")


@dataclass(frozen=True, slots=True)
class Dropped:
    """A generated sentence the grounding check struck, and why."""

    text: str
    reason: str


# What became of a question (see Answer.verdict) and what it asked for (Answer.kind).
Verdict = Literal["answered", "uncertain", "not_covered"]
QuestionKind = Literal["fact", "overview", "yes_no"]


@dataclass(slots=True)
class Answer:
    """The answer object returned by the CLI (``--json``) and the HTTP API."""

    question: str
    answer: str
    answerable: bool
    confidence: float
    citations: list[Citation]
    took_ms: float
    # Served from the answer cache: took_ms is then the look-up, not the work of answering.
    cached: bool = False
    # "answered"; "uncertain": the nearest sentences, which may not answer exactly; "not_covered": what is
    # asked is absent from the documents. ``answerable`` is false only for "not_covered".
    verdict: Verdict = "answered"
    # What the question asked for: a fact, an overview of a document (its lead), or a yes or a no.
    kind: QuestionKind = "fact"
    # Which mode wrote ``answer``: the reader's own sentences, or an LLM (checked against them).
    mode: Literal["extractive", "generative"] = "extractive"
    model: str | None = None  # the LLM that wrote it (or whose answer was struck)
    grounded: bool | None = None  # None: no LLM answer was checked
    dropped: list[Dropped] = field(default_factory=list)
    notice: str | None = None  # why an LLM answer was asked for but the extractive one stands
    usage: dict[str, int] | None = None  # the LLM's token counts, when its server gives them
    generated_ms: float | None = None  # the LLM's part of took_ms
    # A stable id of this answer (build, question, history, text), for feedback; set by ForumQA.
    answer_id: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The answer object, as the API returns it and ``forumqa ask --json`` prints it
        (:class:`AnswerResponse`)."""
        return AnswerResponse.of(self).model_dump(mode="json")


# ------------------------------------------------------------------------ the answer object's JSON
#
# The one schema of the answer object: these models are what /api/answer documents (with the examples
# shown at /docs) and returns, and what ``Answer.to_dict`` gives the stream, the OpenAI-compatible
# routes and ``forumqa ask --json``. They are filled from the dataclasses above by attribute name
# (``of``); only the JSON's nesting of the highlight and the short answer is spelled out, in
# ``Passage``. A field added to Answer, Citation or Dropped without one here fails
# tests/test_answer_schema.py instead of silently missing from the JSON.

EXAMPLE_QUESTION = "When did the Third Korea-Russia Forum take place?"
EXAMPLE_SENTENCE = (
    "The Korea Foundation cosponsored the Third Korea-Russia Forum on September 27-28 with the "
    "Diplomatic Academy of Russia to explore ways of strengthening relations between the two countries."
)
EXAMPLE_CITATION: dict[str, Any] = {
    "n": 1,
    "doc_id": "third-korea-russia-forum",
    "title": "Third Korea-Russia Forum",
    "section": "Third Korea-Russia Forum",
    "start": 26,
    "end": 523,
    "text": EXAMPLE_SENTENCE + " Attending the two-day event in Moscow were about 70 prominent individuals…",
    "highlight": {"start": 26, "end": 214},
    "score": 1.1615,
}


class Highlight(BaseModel):
    """The supporting sentence: ``document.text[start:end]``."""

    start: int
    end: int


class ShortAnswerOut(BaseModel):
    """The short answer inside the highlighted sentence: ``document.text[start:end] == text``."""

    start: int
    end: int
    text: str


class Passage(BaseModel):
    """A cited passage; every offset indexes the full text of document ``doc_id``."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [EXAMPLE_CITATION]})

    n: int = Field(description="The number used by the [n] markers of the answer.")
    doc_id: str
    title: str = Field(description="Title of the document.")
    section: str = Field(description="Title of the section the passage is in.")
    start: int = Field(description="Offset of the passage in the document text.")
    end: int
    text: str = Field(description="The passage: document text[start:end].")
    highlight: Highlight = Field(description="The sentence that supports the answer.")
    score: float
    short_answer: ShortAnswerOut | None = Field(
        None,
        description="Where the reader is confident: the words inside the highlight that answer "
        "(a date, a number, a name); null otherwise.",
    )
    page: int | None = Field(
        None,
        ge=1,
        description="The page (1-based) where the highlighted sentence starts, for a paged document "
        "(PDF); null for text, web pages and Word documents.",
    )

    @classmethod
    def of(cls, citation: Citation) -> Passage:
        return cls.model_validate(citation)

    @model_validator(mode="before")
    @classmethod
    def _from_citation(cls, data: Any) -> Any:
        # The domain keeps the highlight as two offsets and the short answer as a tuple (what
        # compose() builds); the JSON nests both. Every other field is read by its name.
        if not isinstance(data, Citation):
            return data
        short = data.short_answer
        return {
            **{name: getattr(data, name) for name in cls.model_fields if hasattr(data, name)},
            "highlight": {"start": data.highlight_start, "end": data.highlight_end},
            "short_answer": None if short is None else {"start": short[0], "end": short[1], "text": short[2]},
        }

    # Rounded when the model is filled, not when it is written: a plain serializer would take the
    # bounds out of the OpenAPI schema, and FastAPI validating the response again rounds nothing more.
    @field_validator("score")
    @classmethod
    def _round_score(cls, value: float) -> float:
        return round(value, 6)


class DroppedOut(BaseModel):
    """A sentence of the LLM's answer that the grounding check struck."""

    model_config = ConfigDict(from_attributes=True)

    text: str
    reason: str = Field(description="e.g. 'not supported by [2]', 'cites [7], which was not given'.")


class UsageOut(BaseModel):
    """Token counts of the LLM call, as its server reported them."""

    prompt_tokens: int
    completion_tokens: int
    total_tokens: int


class AnswerResponse(BaseModel):
    """A cited answer, or (``answerable`` false) the statement that the report does not cover it."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "question": EXAMPLE_QUESTION,
                    "answer": EXAMPLE_SENTENCE + " [1]",
                    "answerable": True,
                    "confidence": 0.9924,
                    "citations": [EXAMPLE_CITATION],
                    "took_ms": 84.2,
                    "verdict": "answered",
                    "kind": "fact",
                    "answer_id": "3f9a1c0e5b7d2a64",
                }
            ]
        },
    )

    question: str
    answer: str = Field(description="The answer: sentences quoted from the report with [n] markers.")
    answerable: bool = Field(description="False when the documents do not cover it (verdict not_covered).")
    confidence: float = Field(
        ge=0, le=1, description="The reader's probability that the answer shown is right (calibrated)."
    )
    citations: list[Passage] = Field(description="Best first; the nearest passages when not answerable.")
    took_ms: float
    cached: bool = Field(
        False,
        description="True when this answer was served from the answer cache (the same question asked "
        "before); took_ms is then only the look-up.",
    )
    verdict: Verdict = Field(
        "answered",
        description="answered; uncertain: the nearest sentences, which may not answer exactly; not_covered: "
        "what is asked (a name, a number, a topic) is absent from the documents.",
    )
    kind: QuestionKind = Field(
        "fact", description="What the question asks for: a fact, an overview (a document's lead), yes or no."
    )
    mode: Literal["extractive", "generative"] = Field(
        "extractive", description="Who wrote the answer: the reader (the report's sentences) or the LLM."
    )
    model: str | None = Field(None, description="The LLM that wrote (or tried to write) the answer.")
    grounded: bool | None = Field(
        None, description="True when every generated sentence was supported; null when no LLM answered."
    )
    dropped: list[DroppedOut] = Field(
        default_factory=list, description="Generated sentences struck by the grounding check."
    )
    notice: str | None = Field(
        None, description="Why the extractive answer stands although an LLM answer was asked for."
    )
    usage: UsageOut | None = Field(None, description="The LLM's token counts, when its server gives them.")
    generated_ms: float | None = Field(
        None,
        description="Of took_ms, the milliseconds the LLM took to write its answer (whether or not it "
        "held up); null when no LLM was asked.",
    )
    answer_id: str = Field(
        "",
        description="A stable id of this answer: a content hash of the index build, the question, the "
        "history and the answer text (a cached repeat keeps it). POST /api/feedback refers to it.",
    )

    @classmethod
    def of(cls, answer: Answer) -> AnswerResponse:
        return cls.model_validate(answer)

    @field_validator("confidence")
    @classmethod
    def _round_confidence(cls, value: float) -> float:
        return round(value, 4)

    @field_validator("took_ms", "generated_ms")
    @classmethod
    def _round_ms(cls, value: float | None) -> float | None:
        return None if value is None else round(value, 3)
