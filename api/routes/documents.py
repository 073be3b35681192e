"""Routes /api/documents: the report's documents with full text, to show citations in context."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from api.deps import QA
from api.errors import ApiError
from api.schemas import DocumentList, DocumentOut, ErrorResponse

router = APIRouter(prefix="/api/documents", tags=["documents"])

# ``async def``: these only read objects already in memory, no need for a threadpool hop.


@router.get("", response_model=DocumentList, summary="List the documents")
async def list_documents(qa: QA) -> dict[str, Any]:
    return {"documents": [d.to_dict() for d in qa.documents]}


@router.get(
    "/{doc_id}",
    response_model=DocumentOut,
    responses={404: {"model": ErrorResponse, "description": "No document has this id."}},
    summary="One document with its full text and sections",
)
async def get_document(doc_id: str, qa: QA) -> dict[str, Any]:
    """Citation offsets (``start``, ``end``, ``highlight``) index this document's ``text``."""
    document = qa.document(doc_id)
    if document is None:
        raise ApiError(404, "not_found", f"no document with id {doc_id!r}")
    return document.to_dict()
