"""Routes /api/index/status and /api/config: the background build, and what this server allows."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import ServiceDep, SettingsDep
from api.schemas import ApiConfig, BuildStatusOut
from api.status import build_status
from rag.ingest.store import accepted_kinds

router = APIRouter(prefix="/api", tags=["documents"])


@router.get("/index/status", response_model=BuildStatusOut, summary="The index build status")
async def index_status(service: ServiceDep) -> dict[str, Any]:
    """Whether a rebuild runs (after an upload or removal), which documents wait for it, the last error."""
    return build_status(service)


@router.get("/config", response_model=ApiConfig, summary="What this server allows")
async def config(settings: SettingsDep) -> dict[str, Any]:
    return {
        "uploads": settings.uploads_enabled,
        "max_upload_bytes": settings.max_upload_bytes,
        "accepted_kinds": accepted_kinds(),
        "max_question_chars": settings.max_question_chars,
    }
