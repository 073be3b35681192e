"""The file store: documents in a corpus folder, their index in an index folder, on one machine.

Adding or removing a document changes the corpus folder at once (:mod:`rag.ingest.store`); a builder
thread in the server that took the change (:class:`rag.serving.rebuild.Rebuilder`, the store's
in-process jobs) then builds and publishes the index in stages (:mod:`rag.index.build`), and every
worker of every server on the folder follows ``index/CURRENT`` (:class:`rag.serving.reload.Poller`).
Feedback is kept as JSON lines beside the builds (:mod:`rag.feedback.jsonl`).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

from rag.accounts.model import DEFAULT_COLLECTION
from rag.accounts.records import SqlRecords
from rag.accounts.sqlite import SqliteRecords
from rag.config import Settings
from rag.feedback import jsonl
from rag.feedback.records import Feedback
from rag.index.build import BuildReport, Until, build_index, ensure_index
from rag.index.publish import current_build_dir, load_build, read_manifest, unfinished
from rag.index.search_index import IndexUnavailable, SearchIndex
from rag.index.stages import Stages, StageStatus
from rag.ingest import store as corpus
from rag.serving.rebuild import BuildStatus, Rebuilder
from rag.serving.reload import Poller
from rag.store.base import DocumentRow, Store

log = logging.getLogger(__name__)


class FileStore(Store):
    """A corpus folder and an index folder (``FORUMQA_CORPUS_DIR``, ``FORUMQA_INDEX_DIR``)."""

    kind = "files"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self._reload: Callable[[], object] = lambda: None
        self.rebuilder = Rebuilder(self.settings, lambda: self._reload())
        self._poller: Poller | None = None
        self._accounts: SqliteRecords | None = None
        self._unloadable: str | None = None  # a published build that failed to load

    @property
    def where(self) -> str:
        return f"{self.settings.corpus_dir} (documents) and {self.settings.index_dir} (index)"

    # ------------------------------------------------------------------------------- the index

    def prepare(self, progress: bool = True) -> None:
        # Built before a server forks its workers, so they all map the same build instead of racing to
        # build it; only until it answers: the servers' builders add the rest while serving.
        ensure_index(self.settings, progress=progress, until="answerable")

    def sweep(self) -> None:
        """Delete what an upload or removal interrupted by a crash left in the corpus folder."""
        try:
            removed = corpus.sweep(self.settings.corpus_dir)
        except OSError as exc:
            log.warning("cannot tidy %s: %s", self.settings.corpus_dir, exc)
            return
        if removed:
            log.info("removed the remains of interrupted document changes: %s", removed)

    def load(self, progress: bool = True, until: Until = "all") -> SearchIndex:
        return ensure_index(self.settings, progress=progress, until=until)

    def version(self) -> str | None:
        build_dir = current_build_dir(self.settings.index_dir)
        return build_dir.name if build_dir is not None else None

    def newer(self, serving: SearchIndex) -> SearchIndex | None:
        """The published build, when it is not ``serving`` (loaded whole; a server never builds here). A
        build that failed to load is not tried again until another is published."""
        build_dir = current_build_dir(self.settings.index_dir)
        if build_dir is None or build_dir.name in (serving.version, self._unloadable):
            return None
        try:
            return load_build(self.settings.index_dir, build_dir)
        except IndexUnavailable:
            self._unloadable = build_dir.name
            raise

    # ------------------------------------------------------------------------------- documents

    def add(self, data: bytes, filename: str, collection: str | None = None) -> corpus.StoredDocument:
        return corpus.add(self.settings.corpus_dir, data, filename, self.settings.max_upload_bytes,
                          collection)

    def remove(self, doc_id: str) -> corpus.StoredDocument:
        return corpus.remove(self.settings.corpus_dir, doc_id)

    def rename(self, doc_id: str, title: str) -> corpus.StoredDocument:
        return corpus.rename(self.settings.corpus_dir, doc_id, title)

    def documents(self) -> list[DocumentRow]:
        manifest = read_manifest(current_build_dir(self.settings.index_dir)) or {}
        fast = Stages.of(self.settings).fast
        pending = manifest.get("pending") if isinstance(manifest.get("pending"), dict) else {}
        built = set(manifest.get("documents") or ())
        rows = []
        for doc_id, path in corpus.corpus_ids(self.settings.corpus_dir).items():
            ready = doc_id in built and fast not in (pending or {}).get(doc_id, ())
            rows.append(DocumentRow(doc_id, "ready" if ready else "embedding", _size(path),
                                    collection=corpus.collection_in(path) or DEFAULT_COLLECTION))
        return rows

    def collections_of(self, doc_ids: list[str]) -> dict[str, str]:
        if not doc_ids:
            return {}
        try:
            paths = corpus.corpus_ids(self.settings.corpus_dir)
        except OSError:
            return {}
        return {d: corpus.collection_in(paths[d]) or DEFAULT_COLLECTION for d in doc_ids if d in paths}

    # ------------------------------------------------------------------------------- accounts

    def accounts(self) -> SqlRecords:
        """``index/accounts.sqlite3`` (or FORUMQA_ACCOUNTS_FILE), beside the builds: a rebuild never
        touches it."""
        if self._accounts is None:
            path = self.settings.accounts_file or self.settings.index_dir / "accounts.sqlite3"
            self._accounts = SqliteRecords(path)
        return self._accounts

    # ------------------------------------------------------------------------------- work

    def start(self, reload: Callable[[], object], embedders: dict[str, object] | None = None) -> None:
        self._reload = reload
        if self.settings.uploads_enabled:
            self.sweep()
        if self.rebuilder.stopped:  # started again after a stop (an app of the tests reusing the store)
            self.rebuilder = Rebuilder(self.settings, lambda: self._reload())
        if self._poller is None:
            self._poller = Poller(f"following {self.settings.index_dir / 'CURRENT'}",
                                  self.settings.poll_seconds, reload, name="forumqa-follow")
            self._poller.start()
        if unfinished(read_manifest(current_build_dir(self.settings.index_dir))):
            log.info("adding the models' missing vectors to the index in the background")
            self.rebuilder.request()

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        self.rebuilder.stop()

    def build(
        self,
        progress: bool = True,
        until: Until = "all",
        on_stage: Callable[[list[StageStatus]], None] | None = None,
        on_publish: Callable[[object], None] | None = None,
        force: bool = False,
    ) -> BuildReport:
        return build_index(self.settings, force=force, progress=progress, until=until, on_stage=on_stage,
                           on_publish=on_publish)

    def changed(self) -> BuildStatus:
        return self.status(None, self.rebuilder.request())

    def status(self, serving: SearchIndex | None, builder: BuildStatus | None = None) -> BuildStatus:
        status = builder or self.rebuilder.status()
        if serving is None:
            return status if status.state != "idle" else dataclasses.replace(status, state="loading")
        served = set(serving.documents)
        try:
            held = set(corpus.corpus_ids(self.settings.corpus_dir))
        except OSError:
            held = served
        return dataclasses.replace(
            status,
            pending={"added": sorted(held - served), "removed": sorted(served - held)},
            documents=len(served),
            serving_build_id=serving.version,
            embedding={d: list(m) for d, m in serving.pending.items()},
            stages=status.stages
            or served_stages(Stages.of(self.settings), serving, status.state == "building"),
        )

    # ------------------------------------------------------------------------------- feedback

    def add_feedback(self, feedback: Feedback) -> None:
        jsonl.append(self.settings.index_dir, feedback, self.settings.feedback_max_file_bytes)

    def feedback(self) -> Iterator[Feedback]:
        return jsonl.read(self.settings.index_dir)

    @property
    def feedback_location(self) -> str:
        return str(jsonl.feedback_file(self.settings.index_dir))


def served_stages(stages: Stages, serving: SearchIndex, queued: bool) -> list[StageStatus]:
    """Before this server's builder reported a stage: with a build queued, every stage waits; else the
    stages the serving index has (done) and lacks for some document (waiting)."""
    lacking = set(serving.pending_models())
    return [
        StageStatus(name, "waiting" if queued or name in lacking else "done")
        for name in stages.names
    ]


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
