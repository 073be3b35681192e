"""The store: where the documents live, what makes them searchable, and what readers said of the answers.

:func:`open_store` picks the store from the settings, the only place that asks which one it is: the file
store (:mod:`rag.store.files`) or, with ``FORUMQA_DATABASE_URL``, the PostgreSQL store
(:mod:`rag.store.postgres`). Everything a caller needs of a store is named here: the interface
(:class:`Store`), its status and document types, and the errors and refusals it raises.
"""

from __future__ import annotations

from rag.config import Settings
from rag.feedback.records import Feedback, FeedbackFull, eval_records
from rag.index.search_index import IndexUnavailable, SearchIndex
from rag.index.stages import Stages, StageStatus
from rag.ingest.naming import MAX_TITLE_CHARS, clean_new_title  # the titles a rename accepts
from rag.ingest.store import DocumentError as DocumentRefused
from rag.ingest.store import (
    Duplicate,
    LastDocument,
    NotFound,
    StoredDocument,
    TooLarge,
    Unreadable,
    UnsupportedKind,
    accepted_kinds,
    describe,
)
from rag.serving.rebuild import BuildStatus, DocumentFailure
from rag.store.base import DocumentRow, NothingReady, ReadOnlyStore, Store, StoreError, StoreUnavailable

__all__ = [
    "MAX_TITLE_CHARS",
    "BuildStatus",
    "DocumentFailure",
    "DocumentRefused",
    "DocumentRow",
    "Duplicate",
    "Feedback",
    "FeedbackFull",
    "IndexUnavailable",
    "LastDocument",
    "NotFound",
    "NothingReady",
    "ReadOnlyStore",
    "SearchIndex",
    "StageStatus",
    "Stages",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoredDocument",
    "TooLarge",
    "Unreadable",
    "UnsupportedKind",
    "accepted_kinds",
    "clean_new_title",
    "describe",
    "eval_records",
    "open_store",
]


def open_store(settings: Settings) -> Store:
    """The store the settings name: PostgreSQL when ``FORUMQA_DATABASE_URL`` is set, else the folders.
    Opening connects to nothing yet."""
    if settings.database:
        from rag.store.postgres import PostgresStore

        return PostgresStore(settings)
    from rag.store.files import FileStore

    return FileStore(settings)
