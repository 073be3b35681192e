"""What a store is: where the documents live, what makes them searchable, and what readers said.

Two stores implement it: the file store (a corpus folder and an index folder on one machine,
:mod:`rag.store.files`) and the PostgreSQL store, shared by any number of replicas and workers
(:mod:`rag.store.postgres`). :func:`rag.store.open_store` picks one from the settings; nothing else asks
which one it has.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import ClassVar, Literal

from rag.accounts.model import DEFAULT_COLLECTION
from rag.accounts.records import SqlRecords
from rag.config import Settings
from rag.feedback.records import Feedback
from rag.index.build import Until
from rag.index.search_index import IndexUnavailable, SearchIndex
from rag.index.stages import StageStatus
from rag.ingest.store import StoredDocument
from rag.serving.rebuild import BuildStatus


class StoreError(RuntimeError):
    """Something about the store itself stops an operation (not the document asked about)."""


class StoreUnavailable(StoreError):
    """The store cannot be reached just now (the database is down or restarting, or overloaded); the
    operation may be retried. ``str()`` is for logs; :attr:`public` is what a client is told."""

    public = "the document store is unavailable just now"


class NothingReady(IndexUnavailable, StoreUnavailable):
    """The store holds no document ready to serve yet (another process is embedding the first ones)."""

    public = "the store holds no document ready to serve yet"


class ReadOnlyStore(StoreError):
    """This server may only read the store: changes go to a server that may write."""


DocumentState = Literal["ready", "embedding", "failed"]


@dataclass(frozen=True, slots=True)
class DocumentRow:
    """A document the store holds, as ``forumqa db status`` and the status route see it."""

    id: str
    state: DocumentState  # ready: served; embedding: not served yet; failed: a job gave up on it
    size: int
    error: str | None = None
    collection: str = DEFAULT_COLLECTION  # who may read it (rag/accounts)


class Store(ABC):
    """The interface both stores implement."""

    kind: ClassVar[str]  # "files" or "postgresql"

    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    @abstractmethod
    def where(self) -> str:
        """Where the store is, for people (never a secret)."""

    # ------------------------------------------------------------------------------- the index

    @abstractmethod
    def prepare(self, progress: bool = True) -> None:
        """Get ready to serve, once per server before its workers start: the file store builds until the
        index answers; the database store checks its schema and imports the corpus folder into an empty
        database. No embedding job runs here."""

    @abstractmethod
    def load(self, progress: bool = True, until: Until = "all") -> SearchIndex:
        """The index to serve. ``until="all"`` (the CLI) first does every build step or job this process
        may; "answerable" (a server) only what the index needs to answer, leaving the rest to
        :meth:`start`'s background work. Raises :class:`rag.index.search_index.IndexUnavailable`."""

    @abstractmethod
    def version(self) -> str | None:
        """The version :meth:`load` would give now (cheap: read often); None when nothing is servable."""

    def newer(self, serving: SearchIndex) -> SearchIndex | None:
        """The index to serve when it moved past ``serving``; None when ``serving`` is current."""
        current = self.version()
        if current is None or current == serving.version:
            return None
        return self.load(progress=False, until="answerable")

    # ------------------------------------------------------------------------------- documents

    @abstractmethod
    def add(self, data: bytes, filename: str, collection: str | None = None) -> StoredDocument:
        """Check and store a document in ``collection`` (None: the default one; it goes into the
        document's metadata, see :mod:`rag.accounts`); see :func:`rag.ingest.store.prepare` for the
        refusals. It is made searchable in the background. Raises DocumentError subclasses,
        :class:`StoreError`."""

    @abstractmethod
    def remove(self, doc_id: str) -> StoredDocument:
        """Remove a document. Raises NotFound, LastDocument, :class:`StoreError`."""

    @abstractmethod
    def rename(self, doc_id: str, title: str) -> StoredDocument:
        """Give a document a new title; its id, and so every citation of it, stays. Served under the new
        title once the store has made it searchable again. Raises NotFound, Unreadable (a blank, overlong
        or control-character title), :class:`StoreError`."""

    @abstractmethod
    def documents(self) -> list[DocumentRow]:
        """Every document the store holds, served or not."""

    def collections_of(self, doc_ids: list[str]) -> dict[str, str]:
        """The collection of each of ``doc_ids`` the store holds (served or not): what the status route
        needs to show a user only the documents they may read."""
        if not doc_ids:
            return {}
        wanted = set(doc_ids)
        return {row.id: row.collection for row in self.documents() if row.id in wanted}

    # ------------------------------------------------------------------------------- accounts

    @abstractmethod
    def accounts(self) -> SqlRecords:
        """Where users, sessions, tokens, collections, grants and the audit log are kept (the same object
        on every call): an SQLite file beside the index, or the database's tables."""

    # ------------------------------------------------------------------------------- work

    @abstractmethod
    def start(self, reload: Callable[[], object], embedders: dict[str, object] | None = None) -> None:
        """Start this server's background work: follow the store (``reload`` when it moved) and build what
        is pending (the file store's builds, the database store's jobs, when this server runs them).
        ``embedders``: the models the server already holds, so jobs do not load them twice."""

    @abstractmethod
    def stop(self) -> None:
        """Stop the background work (at shutdown); a running build stops between batches."""

    @abstractmethod
    def build(
        self,
        progress: bool = True,
        until: Until = "all",
        on_stage: Callable[[list[StageStatus]], None] | None = None,
        on_publish: Callable[[object], None] | None = None,
        force: bool = False,
    ) -> object:
        """Do the store's pending work now, in this process (the CLI: ``forumqa build``, ``add``);
        ``force``: rebuild what can be rebuilt even if it is up to date."""

    @abstractmethod
    def changed(self) -> BuildStatus:
        """A document was added or removed through this server: start what makes it servable; the status
        right after."""

    @abstractmethod
    def status(self, serving: SearchIndex | None) -> BuildStatus:
        """The build status against the index ``serving``. Never waits on a database: a route may call it
        on the event loop."""

    # ------------------------------------------------------------------------------- feedback

    @abstractmethod
    def add_feedback(self, feedback: Feedback) -> None:
        """Keep a reader's feedback. Raises FeedbackFull, :class:`StoreError`, OSError."""

    @abstractmethod
    def feedback(self) -> Iterator[Feedback]:
        """Every feedback kept, oldest first."""

    @property
    @abstractmethod
    def feedback_location(self) -> str:
        """Where feedback is kept, for people."""
