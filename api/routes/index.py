"""Routes /api/index/status and /api/config: the background build, and what this server allows."""

from __future__ import annotations

import dataclasses
from typing import Any

from fastapi import APIRouter
from fastapi.concurrency import run_in_threadpool

from api.deps import ServiceDep, SettingsDep, Viewer
from api.schemas import ApiConfig, BuildStatusOut
from api.service import Service
from rag.accounts import Principal, collection_of
from rag.store import BuildStatus, accepted_kinds

router = APIRouter(prefix="/api", tags=["documents"])

HIDDEN = "a document you may not read"


def visible_status(status: BuildStatus, service: Service, principal: Principal) -> BuildStatus:
    """``status`` as ``principal`` may see it: only the documents they may read are named or counted, and
    a phase or error naming another reads "a document you may not read"."""
    if principal.everything:
        return status
    qa = service.qa
    served = qa.index.documents if qa is not None else {}
    named = {*status.pending.get("added", []), *status.pending.get("removed", []), *status.embedding,
             *(f.doc_id for f in status.failed)}
    unserved = sorted(d for d in named if d not in served)
    held = service.store.collections_of(unserved) if unserved else {}

    def readable(doc_id: str) -> bool:
        document = served.get(doc_id)
        collection = collection_of(document) if document is not None else held.get(doc_id)
        return collection is not None and principal.may_read_collection(collection)

    hidden = [d for d in named if not readable(d)]
    hidden += [d for d, doc in served.items() if not principal.may_read(doc)]

    def scrub(text: str | None) -> str | None:
        if text is None:
            return None
        for doc_id in sorted(set(hidden), key=len, reverse=True):
            text = text.replace(doc_id, HIDDEN)
        return text

    return dataclasses.replace(
        status,
        phase=scrub(status.phase),
        last_error=scrub(status.last_error),
        pending={k: [d for d in v if readable(d)] for k, v in status.pending.items()},
        embedding={d: m for d, m in status.embedding.items() if readable(d)},
        failed=[f for f in status.failed if readable(f.doc_id)],
        documents=sum(1 for doc in served.values() if principal.may_read(doc)) if served else 0,
    )


@router.get("/index/status", response_model=BuildStatusOut, summary="The index build status")
async def index_status(service: ServiceDep, principal: Viewer) -> BuildStatusOut:
    """Whether a build runs (after an upload or removal), each of its stages with done/total and rate (a
    document answers once text, chunks, bm25 and minilm's sentences are in), which documents wait or still
    lack some models, which failed and why, the last error. Read from memory: it never waits on a database.
    Only the documents the asker may read are named."""
    return BuildStatusOut.model_validate(visible_status(service.status(), service, principal))


@router.get("/config", response_model=ApiConfig, summary="What this server allows")
async def config(settings: SettingsDep, service: ServiceDep, principal: Viewer) -> dict[str, Any]:
    if principal.via in ("session", "token", "anonymous", "nobody"):
        accounts, uploads = True, principal.via in ("session", "token") and principal.may_write
    else:
        accounts = await run_in_threadpool(service.accounts.active)
        uploads = settings.uploads_enabled
    return {
        "uploads": uploads,
        "max_upload_bytes": settings.max_upload_bytes,
        "accepted_kinds": accepted_kinds(),
        "max_question_chars": settings.max_question_chars,
        "feedback": settings.feedback,
        "accounts": accounts,
    }
