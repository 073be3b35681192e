"""Routes /healthz (the process answers) and /readyz (the index is loaded and the models are warm)."""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import JSONResponse

from api.deps import ServiceDep
from api.schemas import Health

router = APIRouter(tags=["health"])


@router.get("/healthz", response_model=Health, response_model_exclude_none=True, summary="Liveness")
async def healthz() -> Health:
    return Health(status="ok")


@router.get(
    "/readyz",
    response_model=Health,
    response_model_exclude_none=True,
    responses={503: {"model": Health, "description": "Still loading, or loading failed (see detail)."}},
    summary="Readiness",
)
async def readyz(service: ServiceDep) -> Health | JSONResponse:
    qa = service.qa
    if qa is not None:
        return Health(status="ok", build_id=qa.index.version)
    if service.error is not None:
        body = Health(status="failed", detail=f"the index failed to load: {service.error}")
    else:
        body = Health(status="loading", detail="loading the index and warming the models")
    return JSONResponse(body.model_dump(exclude_none=True), status_code=503, headers={"Retry-After": "5"})
