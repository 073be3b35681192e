"""Routes /api/answer and /api/search: questions in, cited answers or ranked passages out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api.deps import QA, ValidAnswerRequest, ValidSearchRequest, Viewer, access_of
from api.schemas import ErrorResponse, SearchResponse
from rag.qa import Event, Token
from rag.types import AnswerResponse, Passage, Turn

router = APIRouter(prefix="/api", tags=["answers"])

ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
    422: {"model": ErrorResponse, "description": "Blank or too long question, top_k not in 1..20, an unknown "
          "document in doc_ids, …"},
    503: {"model": ErrorResponse, "description": "The index is still loading."},
}


# Plain ``def`` routes: answering embeds the question and searches (CPU-bound, tens of ms), so
# FastAPI runs them in its threadpool and the event loop keeps serving other requests meanwhile.


@router.post("/answer", response_model=AnswerResponse, responses=ERRORS, summary="Answer with citations")
def answer(request: ValidAnswerRequest, qa: QA, principal: Viewer) -> AnswerResponse:
    """The cited answer to ``question``; ``history`` lets follow-ups refer to earlier turns. Only the
    documents the asker may read are searched."""
    history = [Turn(t.role, t.content) for t in request.history]
    answer = qa.answer(request.question, history, request.top_k, request.doc_ids, request.mode,
                       access_of(principal), request.fresh)
    return AnswerResponse.of(answer)


def _ndjson(events: Iterator[Event]) -> Iterator[str]:
    for event in events:
        if isinstance(event, Token):
            yield json.dumps({"type": "token", "text": event.text}, ensure_ascii=False) + "\n"
        else:
            yield json.dumps({"type": "answer", "answer": event.answer.to_dict()}, ensure_ascii=False) + "\n"


@router.post(
    "/answer/stream",
    responses={
        200: {
            "content": {"application/x-ndjson": {}},
            "description": 'One JSON object a line: {"type": "token", "text": …} while an LLM writes, '
            'then {"type": "answer", "answer": <the answer object of /api/answer>}.',
        },
        **ERRORS,
    },
    summary="Stream the cited answer",
)
def answer_stream(request: ValidAnswerRequest, qa: QA, principal: Viewer) -> StreamingResponse:
    """Like /api/answer, but a generated answer arrives token by token; the checked answer (which may
    strike sentences already shown) ends the stream. Bad input fails before the stream starts."""
    history = [Turn(t.role, t.content) for t in request.history]
    events = qa.answer_events(request.question, history, request.top_k, request.doc_ids, request.mode,
                              access_of(principal), request.fresh)
    return StreamingResponse(
        _ndjson(events),
        media_type="application/x-ndjson",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )


@router.post("/search", response_model=SearchResponse, responses=ERRORS, summary="Search passages")
def search(request: ValidSearchRequest, qa: QA, principal: Viewer) -> SearchResponse:
    """The ``top_k`` passages that best match ``query``, best first, with their supporting sentence."""
    passages = qa.search(request.query, request.top_k, request.doc_ids, access_of(principal))
    return SearchResponse(results=[Passage.of(c) for c in passages])
