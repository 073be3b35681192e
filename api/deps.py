"""Route dependencies: the service, its settings, the loaded ForumQA, and validated request bodies.

Checks that need the settings (question length) live here, so routes receive requests that are
already known to be acceptable and stay one line of work each.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from api.errors import ApiError, invalid
from api.schemas import AnswerRequest, SearchRequest
from api.service import Service
from rag.config import Settings
from rag.qa import ForumQA

# These are ``async def`` because they never block: a sync dependency would cost a threadpool hop.


async def get_service(request: Request) -> Service:
    service: Service = request.app.state.service
    return service


ServiceDep = Annotated[Service, Depends(get_service)]


async def get_settings(service: ServiceDep) -> Settings:
    return service.settings


SettingsDep = Annotated[Settings, Depends(get_settings)]


async def get_qa(service: ServiceDep) -> ForumQA:
    """The loaded ForumQA, or a 503 saying why there is none yet."""
    if service.qa is not None:
        return service.qa
    if service.error is not None:
        raise ApiError(503, "unavailable", f"the index failed to load: {service.error}")
    raise ApiError(503, "unavailable", "the index is still loading; retry in a few seconds",
                   headers={"Retry-After": "5"})


QA = Annotated[ForumQA, Depends(get_qa)]


def unicode_text(text: str, field: str) -> str:
    """``text``, or a 422 if it holds a lone surrogate (JSON allows ``"\\ud800"``; no tokenizer does)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise invalid(f"{field} is not valid Unicode: a lone surrogate at character {exc.start}") from None
    return text


def checked_text(text: str, field: str, settings: Settings) -> str:
    """``text`` stripped; a 422 if it is not Unicode, blank or longer than ``settings.max_question_chars``."""
    stripped = unicode_text(text, field).strip()
    if not stripped:
        raise invalid(f"{field} must not be empty")
    if len(stripped) > settings.max_question_chars:
        limit = settings.max_question_chars
        raise invalid(f"{field} is {len(stripped)} characters long; the limit is {limit}")
    return stripped


def checked_mode(mode: str, settings: Settings) -> None:
    """A 422 when generative answers are asked for and no LLM is configured."""
    if mode == "generative" and not settings.llm_configured:
        raise invalid(
            "mode 'generative' needs an LLM, and none is configured "
            "(FORUMQA_LLM_BASE_URL and FORUMQA_LLM_MODEL); use 'extractive' or 'auto'"
        )


async def answer_request(body: AnswerRequest, settings: SettingsDep) -> AnswerRequest:
    checked_mode(body.mode, settings)
    return body.model_copy(update={"question": checked_text(body.question, "question", settings)})


async def search_request(body: SearchRequest, settings: SettingsDep) -> SearchRequest:
    return body.model_copy(update={"query": checked_text(body.query, "query", settings)})


ValidAnswerRequest = Annotated[AnswerRequest, Depends(answer_request)]
ValidSearchRequest = Annotated[SearchRequest, Depends(search_request)]
