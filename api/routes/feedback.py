"""Route POST /api/feedback: a reader's 👍/👎 on an answer, kept by the store (the index folder's
feedback file, or the database).

Off unless FORUMQA_FEEDBACK is set (403). Write-only by design: no route reads feedback back, so what one
user writes is never shown to another; ``forumqa feedback export`` reads it. The body cap and a per-client
rate limit of its own come from the middleware (api/security.py).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import FeedbackOn, ServiceDep, ValidFeedback, Viewer
from api.errors import ApiError
from api.schemas import ErrorResponse, FeedbackStored
from rag.store import Feedback, FeedbackFull, StoreUnavailable
from rag.types import Turn

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api", tags=["feedback"])


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


@router.post(
    "/feedback",
    status_code=201,
    response_model=FeedbackStored,
    dependencies=[FeedbackOn],
    responses={
        400: _error("The body is not valid JSON."),
        403: _error("Feedback is off on this server (FORUMQA_FEEDBACK unset)."),
        422: _error("A field is missing, too long, or not one of its values (rating up or down, …)."),
        429: _error("Too many feedback posts from this client (FORUMQA_FEEDBACK_PER_MINUTE)."),
        503: _error("The feedback file is full (FORUMQA_FEEDBACK_MAX_FILE_BYTES), or the store cannot "
                    "keep it just now."),
    },
    summary="Rate an answer (👍/👎, optional comment)",
)
async def post_feedback(body: ValidFeedback, service: ServiceDep, principal: Viewer) -> dict[str, Any]:
    """Stores the rating with the question, the answer judged, the serving build, and who rated (with the
    collections they could read, which bound what the question and answer can hold); answers 201."""
    qa = service.qa
    record = Feedback(
        question=body.question,
        answer_id=body.answer_id,
        answer=body.answer,
        verdict=body.verdict,
        rating=body.rating,
        comment=body.comment,
        history=tuple(Turn(t.role, t.content) for t in body.history),
        time=Feedback.now(),
        build_id=qa.index.version if qa is not None else None,
        user=principal.name or ("api-key" if principal.via == "key" else None),
        collections=None if principal.read is None else tuple(sorted(principal.read)),
    )
    try:  # a locked append and an fsync, or a database write: off the event loop
        await run_in_threadpool(service.store.add_feedback, record)
    except FeedbackFull as exc:
        log.warning("feedback refused: %s", exc)
        raise ApiError(
            503, "unavailable", "feedback cannot be stored: the server's feedback file is full"
        ) from None
    except (OSError, StoreUnavailable) as exc:
        log.error("cannot store feedback in %s: %s", service.store.feedback_location, exc)
        raise ApiError(503, "unavailable", "feedback cannot be stored on this server just now",
                       headers={"Retry-After": "5"}) from None
    log.info("feedback %s on answer %s", body.rating, body.answer_id)
    return {"stored": True}
