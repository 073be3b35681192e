"""Routes /api/documents: list the documents, read one with its full text, add, rename or remove one.

Adding, renaming and removing go through the store (:mod:`rag.store`), which makes the change searchable
in the background; the answer is 202 while the index being served keeps answering until the new one is
swapped in. ``GET /api/index/status`` follows it.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import APIRouter, Depends
from fastapi.concurrency import run_in_threadpool

from api.deps import QA, ServiceDep, UploadsOn, ValidRename, ValidUpload, Viewer, get_qa
from api.errors import ApiError
from api.routes.index import visible_status
from api.schemas import (
    BuildStatusOut,
    DocumentList,
    DocumentOut,
    DocumentSummaryOut,
    ErrorResponse,
    RemoveResponse,
    RenameResponse,
    StoredDocumentOut,
    UploadResponse,
)
from rag.accounts import Principal, collection_of
from rag.qa import ForumQA
from rag.store import (
    DocumentRefused,
    Duplicate,
    LastDocument,
    NotFound,
    TooLarge,
    Unreadable,
    UnsupportedKind,
    describe,
)
from rag.types import Document

log = logging.getLogger(__name__)

router = APIRouter(prefix="/api/documents", tags=["documents"])

#: The status code and error type each refusal of the store gets.
REFUSALS: dict[type[DocumentRefused], tuple[int, str]] = {
    TooLarge: (413, "payload_too_large"),
    UnsupportedKind: (415, "unsupported_media_type"),
    Unreadable: (422, "unreadable_document"),
    Duplicate: (409, "conflict"),
    NotFound: (404, "not_found"),
    LastDocument: (409, "conflict"),
}


def _error(description: str) -> dict[str, Any]:
    return {"model": ErrorResponse, "description": description}


def refused(exc: DocumentRefused, principal: Principal | None = None) -> ApiError:
    status, kind = REFUSALS.get(type(exc), (422, "invalid_request"))
    message = str(exc)
    if isinstance(exc, Duplicate) and principal is not None and not principal.everything:
        # The message names the document already there, which may be one the asker may not read.
        message = "this file is already in the store"
    return ApiError(status, kind, message)


def _summary(qa: ForumQA, doc: Document) -> DocumentSummaryOut:
    return DocumentSummaryOut(
        id=doc.id, title=doc.title, source=doc.source, metadata=doc.metadata, **describe(doc),
        embedding=list(qa.index.pending.get(doc.id, ())), collection=collection_of(doc),
    )


# ``async def`` for the reads: they only touch objects already in memory.


@router.get("", response_model=DocumentList, summary="List the documents (without their text)")
async def list_documents(qa: QA, principal: Viewer) -> DocumentList:
    """Each served document the asker may read: its id, title, collection, kind, size and pages, and the
    models still embedding it; its text comes from ``GET /api/documents/{doc_id}``."""
    return DocumentList(documents=[_summary(qa, d) for d in qa.documents if principal.may_read(d)])


@router.get(
    "/{doc_id}",
    response_model=DocumentOut,
    responses={404: _error("No document has this id.")},
    summary="One document with its full text and sections",
)
async def get_document(doc_id: str, qa: QA, principal: Viewer) -> DocumentOut:
    """Citation offsets (``start``, ``end``, ``highlight``) index this document's ``text``. A document the
    asker may not read is not found."""
    document = qa.document(doc_id)
    if document is None or not principal.may_read(document):
        raise ApiError(404, "not_found", f"no document with id {doc_id!r}")
    return DocumentOut.model_validate(
        {**_summary(qa, document).model_dump(), "text": document.text, "sections": list(document.sections),
         "pages": list(document.pages) or None}
    )


UPLOAD_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "properties": {
                        "file": {"type": "string", "format": "binary",
                                 "description": "The document: PDF, DOCX, HTML, Markdown or text."},
                        "collection": {"type": "string", "description": "The collection it joins (one the "
                                       "uploader may write; GET /api/session lists them). Default: "
                                       "'default', or the only one the uploader may write."},
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
async def add_document(upload: ValidUpload, service: ServiceDep, principal: Viewer) -> UploadResponse:
    """Stores the file under an id made from its title and starts what makes it searchable; answers 202
    at once.

    The kind is decided by the file's bytes; a name that says another kind is refused (415), and the
    name is otherwise kept only as metadata. A title field that names nothing ("about:blank",
    "untitled") gives way to the first line of the text or the file's name; the id is the title in
    ASCII (beyoncé -> beyonce), numbered when another document has it (about-blank-2). Until the
    new index is swapped in (``GET /api/index/status``), answers come from the one serving.
    """
    try:
        stored = await run_in_threadpool(service.store.add, upload.data, upload.filename, upload.collection)
    except DocumentRefused as exc:
        raise refused(exc, principal) from None
    build = await _recorded(service, principal, "document.add", stored.id,
                            f"{stored.title!r} into {stored.collection or 'default'} "
                            f"({stored.kind}, {stored.size} bytes)")
    return UploadResponse(document=StoredDocumentOut.model_validate(stored), build=build)


def _check_may_change(doc_id: str, qa: ForumQA, principal: Principal, verb: str) -> None:
    """With accounts, a document is changed only by who may write its collection; one the asker may not
    read is not found (its existence is not confirmed)."""
    if principal.everything:
        return
    document = qa.document(doc_id)
    if document is None or not principal.may_read(document):
        raise ApiError(404, "not_found", f"no document with id {doc_id!r} in the corpus")
    if not principal.may_write_collection(collection_of(document)):
        raise ApiError(403, "forbidden", f"you may not {verb} documents of the collection "
                       f"{collection_of(document)!r}")


async def _recorded(
    service: Any, principal: Principal, action: str, target: str, detail: str
) -> BuildStatusOut:
    """After a change the store accepted: the audit record, then the build that will serve it, as the
    asker may see it."""
    await run_in_threadpool(_audit, service, principal, action, target, detail)
    return BuildStatusOut.model_validate(visible_status(service.changed(), service, principal))


def _audit(service: Any, principal: Principal, action: str, target: str, detail: str) -> None:
    """Record who changed a document; a failure to record is logged, never undoes the change."""
    actor = principal.name or {"key": "api-key", "open": "anonymous"}.get(principal.via, principal.via)
    try:
        service.accounts.audit(actor, action, target, detail)
    except Exception as exc:
        log.error("could not record %s of %s by %s in the audit log: %s", action, target, actor, exc)


@router.delete(
    "/{doc_id}",
    status_code=202,
    response_model=RemoveResponse,
    dependencies=[UploadsOn, Depends(get_qa)],  # removals wait for the first index, as uploads do
    responses={
        403: _error("Removals are off (no API key and FORUMQA_ALLOW_UPLOADS unset), or this server may only "
                    "read its database."),
        404: _error("No document of the corpus has this id."),
        409: _error("It is the last document."),
        503: _error("The index is still loading, or the database store is unavailable."),
    },
    summary="Remove a document (rebuilt in the background)",
)
async def remove_document(doc_id: str, service: ServiceDep, qa: QA, principal: Viewer) -> RemoveResponse:
    """Deletes the document from the store and starts what drops it from answers; answers 202 at once.
    With accounts, the asker must be allowed to write the document's collection (one they may not read is
    not found; one not served yet can be removed by an admin only)."""
    _check_may_change(doc_id, qa, principal, "remove")
    try:
        removed = await run_in_threadpool(service.store.remove, doc_id)
    except DocumentRefused as exc:
        raise refused(exc, principal) from None
    build = await _recorded(service, principal, "document.remove", removed.id,
                            f"{removed.title!r} from {removed.collection or 'default'}")
    return RemoveResponse(removed=StoredDocumentOut.model_validate(removed), build=build)


@router.patch(
    "/{doc_id}",
    status_code=202,
    response_model=RenameResponse,
    dependencies=[UploadsOn, Depends(get_qa)],  # as removals: allowed changes, once an index is loaded
    responses={
        400: _error("The body is not valid JSON."),
        403: _error("Changes are off (no API key and FORUMQA_ALLOW_UPLOADS unset), the asker may not write "
                    "the document's collection, or this server may only read its database."),
        404: _error("No document of the corpus has this id."),
        422: _error("The title is missing, blank, too long or holds control characters; unknown fields."),
        503: _error("The index is still loading, or the database store is unavailable."),
    },
    summary="Rename a document (made searchable again in the background)",
)
async def rename_document(
    doc_id: str, body: ValidRename, service: ServiceDep, qa: QA, principal: Viewer
) -> RenameResponse:
    """Gives the document a new title; its id, and so every citation of it, stays. The title is what
    lists, citations and its lead section are called once the store serves it again; answers 202. With
    accounts, the asker must be allowed to write the document's collection, as for removals."""
    _check_may_change(doc_id, qa, principal, "rename")
    try:
        renamed = await run_in_threadpool(service.store.rename, doc_id, body.title)
    except DocumentRefused as exc:
        raise refused(exc, principal) from None
    build = await _recorded(service, principal, "document.rename", renamed.id,
                            f"to {renamed.title!r} in {renamed.collection or 'default'}")
    return RenameResponse(document=StoredDocumentOut.model_validate(renamed), build=build)
