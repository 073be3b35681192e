"""Route dependencies: the service, its settings, the loaded ForumQA, who is asking (the principal the
middleware of api/auth.py resolved), and validated request bodies.

Checks that need the settings (question length) live here, so routes receive requests that are
already known to be acceptable and stay one line of work each.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from api.auth import principal_of
from api.errors import ApiError, invalid
from api.schemas import AnswerRequest, FeedbackRequest, RenameRequest, SearchRequest
from api.service import Service
from rag.accounts import AccountError, Principal, collection_name, writable_default
from rag.config import LLMNotConfigured, Settings
from rag.qa import Access, ForumQA, valid_text
from rag.store import clean_new_title

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


async def get_principal(request: Request) -> Principal:
    """Who is asking (api/auth.py): what they may read and write."""
    return principal_of(request.scope)


Viewer = Annotated[Principal, Depends(get_principal)]


def access_of(principal: Principal) -> Access | None:
    """The filter ForumQA applies for ``principal`` (None: it may read everything)."""
    return None if principal.everything else principal.readable_ids


async def admin_only(principal: Viewer) -> Principal:
    if not principal.signed_in and principal.via not in ("open", "key"):
        raise ApiError(401, "unauthorized", "sign in first", headers={"WWW-Authenticate": "Bearer"})
    if not principal.admin:
        raise ApiError(403, "forbidden", "only an admin may see this")
    return principal


Admin = Annotated[Principal, Depends(admin_only)]


def valid_or_422(text: str, field: str, *, allow_empty: bool = False) -> str:
    """``text``, or a 422 with the reason :func:`rag.qa.valid_text` gives (blank, a lone surrogate)."""
    try:
        return valid_text(text, field, allow_empty=allow_empty)
    except ValueError as exc:
        raise invalid(str(exc)) from None


def checked_text(text: str, field: str, settings: Settings) -> str:
    """``text`` stripped; a 422 if it is not Unicode, blank or longer than ``settings.max_question_chars``."""
    stripped = valid_or_422(text, field).strip()
    if len(stripped) > settings.max_question_chars:
        limit = settings.max_question_chars
        raise invalid(f"{field} is {len(stripped)} characters long; the limit is {limit}")
    return stripped


def checked_mode(mode: str, settings: Settings) -> None:
    """A 422 when generative answers are asked for and no LLM is configured (:meth:`Settings.check_mode`)."""
    try:
        settings.check_mode(mode)
    except LLMNotConfigured as exc:
        raise invalid(f"{exc}; use 'extractive' or 'auto'") from None


def known_documents(doc_ids: list[str] | None, qa: ForumQA, principal: Principal) -> None:
    """A 422 naming the ids of ``doc_ids`` that the serving index has no document for, or none the asker
    may read (the same answer: a document one may not read does not exist for one;
    :meth:`ForumQA.documents_filter`)."""
    try:
        qa.documents_filter(doc_ids, access_of(principal))
    except ValueError as exc:
        raise invalid(f"doc_ids: {exc}; GET /api/documents lists the documents") from None


async def answer_request(
    body: AnswerRequest, settings: SettingsDep, qa: QA, principal: Viewer
) -> AnswerRequest:
    checked_mode(body.mode, settings)
    known_documents(body.doc_ids, qa, principal)
    return body.model_copy(update={"question": checked_text(body.question, "question", settings)})


async def search_request(
    body: SearchRequest, settings: SettingsDep, qa: QA, principal: Viewer
) -> SearchRequest:
    known_documents(body.doc_ids, qa, principal)
    return body.model_copy(update={"query": checked_text(body.query, "query", settings)})


ValidAnswerRequest = Annotated[AnswerRequest, Depends(answer_request)]
ValidSearchRequest = Annotated[SearchRequest, Depends(search_request)]


async def uploads_on(settings: SettingsDep, principal: Viewer) -> None:
    """A 401/403 unless the asker may change documents over HTTP: with accounts, an editor or admin with a
    collection to write; without, when the server allows it (the API key is checked by middleware)."""
    if principal.via in ("session", "token"):
        if not principal.may_write:
            raise ApiError(403, "forbidden", f"{principal.name} ({principal.role}) has no collection to "
                           "write, so may not add or remove documents")
        return
    if principal.via in ("anonymous", "nobody"):
        raise ApiError(401, "unauthorized", "sign in as an editor to add or remove documents",
                       headers={"WWW-Authenticate": "Bearer"})
    if not settings.uploads_enabled:
        raise ApiError(403, "forbidden", "adding and removing documents is off on this server: set "
                       "FORUMQA_API_KEY (then send it as a bearer token) or FORUMQA_ALLOW_UPLOADS=1, or "
                       "create accounts (README, \"Accounts\")")


UploadsOn = Depends(uploads_on)


@dataclass(frozen=True, slots=True)
class Upload:
    """An uploaded file's bytes and the name the client gave it (metadata only, never a path)."""

    data: bytes
    filename: str
    collection: str | None  # None: the default collection


def upload_collection(given: object, service: Service, principal: Principal) -> str | None:
    """The collection an upload goes to: the form's ``collection`` (which must exist and be writable by
    the asker), else the default one (or the only one the asker may write)."""
    if (given is None or given == "") and principal.via in ("open", "key"):
        return None  # the default collection, as every upload before accounts
    try:
        known = service.accounts.collections()
    except Exception as exc:  # the store's accounts are unreachable: the upload cannot be placed
        raise ApiError(503, "unavailable", "the server cannot read its collections just now",
                       headers={"Retry-After": "5"}) from exc
    if given is None or given == "":
        chosen = writable_default(principal, known)
        if chosen is None:
            raise invalid("name the collection to add the document to (form field 'collection'): one of "
                          + ", ".join(c for c in known if principal.may_write_collection(c)))
        return chosen
    if not isinstance(given, str):
        raise invalid("'collection' must be a collection's name")
    try:
        name = collection_name(given)
    except AccountError as exc:
        raise invalid(str(exc)) from None
    if name not in known or not principal.may_write_collection(name):
        raise ApiError(403, "forbidden", f"you may not add documents to the collection {name!r}")
    return name


async def upload_file(request: Request, settings: SettingsDep, _: Annotated[None, UploadsOn],
                      qa: QA, service: ServiceDep, principal: Viewer) -> Upload:
    """The file of a ``multipart/form-data`` upload (field ``file``), read once the checks passed.

    The body is parsed here rather than by a ``File()`` parameter, because FastAPI parses declared
    bodies before any dependency runs: an upload to a server with uploads off would be read first.
    """
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != "multipart/form-data":
        raise ApiError(415, "unsupported_media_type",
                       "send the document as multipart/form-data, in a field named 'file'")
    form = await request.form(max_files=1, max_fields=10)
    try:
        file = form.get("file")
        if not isinstance(file, UploadFile):
            raise invalid("no file: send the document in a multipart field named 'file'")
        collection = await run_in_threadpool(upload_collection, form.get("collection"), service, principal)
        data = await file.read(settings.max_upload_bytes + 1)
        return Upload(data, file.filename or "", collection)
    finally:
        await form.close()


ValidUpload = Annotated[Upload, Depends(upload_file)]


async def rename_request(body: RenameRequest) -> RenameRequest:
    """The new title, spaces collapsed; a 422 when blank, not Unicode or holding control characters."""
    valid_or_422(body.title, "title")
    try:
        return body.model_copy(update={"title": clean_new_title(body.title)})
    except ValueError as exc:
        raise invalid(str(exc)) from None


ValidRename = Annotated[RenameRequest, Depends(rename_request)]


async def feedback_on(settings: SettingsDep) -> None:
    """A 403 unless the server takes feedback; a route dependency, so it answers before the body is read."""
    if not settings.feedback:
        raise ApiError(403, "forbidden", "feedback is off on this server (set FORUMQA_FEEDBACK=1 to take it)")


FeedbackOn = Depends(feedback_on)


async def feedback_request(body: FeedbackRequest, settings: SettingsDep) -> FeedbackRequest:
    valid_or_422(body.answer, "answer")
    valid_or_422(body.comment, "comment", allow_empty=True)
    for i, turn in enumerate(body.history):
        valid_or_422(turn.content, f"history turn {i + 1}", allow_empty=True)
    return body.model_copy(update={
        "question": checked_text(body.question, "question", settings),
        "comment": body.comment.strip(),
    })


ValidFeedback = Annotated[FeedbackRequest, Depends(feedback_request)]
