"""Routes /api/documents: list the documents, read one with its full text, add, rename or remove one.

Adding and removing change the corpus folder at once (:mod:`rag.ingest.store`) and queue a background
rebuild (:mod:`rag.index.rebuild`); the answer is 202 while the old index keeps serving until the new one
is swapped in. ``GET /api/index/status`` follows the build.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import QA, ServiceDep, SettingsDep, UploadsOn, ValidRename, ValidUpload, get_qa
from api.errors import ApiError
from api.schemas import (
    DocumentList,
    DocumentOut,
    ErrorResponse,
    RemoveResponse,
    RenameResponse,
    UploadResponse,
)
from api.status import build_status
from rag.index import pgstore
from rag.ingest import store
from rag.types import Document

router = APIRouter(prefix="/api/documents", tags=["documents"])

#: The status code and error type each refusal of the document store gets.
REFUSALS: dict[type[store.DocumentError], tuple[int, str]] = {
    store.TooLarge: (413, "payload_too_large"),
    store.UnsupportedKind: (415, "unsupported_media_type"),
    store.Unreadable: (422, "unreadable_document"),
    store.Duplicate: (409, "conflict"),
    store.NotFound: (404, "not_found"),
    store.LastDocument: (409, "conflict"),
}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


def refused(exc: store.DocumentError) -> ApiError:
    status, kind = REFUSALS.get(type(exc), (422, "invalid_request"))
    return ApiError(status, kind, str(exc))


def _out(doc: Document) -> dict[str, Any]:
    return {**doc.to_dict(), **store.describe(doc)}


# ``async def`` for the reads: they only touch objects already in memory.


@router.get("", response_model=DocumentList, summary="List the documents")
async def list_documents(qa: QA) -> dict[str, Any]:
    return {"documents": [_out(d) for d in qa.documents]}


@router.get(
    "/{doc_id}",
    response_model=DocumentOut,
    responses={404: _error("No document has this id.")},
    summary="One document with its full text and sections",
)
async def get_document(doc_id: str, qa: QA) -> dict[str, Any]:
    """Citation offsets (``start``, ``end``, ``highlight``) index this document's ``text``."""
    document = qa.document(doc_id)
    if document is None:
        raise ApiError(404, "not_found", f"no document with id {doc_id!r}")
    return _out(document)


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "The document: PDF, DOCX, HTML, Markdown or text."}
                    },
                    "required": ["file"],
                }
            }
        },
    }
}


@router.post(
    "",
    status_code=202,
    response_model=UploadResponse,
    openapi_extra=UPLOAD_BODY,
    responses={
        400: _error("The multipart body is malformed."),
        403: _error("Uploads are off (no API key and FORUMQA_ALLOW_UPLOADS unset)."),
        409: _error("The same file (the same bytes) is already in the corpus."),
        413: _error("The file is larger than FORUMQA_MAX_UPLOAD_BYTES."),
        415: _error("Not multipart, the file is no kind of document this server reads (by its bytes), or "
                    "its name says another kind than it holds (fake.pdf holding text)."),
        422: _error("No 'file' field, or the file cannot be read (damaged, empty, encrypted, a scan...)."),
        503: _error("The index is still loading, or the database store is unavailable."),
    },
    summary="Add a document (rebuilt in the background)",
)
async def add_document(upload: ValidUpload, service: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    """Stores the file under an id made from its title and queues a rebuild; answers 202 at once.

    The kind is decided by the file's bytes; a name that says another kind is refused (415), and the
    name is otherwise kept only as metadata. A title field that names nothing ("about:blank",
    "untitled") gives way to the first line of the text or the file's name; the id is the title in
    ASCII (beyoncé -> beyonce), numbered when another document has it (about-blank-2). Until the
    rebuild is swapped in (``GET /api/index/status``), answers come from the previous index.
    """
    try:
        if settings.database:  # the shared store: replicas and workers pick it up from the database
            stored = await run_in_threadpool(
                pgstore.add_document, pgstore.open_database(settings), settings, upload.data, upload.filename
            )
            return {"document": stored.to_dict(), "build": await run_in_threadpool(build_status, service)}
        stored = await run_in_threadpool(
            store.add, settings.corpus_dir, upload.data, upload.filename, settings.max_upload_bytes
        )
    except store.DocumentError as exc:
        raise refused(exc) from None
    return {"document": stored.to_dict(), "build": build_status(service, service.rebuilder.request())}


@router.delete(
    "/{doc_id}",
    status_code=202,
    response_model=RemoveResponse,
    dependencies=[UploadsOn, Depends(get_qa)],  # removals wait for the first index, as uploads do
    responses={
        403: _error("Removals are off (no API key and FORUMQA_ALLOW_UPLOADS unset)."),
        404: _error("No document of the corpus has this id."),
        409: _error("It is the last document."),
        503: _error("The index is still loading."),
    },
    summary="Remove a document (rebuilt in the background)",
)
def remove_document(doc_id: str, service: ServiceDep, settings: SettingsDep) -> dict[str, Any]:
    """Deletes the document's files from the corpus and queues a rebuild; answers 202 at once."""
    try:
        if settings.database:
            removed = pgstore.remove_document(pgstore.open_database(settings), doc_id)
            return {"removed": removed.to_dict(), "build": build_status(service)}
        removed = store.remove(settings.corpus_dir, doc_id)
    except store.DocumentError as exc:
        raise refused(exc) from None
    return {"removed": removed.to_dict(), "build": build_status(service, service.rebuilder.request())}


@router.patch(
    "/{doc_id}",
    status_code=202,
    response_model=RenameResponse,
    dependencies=[UploadsOn, Depends(get_qa)],  # as removals: allowed changes, once an index is loaded
    responses={
        400: _error("The body is not valid JSON."),
        403: _error("Changes are off (no API key and FORUMQA_ALLOW_UPLOADS unset)."),
        404: _error("No document of the corpus has this id."),
        422: _error("The title is missing, blank, too long or holds control characters; unknown fields."),
        503: _error("The index is still loading, or the database store is unavailable."),
    },
    summary="Rename a document (rebuilt in the background)",
)
def rename_document(
    doc_id: str, body: ValidRename, service: ServiceDep, settings: SettingsDep
) -> dict[str, Any]:
    """Gives the document a new title; its id, and so every citation of it, stays. The title is what
    lists, citations and its lead section are called once the rebuild is swapped in; answers 202."""
    try:
        if settings.database:
            renamed = pgstore.rename_document(pgstore.open_database(settings), settings, doc_id, body.title)
            return {"document": renamed.to_dict(), "build": build_status(service)}
        renamed = store.rename(settings.corpus_dir, doc_id, body.title)
    except store.DocumentError as exc:
        raise refused(exc) from None
    return {"document": renamed.to_dict(), "build": build_status(service, service.rebuilder.request())}
