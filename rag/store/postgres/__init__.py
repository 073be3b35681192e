"""The PostgreSQL + pgvector store, shared by any number of replicas and workers (``FORUMQA_DATABASE_URL``).

What the database holds (schema: ``migrations/``): each document's original bytes, text, sections, page
starts and metadata; its sentences and chunks with their offsets; passage vectors per model by the sha256
of the text embedded (pgvector, HNSW, cosine); embedding jobs with their progress and errors; readers'
feedback; and a generation counter, moved whenever what is served changes.

A replica serves an in-memory index loaded from the rows (:class:`.rows.Loader`, reading again only the
documents that changed), so answers keep coming while the database is away. One thread polls the database
every ``FORUMQA_POLL_SECONDS``: the generation (reloading when it moved) and the documents' and jobs'
state, which the status route then reads from memory, never waiting on the database. A replica that may
write runs embedding jobs in a builder thread of its own (``FORUMQA_DB_JOBS``), as ``forumqa worker`` does.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from rag.accounts.records import SqlRecords
from rag.config import Settings
from rag.feedback.records import Feedback
from rag.index.build import Until
from rag.index.publish import current_build_dir, load_build, read_manifest
from rag.index.search_index import IndexUnavailable, SearchIndex
from rag.index.stages import TABLE_STAGES, Stages, StageStatus
from rag.ingest.store import StoredDocument
from rag.serving.rebuild import BuildStatus, DocumentFailure, Rebuilder
from rag.serving.reload import Poller
from rag.store.base import DocumentRow, Store
from rag.store.postgres import jobs, rows
from rag.store.postgres.accounts import PostgresRecords
from rag.store.postgres.database import (
    Database,
    DatabaseError,
    DatabaseUnavailable,
    ReadOnlyRole,
    check_schema,
    generation,
    open_database,
)

log = logging.getLogger(__name__)

__all__ = ["Database", "DatabaseError", "DatabaseUnavailable", "PostgresStore", "ReadOnlyRole"]


@dataclass(frozen=True)
class JobRow:
    doc_id: str
    model: str
    state: str  # queued, done, failed
    attempts: int
    done: int
    total: int | None
    error: str | None
    owner: str | None
    leased: bool  # its lease runs (a worker has it now)
    age: float | None  # seconds since its current (or last) attempt started


@dataclass(frozen=True)
class Snapshot:
    """What the last poll read: the generation, the documents and the jobs."""

    generation: int
    documents: list[DocumentRow]
    jobs: list[JobRow]
    taken: float  # monotonic time of the poll


def read_snapshot(conn: Any) -> Snapshot:
    gen = generation(conn)
    job_rows = [
        JobRow(*r)
        for r in conn.execute(
            "SELECT doc_id, model, state, attempts, done, total, last_error, lease_owner, "
            "coalesce(lease_until > now(), false), extract(epoch FROM now() - started)::float8 "
            "FROM forumqa_jobs ORDER BY stage, id"
        )
    ]
    failed = {j.doc_id: f"{j.model}: {j.error}" for j in job_rows if j.state == "failed"}
    documents = [
        DocumentRow(doc_id, "ready" if ready else "failed" if doc_id in failed else "embedding", int(size),
                    failed.get(doc_id), collection)
        for doc_id, ready, size, collection in conn.execute(
            "SELECT id, ready, length(data), coalesce(nullif(metadata->>'collection', ''), 'default') "
            'FROM forumqa_documents ORDER BY sort_key COLLATE "C"'
        )
    ]
    return Snapshot(gen, documents, job_rows, time.monotonic())


class PostgresStore(Store):
    """The shared store of ``FORUMQA_DATABASE_URL``."""

    kind = "postgresql"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings)
        self.db: Database = open_database(settings)
        self.loader = rows.Loader(self.db, settings)
        self.snapshot: Snapshot | None = None
        self._reload: Callable[[], object] = lambda: None
        self._poller: Poller | None = None
        self.rebuilder: Rebuilder | None = None
        self._writable: bool | None = None
        self._accounts: PostgresRecords | None = None

    @property
    def where(self) -> str:
        return f"PostgreSQL at {self.db.where}"

    # ------------------------------------------------------------------------------- the index

    def prepare(self, progress: bool = True) -> None:
        """Check the schema; import the corpus folder (with the file index's vectors) into an empty
        database. Runs no embedding job: a replica serves first, its builder thread embeds."""
        with self.db.connect("opening the store", autocommit=True) as conn:
            check_schema(conn)
            self._writable = rows.can_write(conn)
            empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM forumqa_documents)").fetchone()[0]
        if empty:
            if not self._writable:
                raise ReadOnlyRole(
                    "the database holds no documents and this role may not add them: run `forumqa db import` "
                    "with a role that may write"
                )
            self.import_corpus()

    def import_corpus(self, corpus_dir: Any = None) -> list[str]:
        """Store the corpus folder's documents the database lacks, copying the file index's vectors."""
        index, recipes = None, {}
        try:
            build_dir = current_build_dir(self.settings.index_dir)
            if build_dir is not None:
                index = load_build(self.settings.index_dir, build_dir)
                recipes = (read_manifest(build_dir) or {}).get("embedders", {})
        except (IndexUnavailable, OSError):
            index = None
        return rows.import_corpus(self.db, self.settings, corpus_dir, index, recipes)

    def load(self, progress: bool = True, until: Until = "all") -> SearchIndex:
        if until == "all":
            self.build(progress=progress)
        return self.loader.load()

    def version(self) -> str | None:
        with self.db.connect("reading the generation", autocommit=True) as conn:
            return f"db-generation-{generation(conn)}"

    # ------------------------------------------------------------------------------- documents

    def add(self, data: bytes, filename: str, collection: str | None = None) -> StoredDocument:
        self._check_writable()
        return rows.add_document(self.db, self.settings, data, filename, collection)

    def remove(self, doc_id: str) -> StoredDocument:
        self._check_writable()
        return rows.remove_document(self.db, doc_id)

    def rename(self, doc_id: str, title: str) -> StoredDocument:
        self._check_writable()
        return rows.rename_document(self.db, self.settings, doc_id, title)

    def _check_writable(self) -> None:
        if self._writable is False:
            raise ReadOnlyRole("this server's database role may only read")

    def documents(self) -> list[DocumentRow]:
        with self.db.connect("reading the documents", autocommit=True) as conn:
            return read_snapshot(conn).documents

    def collections_of(self, doc_ids: list[str]) -> dict[str, str]:
        """From the last poll's snapshot, never waiting on the database (the status route calls it)."""
        snap = self.snapshot
        if snap is None:
            return {}
        wanted = set(doc_ids)
        return {d.id: d.collection for d in snap.documents if d.id in wanted}

    def accounts(self) -> SqlRecords:
        if self._accounts is None:
            self._accounts = PostgresRecords(self.db)
        return self._accounts

    def jobs(self) -> list[JobRow]:
        with self.db.connect("reading the jobs", autocommit=True) as conn:
            return read_snapshot(conn).jobs

    def retry(self, doc_ids: list[str] | None = None) -> int:
        return jobs.retry(self.db, doc_ids)

    # ------------------------------------------------------------------------------- work

    def start(self, reload: Callable[[], object], embedders: dict[str, object] | None = None) -> None:
        self._reload = reload
        if self._poller is not None:
            return
        if self.settings.db_jobs and self._may_write():
            given = jobs.Embedders(self.settings)  # with FORUMQA_BUILD_THREADS, not the answering ones
            owner = jobs.worker_id()

            def run_jobs(settings: Settings, **hooks: Any) -> int:
                return jobs.drain(self.db, settings, False, given, owner, **hooks)

            self.rebuilder = Rebuilder(self.settings, reload, run_jobs, name="forumqa-db-jobs")
        self._poller = Poller("following the database", self.settings.poll_seconds, self._poll,
                              name="forumqa-follow")
        self._poller.start()

    def _may_write(self) -> bool:
        if self._writable is None:
            try:
                with self.db.connect("checking the role", autocommit=True) as conn:
                    self._writable = rows.can_write(conn)
            except DatabaseError:
                return False  # asked again at the next start
        return bool(self._writable)

    def _poll(self) -> None:
        with self.db.connect("following the database", autocommit=True) as conn:
            self.snapshot = read_snapshot(conn)
        self._reload()
        if self.rebuilder is not None and not self.rebuilder.busy and any(
            j.state == "queued" and not j.leased and j.attempts < self.settings.db_max_attempts
            for j in self.snapshot.jobs
        ):
            self.rebuilder.request()

    def stop(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        if self.rebuilder is not None:
            self.rebuilder.stop()
            self.rebuilder = None
        self.db.close()

    def build(
        self,
        progress: bool = True,
        until: Until = "all",
        on_stage: Callable[[list[StageStatus]], None] | None = None,
        on_publish: Callable[[object], None] | None = None,
        force: bool = False,
    ) -> int:
        """Import the corpus into an empty database and run the queued jobs here (when the role may write);
        the number of jobs run."""
        self.prepare(progress)
        if not self._writable:
            return 0
        done = jobs.drain(self.db, self.settings, progress, on_stage=on_stage, on_publish=on_publish)
        if done:
            log.info("ran %d embedding job(s)", done)
        return done

    def changed(self) -> BuildStatus:
        if self.rebuilder is not None:
            self.rebuilder.request()
        return self.status(None)

    def status(self, serving: SearchIndex | None) -> BuildStatus:
        mine = self.rebuilder.status() if self.rebuilder is not None else BuildStatus("idle")
        snap = self.snapshot
        poll_error = self._poller.error if self._poller is not None else None
        if snap is None:
            state = mine.state if serving is not None or mine.state != "idle" else "loading"
            return dataclasses.replace(mine, state=state, last_error=mine.last_error or _public(poll_error))
        stages = Stages.of(self.settings)
        queued = [j for j in snap.jobs if j.state == "queued"]
        running = [j for j in queued if j.leased]
        failures = [DocumentFailure(j.doc_id, j.model, j.attempts, j.error or "failed") for j in snap.jobs
                    if j.state == "failed"]
        held = {d.id for d in snap.documents}
        served = set(serving.documents) if serving is not None else set()
        if mine.state == "building" and mine.stages:
            stage_list = [StageStatus(n, "done") for n in TABLE_STAGES] + [
                next((s for s in mine.stages if s.name == m), _model_stage(m, queued, running))
                for m in stages.models
            ]
        else:
            stage_list = [StageStatus(n, "done") for n in TABLE_STAGES] + [
                _model_stage(m, queued, running) for m in stages.models
            ]
        current = running[0] if running else None
        state = "building" if queued else "failed" if failures else "idle"
        if serving is None and state == "idle":
            state = "loading"
        last_error = (poll_error and _public(poll_error)) or mine.last_error or (
            f"{failures[-1].doc_id} ({failures[-1].model}): {failures[-1].error}" if failures else None)
        return dataclasses.replace(
            mine,
            state=state,
            phase=f"embedding {current.doc_id} with {current.model}" if current else None,
            done=current.done if current else None,
            total=current.total if current else None,
            queued=len(queued),
            last_error=last_error,
            stages=stage_list,
            pending={"added": sorted(held - served), "removed": sorted(served - held)} if serving else
            {"added": [], "removed": []},
            documents=len(served),
            serving_build_id=serving.version if serving is not None else None,
            last_build_id=f"db-generation-{snap.generation}",
            embedding={d: list(m) for d, m in serving.pending.items()} if serving is not None else {},
            failed=failures,
        )

    # ------------------------------------------------------------------------------- feedback

    def add_feedback(self, feedback: Feedback) -> None:
        with self.db.connect("storing feedback", write=True) as conn:
            conn.execute("INSERT INTO forumqa_feedback (record) VALUES (%s::json)",
                         (json.dumps(feedback.to_json(), ensure_ascii=False),))

    def feedback(self) -> Iterator[Feedback]:
        with self.db.connect("reading feedback", autocommit=True) as conn:
            records = [r[0] for r in conn.execute("SELECT record FROM forumqa_feedback ORDER BY id")]
        for record in records:
            yield Feedback.from_json(record)

    @property
    def feedback_location(self) -> str:
        return f"the forumqa_feedback table of {self.where}"


def _model_stage(model: str, queued: list[JobRow], running: list[JobRow]) -> StageStatus:
    now = next((j for j in running if j.model == model), None)
    if now is not None:
        seconds = now.age or 0.0
        return StageStatus(model, "running", now.done, now.total, now.done / seconds if seconds and now.done
                           else None, seconds)
    if any(j.model == model for j in queued):
        return StageStatus(model, "waiting")
    return StageStatus(model, "done")


def _public(error: str | None) -> str | None:
    """A poll's error as a client may see it: that the database is away, not where it is."""
    return None if error is None else DatabaseUnavailable.public
