"""Routes /api/index/status and /api/config: the background build, and what this server allows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ServiceDep, SettingsDep
from api.schemas import ApiConfig, BuildStatusOut
from rag.store import accepted_kinds

router = APIRouter(prefix="/api", tags=["documents"])


@router.get("/index/status", response_model=BuildStatusOut, summary="The index build status")
async def index_status(service: ServiceDep) -> BuildStatusOut:
    """Whether a build runs (after an upload or removal), each of its stages with done/total and rate (a
    document answers once text, chunks, bm25 and minilm's sentences are in), which documents wait or still
    lack some models, which failed and why, the last error. Read from memory: it never waits on a database."""
    return BuildStatusOut.model_validate(service.status())


@router.get("/config", response_model=ApiConfig, summary="What this server allows")
async def config(settings: SettingsDep) -> dict[str, Any]:
    return {
        "uploads": settings.uploads_enabled,
        "max_upload_bytes": settings.max_upload_bytes,
        "accepted_kinds": accepted_kinds(),
        "max_question_chars": settings.max_question_chars,
        "feedback": settings.feedback,
    }
