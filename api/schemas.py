"""The JSON shapes of the API: request and response models, with the examples shown at /docs.

The answer object and its parts (``AnswerResponse``, ``Passage``, …) are defined once, in
:mod:`rag.types`, next to the domain types they are filled from, because ``forumqa ask --json`` prints
the same object; they are imported here for the routes. Limits that depend on settings (the question
length) are checked in :mod:`api.deps`, because a pydantic model cannot see the settings.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from rag.store import MAX_TITLE_CHARS
from rag.types import EXAMPLE_QUESTION, AnswerResponse, Passage, UsageOut, Verdict

TOP_K_MIN = 1
TOP_K_MAX = 20
MAX_HISTORY_TURNS = 50
MAX_TURN_CHARS = 20_000  # an assistant turn carries its sources, so allow far more than a question
MAX_DOC_IDS = 1000
DocIds = list[Annotated[str, Field(min_length=1, max_length=200)]] | None
DOC_IDS_DESCRIPTION = (
    "Only these documents (ids from GET /api/documents); leave out for all. An unknown id is a 422."
)


# ------------------------------------------------------------------------------------- requests


class TurnIn(BaseModel):
    """One earlier message of the conversation."""

    model_config = ConfigDict(extra="forbid", strict=True)

    role: Literal["user", "assistant"]
    content: str = Field(max_length=MAX_TURN_CHARS)


AnswerMode = Literal["extractive", "generative", "auto"]
MODE_DESCRIPTION = (
    "extractive: the report's own sentences. generative: the configured LLM writes the answer from the "
    "cited passages, each sentence checked against them (422 when no LLM is configured). auto: "
    "generative when an LLM is configured."
)


class AnswerRequest(BaseModel):
    """A question, optionally following earlier turns of a chat."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,  # the types the schema documents: "5" is not a top_k
        json_schema_extra={
            "examples": [
                {"question": EXAMPLE_QUESTION, "top_k": 5, "history": []},
                {
                    "question": "Who headed it?",
                    "top_k": 3,
                    "history": [
                        {"role": "user", "content": "How many members did the Korean delegation have?"},
                        {"role": "assistant", "content": "Twenty members of the Korean delegation… [1]"},
                    ],
                },
            ]
        },
    )

    question: str = Field(description="The question; not blank, at most FORUMQA_MAX_QUESTION_CHARS (1000).")
    top_k: int = Field(5, ge=TOP_K_MIN, le=TOP_K_MAX, description="How many citations to return.")
    history: list[TurnIn] = Field(
        default_factory=list,
        max_length=MAX_HISTORY_TURNS,
        description="Earlier turns, oldest first; follow-ups like 'who headed it?' are resolved with them.",
    )
    mode: AnswerMode = Field("auto", description=MODE_DESCRIPTION)
    doc_ids: DocIds = Field(None, min_length=1, max_length=MAX_DOC_IDS, description=DOC_IDS_DESCRIPTION)
    fresh: bool = Field(
        False,
        description="Answer anew (the page's Regenerate): the server's answer cache is skipped, so "
        "`cached` is false, and an LLM writes the answer again at FORUMQA_LLM_REGENERATE_TEMPERATURE "
        "(0.7), so it may be worded differently. An extractive answer comes out the same: the reader is "
        "deterministic.",
    )


class SearchRequest(BaseModel):
    """A search over the report's passages (no answer is composed)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"query": "fight against terrorism", "top_k": 5}]},
    )

    query: str = Field(description="What to look for; not blank, at most FORUMQA_MAX_QUESTION_CHARS.")
    top_k: int = Field(5, ge=TOP_K_MIN, le=TOP_K_MAX, description="How many passages to return.")
    doc_ids: DocIds = Field(None, min_length=1, max_length=MAX_DOC_IDS, description=DOC_IDS_DESCRIPTION)


# ------------------------------------------------------------------------------------ responses


class SearchResponse(BaseModel):
    """Ranked passages."""

    results: list[Passage]


class SectionOut(BaseModel):
    """A titled part of a document: ``text[start:end]`` covers its heading and body."""

    model_config = ConfigDict(from_attributes=True)

    title: str
    start: int
    end: int


class DocumentSummaryOut(BaseModel):
    """A document the index serves, as the list shows it (no text: ``GET /api/documents/{doc_id}``)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "third-korea-russia-forum",
                    "title": "Third Korea-Russia Forum",
                    "source": "Korea Foundation",
                    "metadata": {"place": "Moscow", "event_dates": "September 27-28"},
                    "kind": "txt",
                    "size": 14903,
                    "page_count": None,
                    "embedding": [],
                }
            ]
        }
    )

    id: str
    title: str
    source: str
    metadata: dict[str, Any] = Field(default_factory=dict)
    kind: str = Field(description="pdf, docx, html, md or txt.")
    size: int = Field(description="Size of the document's file in bytes.")
    page_count: int | None = Field(None, description="Pages, for paged documents (PDF).")
    embedding: list[str] = Field(
        default_factory=list,
        description="Models still embedding this document (just added): it answers with the others "
        "meanwhile, and its answers say so.",
    )
    collection: str = Field("default", description="The collection it belongs to (who may read it).")


class DocumentOut(DocumentSummaryOut):
    """A document with its full text; citation offsets index ``text``."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "id": "third-korea-russia-forum",
                    "title": "Third Korea-Russia Forum",
                    "source": "Korea Foundation",
                    "metadata": {"place": "Moscow", "event_dates": "September 27-28"},
                    "text": "Third Korea-Russia Forum\n\nThe Korea Foundation cosponsored…",
                    "sections": [{"title": "Third Korea-Russia Forum", "start": 0, "end": 1282}],
                    "kind": "txt",
                    "size": 14903,
                    "page_count": None,
                    "embedding": [],
                }
            ]
        },
    )

    text: str
    sections: list[SectionOut]
    pages: list[int] | None = Field(
        None, description="Paged documents (PDF): the offset in ``text`` where each page starts."
    )


class DocumentList(BaseModel):
    """Every document the index serves, without its text."""

    documents: list[DocumentSummaryOut]


class StoredDocumentOut(BaseModel):
    """A document as the store keeps it."""

    model_config = ConfigDict(from_attributes=True)

    id: str = Field(description="The id chosen for it: a slug of its title.")
    title: str
    kind: str = Field(description="Decided by the file's bytes: pdf, docx, html, md or txt.")
    size: int = Field(description="Bytes.")
    file: str = Field(description="Its file name in the corpus folder (chosen by the server).")
    original_filename: str = Field(description="The name it was uploaded with (kept as metadata only).")
    page_count: int | None = Field(None, description="Pages, for paged documents (PDF).")
    collection: str | None = Field(None, description="The collection it joined (null: the default one).")


class StageOut(BaseModel):
    """One stage of an index build (text, chunks, bm25, then one per model: minilm, e5, use)."""

    model_config = ConfigDict(from_attributes=True)

    name: str = Field(description='"text", "chunks", "bm25" or a model: "minilm", "e5", "use".')
    state: Literal["waiting", "running", "done", "failed"]
    done: int | None = Field(description="Documents (text, chunks) or texts (bm25, models) done.")
    total: int | None = Field(description="What the stage has to do: texts a model must still embed.")
    rate: float | None = Field(description="Documents or texts per second.")
    seconds: float | None = Field(description="Seconds the stage has run (or took).")


class FailureOut(BaseModel):
    """A document a model gave up on (the database store, after FORUMQA_DB_MAX_ATTEMPTS tries)."""

    model_config = ConfigDict(from_attributes=True)

    doc_id: str
    model: str
    attempts: int
    error: str


class BuildStatusOut(BaseModel):
    """The store's build and how the serving index differs from what the store holds."""

    model_config = ConfigDict(
        from_attributes=True,
        json_schema_extra={
            "examples": [
                {
                    "state": "building",
                    "phase": "building the index: e5",
                    "done": 96,
                    "total": 374,
                    "queued": 0,
                    "pending": {"added": [], "removed": []},
                    "documents": 2,
                    "serving_build_id": "20261128T201500-1a2b3c4d-5e6f70",
                    "last_build_id": "20261128T201500-1a2b3c4d-5e6f70",
                    "builds": 0,
                    "last_error": None,
                    "started_at": 1795897000.0,
                    "seconds": None,
                    "stages": [
                        {"name": "text", "state": "done", "done": 2, "total": 2, "rate": 31.0,
                         "seconds": 0.03},
                        {"name": "chunks", "state": "done", "done": 2, "total": 2, "rate": 90.0,
                         "seconds": 0.01},
                        {"name": "bm25", "state": "done", "done": 561, "total": 561, "rate": 2100.0,
                         "seconds": 0.27},
                        {"name": "minilm", "state": "done", "done": 374, "total": 374, "rate": 160.2,
                         "seconds": 2.33},
                        {"name": "e5", "state": "running", "done": 96, "total": 374, "rate": 30.1,
                         "seconds": 3.19},
                        {"name": "use", "state": "waiting", "done": None, "total": None, "rate": None,
                         "seconds": None},
                    ],
                    "embedding": {"pangyo-techno-valley": ["e5", "use"]},
                    "failed": [],
                }
            ]
        },
    )

    state: Literal["loading", "idle", "building", "failed"] = Field(
        description="loading: the server is still loading its first index; failed: the last build failed "
        "(see last_error) and the previous index still serves."
    )
    phase: str | None = Field(description="What the builder is doing now.")
    done: int | None = Field(description="Progress of the running stage (that stage's done).")
    total: int | None = Field(description="That stage's total.")
    queued: int = Field(
        description="Changes (or embedding jobs) waiting for the build after the current one."
    )
    pending: dict[str, list[str]] = Field(
        description="Document ids in the store but not yet served (added) and served but no longer in the "
        "store (removed)."
    )
    documents: int = Field(description="Documents the serving index holds.")
    serving_build_id: str | None
    last_build_id: str | None = Field(
        description="The last build this server made, or the database's generation."
    )
    builds: int = Field(description="Builds this server's builder finished.")
    last_error: str | None
    started_at: float | None = Field(description="Unix time the current or last build started.")
    seconds: float | None = Field(description="How long the last finished build took.")
    stages: list[StageOut] = Field(
        description="The stages of the running or last build, in order. A document is answerable once "
        "text, chunks, bm25 and the first model's sentences (minilm) are in; the other models follow in the "
        "background, and every document already served keeps every model meanwhile."
    )
    embedding: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Served documents that some models have not embedded yet, with those models.",
    )
    failed: list[FailureOut] = Field(
        default_factory=list,
        description="Documents a model gave up on, with the error (`forumqa db retry` queues them again).",
    )


class UploadResponse(BaseModel):
    """The stored document, and the build that will serve it (poll GET /api/index/status)."""

    document: StoredDocumentOut
    build: BuildStatusOut


class RemoveResponse(BaseModel):
    """The removed document, and the rebuild that will drop it from answers."""

    removed: StoredDocumentOut
    build: BuildStatusOut


class RenameRequest(BaseModel):
    """A document's new title (its id, and so every citation of it, stays)."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={"examples": [{"title": "Vladivostok Port Logistics"}]},
    )

    title: str = Field(
        min_length=1,
        max_length=MAX_TITLE_CHARS,
        description=f"Not blank, at most {MAX_TITLE_CHARS} characters, no control characters; runs of white "
        "space become one space.",
    )


class RenameResponse(BaseModel):
    """The renamed document, and the rebuild that will serve its new title (poll GET /api/index/status)."""

    document: StoredDocumentOut
    build: BuildStatusOut


class ApiConfig(BaseModel):
    """What this server allows, for clients such as the chat page."""

    uploads: bool = Field(description="Whether POST and DELETE /api/documents are enabled.")
    max_upload_bytes: int
    accepted_kinds: list[str] = Field(description="Document kinds an upload may be.")
    max_question_chars: int = Field(description="The longest question accepted (longer ones get a 422).")
    feedback: bool = Field(False, description="Whether POST /api/feedback is enabled (FORUMQA_FEEDBACK).")
    accounts: bool = Field(False, description="Whether this server has accounts: then sign in (POST "
                           "/api/session) or send a token; `uploads` is then whether the asker may add "
                           "documents.")


# -------------------------------------------------------------------------------------- feedback

MAX_FEEDBACK_ANSWER_CHARS = 8_000
MAX_FEEDBACK_COMMENT_CHARS = 1_000
MAX_FEEDBACK_TURNS = 20
MAX_FEEDBACK_TURN_CHARS = 4_000
#: The body cap of POST /api/feedback (below FORUMQA_MAX_BODY_BYTES when that is larger): the fields'
#: own limits fit in it with room for JSON escapes.
MAX_FEEDBACK_BODY_BYTES = 32 * 1024


class FeedbackTurn(TurnIn):
    content: str = Field(max_length=MAX_FEEDBACK_TURN_CHARS)


class FeedbackRequest(BaseModel):
    """A reader's 👍 or 👎 on one answer, with an optional comment."""

    model_config = ConfigDict(
        extra="forbid",
        strict=True,
        json_schema_extra={
            "examples": [
                {
                    "question": EXAMPLE_QUESTION,
                    "answer_id": "3f9a1c0e5b7d2a64",
                    "answer": "The Korea Foundation cosponsored the Third Korea-Russia Forum on September "
                    "27-28 … [1]",
                    "verdict": "answered",
                    "rating": "up",
                    "comment": "",
                }
            ]
        },
    )

    question: str = Field(description="The question, as the answer object gives it (at most "
                          "FORUMQA_MAX_QUESTION_CHARS).")
    answer_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="The answer object's answer_id.")
    answer: str = Field(min_length=1, max_length=MAX_FEEDBACK_ANSWER_CHARS,
                        description="The answer text judged (the answer object's answer).")
    verdict: Verdict = Field(description="The answer object's verdict.")
    rating: Literal["up", "down"]
    comment: str = Field(
        "", max_length=MAX_FEEDBACK_COMMENT_CHARS, description="Optional, in the reader's words."
    )
    history: list[FeedbackTurn] = Field(
        default_factory=list, max_length=MAX_FEEDBACK_TURNS,
        description="The earlier turns the question followed, so it can be asked again in context.",
    )


class FeedbackStored(BaseModel):
    """The feedback was stored. Nothing of it is sent back, here or on any other route."""

    stored: Literal[True] = True


class Health(BaseModel):
    """Liveness or readiness."""

    status: Literal["ok", "loading", "failed"]
    detail: str | None = None
    build_id: str | None = Field(default=None, description="The index build being served, once ready.")


class ErrorDetail(BaseModel):
    type: str = Field(description="A stable machine-readable kind, e.g. invalid_request, not_found.")
    message: str = Field(description="What went wrong, for people.")
    details: list[dict[str, Any]] | None = Field(default=None, description="Per-field problems (validation).")


class ErrorResponse(BaseModel):
    """Every error, 4xx or 5xx, has this body (also on the OpenAI-compatible routes)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"error": {"type": "invalid_request", "message": "question must not be empty"}}]
        }
    )

    error: ErrorDetail


# ------------------------------------------------------------------------ OpenAI-compatible API


class ContentPart(BaseModel):
    """A part of a multi-part message; only text parts carry anything we can use."""

    model_config = ConfigDict(extra="allow", strict=True)

    type: str
    text: str | None = None


class ChatMessage(BaseModel):
    model_config = ConfigDict(extra="allow", strict=True)  # name, tool_calls… are accepted and ignored

    role: Literal["system", "developer", "user", "assistant", "tool", "function"]
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        if isinstance(self.content, list):
            return "\n".join(p.text for p in self.content if p.type == "text" and p.text)
        return self.content or ""


class ChatCompletionRequest(BaseModel):
    """The subset of OpenAI's chat completion request that forum-qa uses; other fields are ignored."""

    model_config = ConfigDict(
        extra="allow",  # temperature, max_tokens, … mean nothing to an extractive answerer
        strict=True,  # but the fields we use have OpenAI's types: "stream": 0 is not a boolean
        json_schema_extra={
            "examples": [
                {
                    "model": "forum-qa",
                    "messages": [{"role": "user", "content": EXAMPLE_QUESTION}],
                    "stream": False,
                }
            ]
        },
    )

    model: str = Field(description='Must be "forum-qa" (see GET /v1/models).')
    messages: list[ChatMessage] = Field(
        min_length=1,
        max_length=MAX_HISTORY_TURNS + 1,
        description="The last message is the user's question; earlier user/assistant ones are the history.",
    )
    stream: bool = False
    top_k: int = Field(5, ge=TOP_K_MIN, le=TOP_K_MAX, description="forum-qa extension: citations to use.")
    mode: AnswerMode = Field("auto", description="forum-qa extension. " + MODE_DESCRIPTION)


class ModelCard(BaseModel):
    id: str
    object: Literal["model"] = "model"
    created: int
    owned_by: str


class ModelList(BaseModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]


class AssistantMessage(BaseModel):
    role: Literal["assistant"] = "assistant"
    content: str


class Choice(BaseModel):
    index: int = 0
    message: AssistantMessage
    finish_reason: Literal["stop"] = "stop"


class ChatCompletion(BaseModel):
    """OpenAI's ``chat.completion`` object; ``forum_qa`` adds the structured answer for clients."""

    id: str
    object: Literal["chat.completion"] = "chat.completion"
    created: int
    model: str
    choices: list[Choice]
    usage: UsageOut | None = Field(None, description="The LLM's token counts (generative answers).")
    forum_qa: AnswerResponse = Field(description="forum-qa extension: the answer object with its citations.")


# -------------------------------------------------------------------------------------- accounts


class SignIn(BaseModel):
    """A user name and password (`forumqa user add`)."""

    model_config = ConfigDict(extra="forbid", strict=True,
                              json_schema_extra={"examples": [{"username": "alice", "password": "…"}]})

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1024)


class SessionOut(BaseModel):
    """Who is signed in here, and what they may do."""

    accounts: bool = Field(description="Whether this server has accounts (then /api needs a sign-in or a "
                           "token, except for collections granted to everyone).")
    signed_in: bool
    user: str | None = None
    role: Literal["reader", "editor", "admin", "anonymous"] | None = Field(
        None, description="The user's role; anonymous: no sign-in, reading what is granted to everyone.")
    via: str | None = Field(None, description="session, token, key, anonymous, open (no accounts) or nobody.")
    read: list[str] | None = Field(None, description="Collections readable; null: all of them.")
    write: list[str] = Field(default_factory=list, description="Collections an upload may go to.")
    csrf: str | None = Field(None, description="Send as X-CSRF-Token with every request that changes "
                             "something while signed in with the cookie.")
    expires: float | None = Field(None, description="When the session ends (Unix time).")


class AuditEntry(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: float = Field(description="Unix time.")
    actor: str = Field(description="The user (or api-key, cli, -) who did it.")
    action: str = Field(description="document.add, document.remove, user.add, token.revoke, grant, …")
    target: str
    detail: str


class AuditLog(BaseModel):
    entries: list[AuditEntry]
