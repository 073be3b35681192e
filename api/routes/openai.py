"""Routes /v1/models and /v1/chat/completions: forum-qa as an OpenAI-compatible chat model."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import StreamingResponse

from api import openai_compat
from api.deps import QA, SettingsDep, Viewer, access_of
from api.schemas import ChatCompletion, ChatCompletionRequest, ErrorResponse, ModelCard, ModelList

router = APIRouter(prefix="/v1", tags=["openai"])

_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorResponse, "description": "Unknown model."}}


@router.get("/models", response_model=ModelList, summary="List models (just forum-qa)")
async def list_models() -> dict[str, Any]:
    return {"object": "list", "data": [openai_compat.model_card()]}


@router.get("/models/{model_id}", response_model=ModelCard, responses=_NOT_FOUND, summary="Describe a model")
async def get_model(model_id: str) -> dict[str, Any]:
    openai_compat.check_model(model_id)
    return openai_compat.model_card()


@router.post(
    "/chat/completions",
    response_model=ChatCompletion,
    responses={
        200: {
            "content": {"text/event-stream": {}},
            "description": "With stream=true: chat.completion.chunk events, then `data: [DONE]`.",
        },
        **_NOT_FOUND,
        400: {"model": ErrorResponse, "description": "The body is not valid JSON."},
        422: {"model": ErrorResponse, "description": "No user question last, blank or too long, bad field."},
        503: {"model": ErrorResponse, "description": "The index is still loading."},
    },
    summary="Chat completion (OpenAI format)",
)
def chat_completions(
    request: ChatCompletionRequest, qa: QA, settings: SettingsDep, principal: Viewer
) -> dict[str, Any] | StreamingResponse:
    """Answers the last user message; the reply is the cited answer followed by its sources.

    A plain ``def`` so the answering runs in the threadpool. With ``stream`` and an LLM, its tokens
    pass through as they arrive; the sources (and anything the grounding check struck) follow.
    ``mode`` (a forum-qa extension, e.g. ``extra_body={"mode": "extractive"}``) picks who answers.
    """
    openai_compat.check_model(request.model)
    question, history = openai_compat.question_and_history(request, settings)
    access = access_of(principal)  # only the documents the caller (its token) may read
    if request.stream:
        # Retrieval and the reader run here, before the first byte: bad input is still a JSON error.
        events = qa.answer_events(question, history, request.top_k, mode=request.mode, access=access)
        return StreamingResponse(
            openai_compat.sse_stream(events, qa, principal),
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )
    answer = qa.answer(question, history, request.top_k, mode=request.mode, access=access)
    return openai_compat.completion(answer, openai_compat.reply_text(answer, qa, principal))
