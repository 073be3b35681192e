"""Translation between OpenAI's chat completion format and forum-qa's answers.

Messages in: the last user message is the question, earlier user/assistant messages are the history
(system prompts are ignored: the reader cannot use them, and an LLM answers under forum-qa's own
prompt, whose grounding rules a client must not be able to lift). Answer out: the cited
answer followed by its sources, as one assistant message or as ``chat.completion.chunk`` SSE events.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections.abc import Iterator
from typing import Any

from api.deps import checked_mode, checked_text, valid_or_422
from api.errors import ApiError, invalid
from api.schemas import ChatCompletionRequest
from rag.accounts import OPEN, Principal
from rag.config import Settings
from rag.qa import Event, Final, ForumQA, Token
from rag.types import Answer, Turn

MODEL_ID = "forum-qa"
OWNED_BY = "forum-qa"
CREATED = 1_700_000_000  # a fixed "created" for the model card; the model is the index, not a release
_WORDS_PER_CHUNK = 4


def check_model(model: str) -> None:
    if model != MODEL_ID:
        raise ApiError(404, "model_not_found", f"the model {model!r} does not exist; use {MODEL_ID!r}")


def question_and_history(request: ChatCompletionRequest, settings: Settings) -> tuple[str, list[Turn]]:
    """The question (last message, which must be the user's) and the earlier turns."""
    checked_mode(request.mode, settings)
    *earlier, last = request.messages
    if last.role != "user":
        raise invalid(f"the last message must have role 'user' (the question), not {last.role!r}")
    question = checked_text(last.text(), "the last user message", settings)
    history = []
    for i, message in enumerate(earlier):
        if (message.role == "user" or message.role == "assistant") and message.text().strip():
            history.append(Turn(message.role, valid_or_422(message.text(), f"messages[{i}]")))
    return question, history


def sources_text(answer: Answer, qa: ForumQA, principal: Principal = OPEN) -> str:
    """One line per citation, ``[n] Title — Section (chars a-b): sentence``, under a heading."""
    heading = "Sources:" if answer.answerable else "Nearest passages (none of them answers this):"
    lines = []
    for c in answer.citations:
        document = qa.document(c.doc_id)
        if document is not None and not principal.may_read(document):
            document = None  # replaced since by one the caller may not read: the citation's own text only
        sentence = document.text[c.highlight_start : c.highlight_end] if document else c.text
        sentence = " ".join(sentence.split())  # sentences may wrap across lines in the source
        lines.append(f"[{c.n}] {c.title} — {c.section} (chars {c.start}-{c.end}): {sentence}")
    return f"\n\n{heading}\n" + "\n".join(lines) if lines else ""


def reply_text(answer: Answer, qa: ForumQA, principal: Principal = OPEN) -> str:
    """The answer (after its notice, if any), then its sources."""
    notice = f"({answer.notice})\n\n" if answer.notice else ""
    return notice + answer.answer + sources_text(answer, qa, principal)


def _after_tokens(answer: Answer, qa: ForumQA, principal: Principal) -> str:
    """What follows generated text already streamed: what the check struck, or the fallback."""
    if answer.mode == "generative":
        struck = ""
        if answer.dropped:
            struck = "\n\n(Struck, not supported by the passages: " + " ".join(
                f"«{d.text}»" for d in answer.dropped
            ) + ")"
        return struck + sources_text(answer, qa, principal)
    # The LLM failed mid-answer, or nothing it wrote was supported: the report's own words follow.
    return f"\n\n({answer.notice})\n\n" + answer.answer + sources_text(answer, qa, principal)


def completion(answer: Answer, content: str) -> dict[str, Any]:
    return {
        "usage": answer.usage,
        "id": _completion_id(),
        "object": "chat.completion",
        "created": int(time.time()),
        "model": MODEL_ID,
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}
        ],
        "forum_qa": answer.to_dict(),
    }


def _completion_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def _pieces(content: str) -> list[str]:
    # A few words per event, each keeping the whitespace before it, so joined deltas equal the content.
    words = re.findall(r"\s*\S+", content) or [content]
    trailing = content[len("".join(words)) :]
    pieces = ["".join(words[i : i + _WORDS_PER_CHUNK]) for i in range(0, len(words), _WORDS_PER_CHUNK)]
    pieces[-1] += trailing
    return pieces


def sse_stream(events: Iterator[Event], qa: ForumQA, principal: Principal = OPEN) -> Iterator[str]:
    """``chat.completion.chunk`` events passing an LLM's tokens through as they arrive, then what the
    grounding check struck (or the extractive fallback), the sources, the stop with the answer
    object, a usage chunk when the LLM reported usage, and ``[DONE]``."""
    base = {"id": _completion_id(), "object": "chat.completion.chunk", "created": int(time.time()),
            "model": MODEL_ID}

    def event(delta: dict[str, str], finish: str | None = None, **extra: Any) -> str:
        chunk = {**base, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}
        return f"data: {json.dumps(chunk, ensure_ascii=False)}\n\n"

    yield event({"role": "assistant", "content": ""})
    streamed = False
    for item in events:
        if isinstance(item, Token):
            streamed = True
            yield event({"content": item.text})
            continue
        assert isinstance(item, Final)
        answer = item.answer
        rest = _after_tokens(answer, qa, principal) if streamed else reply_text(answer, qa, principal)
        for piece in _pieces(rest) if rest else []:
            yield event({"content": piece})
        yield event({}, "stop", forum_qa=answer.to_dict())
        if answer.usage:
            usage_chunk = {**base, "choices": [], "usage": answer.usage}
            yield f"data: {json.dumps(usage_chunk)}\n\n"
    yield "data: [DONE]\n\n"


def model_card() -> dict[str, Any]:
    return {"id": MODEL_ID, "object": "model", "created": CREATED, "owned_by": OWNED_BY}
