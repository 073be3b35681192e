"""The index status the API reports: the background builder's state plus what the corpus has that the
serving index does not (and the reverse)."""

from __future__ import annotations

from typing import Any

from api.service import Service
from rag.index import pgstore
from rag.index.build import stage_names
from rag.index.database import DatabaseError
from rag.index.rebuild import BuildStatus
from rag.ingest.store import corpus_ids


def _documents(service: Service) -> set[str]:
    """Every document id of the store: the corpus folder's, or the database's (ready or embedding)."""
    if service.settings.database:
        ready, embedding = pgstore.corpus_state(pgstore.open_database(service.settings))
        return ready | embedding
    return set(corpus_ids(service.settings.corpus_dir))


def build_status(service: Service, status: BuildStatus | None = None) -> dict[str, Any]:
    """The body of ``GET /api/index/status`` (``status``: the builder's, if just taken)."""
    status = status or service.rebuilder.status()
    qa = service.qa
    served = set(qa.index.documents) if qa is not None else set()
    try:
        in_corpus = _documents(service)
    except (OSError, DatabaseError):
        in_corpus = served
    state: str = status.state
    error = status.last_error
    if qa is None and status.state == "idle":  # the first index is not served yet
        state, error = ("failed", service.error) if service.error is not None else ("loading", None)
    return {
        "state": state,
        "phase": status.phase,
        "done": status.done,
        "total": status.total,
        "queued": status.queued,
        "pending": {
            "added": sorted(in_corpus - served) if qa is not None else [],
            "removed": sorted(served - in_corpus) if qa is not None else [],
        },
        "documents": len(served),
        "serving_build_id": qa.index.build_id if qa is not None else None,
        "last_build_id": status.build_id,
        "builds": status.builds,
        "last_error": error,
        "started_at": status.started_at,
        "seconds": status.seconds,
        "stages": [s.to_dict() for s in status.stages] or _served_stages(service, status.state == "building"),
    }


def _served_stages(service: Service, queued: bool) -> list[dict[str, Any]]:
    """Before this server's builder reported a stage: with a build queued, every stage waits; else the
    stages the serving index has (done) and lacks (waiting)."""
    qa = service.qa
    if qa is None:
        return []
    have = set(qa.index.manifest.get("embedders", {}))
    return [
        {
            "name": name,
            "state": "waiting" if queued else "done" if i < 3 or name in have else "waiting",
            "done": None,
            "total": None,
            "rate": None,
            "seconds": None,
        }
        for i, name in enumerate(stage_names(service.settings))
    ]
