"""Embedding jobs of the database store: claimed with ``FOR UPDATE SKIP LOCKED`` under a short lease.

A job is one document and one model. A worker (``forumqa worker``, or a serving replica's builder
thread) claims the queued job of the lowest stage whose lease is free or expired, embeds the document's
texts that model has no vector for yet, sentences first, and stores them every two seconds, recording its
progress. A heartbeat renews the lease every third of ``FORUMQA_DB_LEASE_SECONDS`` (10 s) whatever the
model is doing, so a killed worker's job is taken over within about the lease. When the fast model's
sentences are stored the document is made ready (served, with chunk vectors derived from its sentences
until its chunks follow); when a job is done the generation moves, naming the document, so every replica
reloads that document.

A job that fails is tried again after a pause that doubles (2, 4, 8... seconds), and after
``FORUMQA_DB_MAX_ATTEMPTS`` tries it is marked failed with its error, which ``/api/index/status``, the page
and ``forumqa db status`` show; ``forumqa db retry`` queues it again. Nothing is lost when a worker dies:
the vectors it stored stay (keyed by text, not by job), and the next worker embeds only what is missing.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from rag.config import Settings
from rag.hashing import sha256_text
from rag.index.embedders import EMBEDDERS, Embedder, get_embedder
from rag.index.fingerprint import derives_chunks
from rag.index.search_index import chunk_embed_text
from rag.index.stages import Stages, StageStatus, progress_bar
from rag.store.postgres.database import (
    Database,
    DatabaseError,
    ReadOnlyRole,
    bump_generation,
    decode_text,
    encoder_of,
    put_vectors,
)

log = logging.getLogger(__name__)

# Store what was embedded at least this often (seconds): what a killed worker can lose.
FLUSH_SECONDS = 2.0


class LeaseLost(RuntimeError):
    """Another worker took the job over (our lease expired)."""


@dataclass(frozen=True)
class Job:
    id: int
    doc_id: str
    model: str
    stage: int
    attempts: int


def worker_id() -> str:
    """Who holds a lease, for the jobs table and the logs: host, pid and a random tail."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def claim(db: Database, owner: str, lease_seconds: float, models: list[str], max_attempts: int) -> Job | None:
    """The next job for one of ``models``, leased to ``owner``; None when none is free."""
    with db.connect("claiming a job") as conn:
        # A job whose workers all stopped (killed) before finishing it, as often as it may be tried.
        conn.execute(
            "UPDATE forumqa_jobs SET state = 'failed', finished = now(), lease_owner = NULL, "
            "lease_until = NULL, "
            "last_error = coalesce(last_error, 'the workers running it stopped before it was done') "
            "WHERE state = 'queued' AND attempts >= %s AND lease_until < now()",
            (max_attempts,),
        )
        row = conn.execute(
            "UPDATE forumqa_jobs SET lease_owner = %s, lease_until = now() + make_interval(secs => %s), "
            "attempts = attempts + 1, started = now(), renewed = now(), done = 0, total = NULL "
            "WHERE id = (SELECT id FROM forumqa_jobs WHERE state = 'queued' AND model = ANY(%s) "
            "AND attempts < %s AND (lease_until IS NULL OR lease_until < now()) ORDER BY stage, id "
            "FOR UPDATE SKIP LOCKED LIMIT 1) "
            "RETURNING id, doc_id, model, stage, attempts",
            (owner, lease_seconds, models, max_attempts),
        ).fetchone()
    return Job(*row) if row else None


def job_texts(conn: Any, doc_id: str, chunks_too: bool = True) -> tuple[list[str], list[str]]:
    """What the file store embeds for a document: (its sentences, its chunks: section title + text), no
    chunks when the model's chunk vectors are derived from its sentences (``chunks_too`` false)."""
    row = conn.execute("SELECT text FROM forumqa_documents WHERE id = %s", (doc_id,)).fetchone()
    if row is None:
        return [], []
    text = decode_text(row[0])
    from rag.types import Chunk

    sentences = [
        text[start:end]
        for start, end in conn.execute(
            "SELECT start_at, end_at FROM forumqa_sentences WHERE doc_id = %s ORDER BY ord", (doc_id,)
        )
    ]
    chunks = [] if not chunks_too else [
        chunk_embed_text(Chunk(0, doc_id, decode_text(section), start, end, text[start:end], ()))
        for section, start, end in conn.execute(
            "SELECT section, start_at, end_at FROM forumqa_chunks WHERE doc_id = %s ORDER BY ord", (doc_id,)
        )
    ]
    return sentences, chunks


def missing_texts(conn: Any, model: str, texts: list[str]) -> dict[str, str]:
    """sha256 -> text for the texts ``model`` has no vector for (by the current encoder)."""
    keys = {sha256_text(t): t for t in texts}
    have = {
        r[0]
        for r in conn.execute(
            "SELECT text_sha256 FROM forumqa_embeddings WHERE model = %s AND encoder = %s::jsonb "
            "AND text_sha256 = ANY(%s)",
            (model, encoder_of(model), list(keys)),
        )
    }
    return {k: t for k, t in keys.items() if k not in have}


class _Lease:
    """Renews a job's lease every third of the lease, and records its progress, from a thread of its own
    (so a slow batch never lets the lease lapse); :attr:`lost` once another worker has it."""

    def __init__(self, db: Database, job: Job, owner: str, seconds: float) -> None:
        self.db, self.job, self.owner, self.seconds = db, job, owner, seconds
        self.done, self.total = 0, 0
        self.lost = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=f"forumqa-lease-{job.id}", daemon=True)

    def __enter__(self) -> _Lease:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)

    def _loop(self) -> None:
        while not self._stop.wait(self.seconds / 3):
            try:
                self.renew()
            except LeaseLost:
                self.lost = True
                return
            except DatabaseError as exc:  # the lease runs on; the next round tries again
                log.warning("job %d: cannot renew its lease: %s", self.job.id, exc)

    def renew(self) -> None:
        with self.db.connect("renewing a lease") as conn:
            cur = conn.execute(
                "UPDATE forumqa_jobs SET lease_until = now() + make_interval(secs => %s), renewed = now(), "
                "done = %s, total = %s WHERE id = %s AND lease_owner = %s AND state = 'queued'",
                (self.seconds, self.done, self.total, self.job.id, self.owner),
            )
            if cur.rowcount != 1:
                raise LeaseLost(f"job {self.job.id} ({self.job.doc_id}, {self.job.model}) was taken over by "
                                "another worker")

    def check(self) -> None:
        if self.lost:
            raise LeaseLost(f"job {self.job.id} ({self.job.doc_id}, {self.job.model}) was taken over by "
                            "another worker")


def run(db: Database, settings: Settings, job: Job, embedder: Embedder, owner: str, progress: bool,
        on_progress: Callable[[int, int], None] | None = None) -> int:
    """Do ``job``: embed what is missing (sentences first), store it, finish. Returns texts embedded.
    Raises LeaseLost."""
    fast = job.model == Stages.of(settings).fast
    with db.connect("reading a job's texts") as conn:
        sentences, chunks = job_texts(conn, job.doc_id, chunks_too=not derives_chunks(settings, job.model))
        missing_sentences = missing_texts(conn, job.model, sentences)
        missing_chunks = {k: t for k, t in missing_texts(conn, job.model, chunks).items()
                          if k not in missing_sentences}
    # Shortest first within each part, so a batch holds texts of about one length (as the file build does).
    parts = [sorted(part.items(), key=lambda item: (len(item[1]), item[0]))
             for part in (missing_sentences, missing_chunks)]
    total = sum(len(p) for p in parts)
    log.info("job %d: embedding %d text(s) of %r with %s (attempt %d)",
             job.id, total, job.doc_id, job.model, job.attempts)
    batch_size = max(1, embedder.passage_batch)
    with _Lease(db, job, owner, settings.db_lease_seconds) as lease, \
            progress_bar(total, f"job {job.id}: {job.doc_id} with {job.model}", progress) as bar:
        lease.total = total
        pending: dict[str, np.ndarray] = {}
        last_flush = time.monotonic()
        for number, part in enumerate(parts):
            for i in range(0, len(part), batch_size):
                lease.check()
                batch = part[i : i + batch_size]
                vectors = embedder.encode_passages([t for _, t in batch])
                for (key, _), vector in zip(batch, vectors, strict=True):
                    pending[key] = np.array(vector, dtype=np.float32)
                bar.update(len(batch))
                lease.done += len(batch)
                if on_progress is not None:
                    on_progress(lease.done, total)
                if time.monotonic() - last_flush >= FLUSH_SECONDS:
                    lease.check()
                    put_vectors(db, job.model, pending)
                    pending.clear()
                    last_flush = time.monotonic()
            lease.check()
            put_vectors(db, job.model, pending)
            pending.clear()
            if number == 0 and fast:
                make_ready(db, job, owner)  # its sentences answer: served now, chunks derived until stored
        lease.renew()
        finish(db, job, owner)
    return total


def make_ready(db: Database, job: Job, owner: str) -> None:
    """The fast model's sentences of the document are stored: serve it (a generation naming it)."""
    with db.connect("making a document ready") as conn:
        row = conn.execute(
            "UPDATE forumqa_documents SET ready = true WHERE id = %s AND NOT ready AND EXISTS "
            "(SELECT 1 FROM forumqa_jobs WHERE id = %s AND lease_owner = %s AND state = 'queued') "
            "RETURNING id",
            (job.doc_id, job.id, owner),
        ).fetchone()
        if row is not None:
            bump_generation(conn, job.doc_id)
            log.info("job %d: %r is served (its %s sentences are in)", job.id, job.doc_id, job.model)


def finish(db: Database, job: Job, owner: str) -> None:
    """Mark ``job`` done and move the generation, naming its document, so replicas reload it."""
    with db.connect("finishing a job") as conn:
        cur = conn.execute(
            "UPDATE forumqa_jobs SET state = 'done', finished = now(), lease_until = NULL, done = total, "
            "last_error = NULL WHERE id = %s AND lease_owner = %s AND state = 'queued'",
            (job.id, owner),
        )
        if cur.rowcount != 1:
            raise LeaseLost(f"job {job.id} was taken over before it finished")
        ready = conn.execute("SELECT ready FROM forumqa_documents WHERE id = %s", (job.doc_id,)).fetchone()
        if ready and ready[0]:
            bump_generation(conn, job.doc_id)
    log.info("job %d done: %r embedded with %s", job.id, job.doc_id, job.model)


def fail(db: Database, job: Job, owner: str, error: str, max_attempts: int) -> bool:
    """Record why ``job`` failed: tried again after a pause that doubles, or marked failed after
    ``max_attempts`` tries. True when it is failed for good."""
    final = job.attempts >= max_attempts
    pause = min(300.0, 2.0 ** job.attempts)
    with db.connect("recording a failed job") as conn:
        conn.execute(
            "UPDATE forumqa_jobs SET last_error = %s, state = CASE WHEN %s THEN 'failed' ELSE state END, "
            "lease_owner = CASE WHEN %s THEN NULL ELSE lease_owner END, "
            "lease_until = CASE WHEN %s THEN NULL ELSE now() + make_interval(secs => %s) END, "
            "finished = CASE WHEN %s THEN now() ELSE finished END "
            "WHERE id = %s AND lease_owner = %s",
            (error[:2000], final, final, final, pause, final, job.id, owner),
        )
    return final


def retry(db: Database, doc_ids: list[str] | None = None) -> int:
    """Queue failed jobs again (of ``doc_ids``, or all) with their attempts reset; how many."""
    with db.connect("retrying failed jobs", write=True) as conn:
        cur = conn.execute(
            "UPDATE forumqa_jobs SET state = 'queued', attempts = 0, lease_owner = NULL, lease_until = NULL, "
            "finished = NULL WHERE state = 'failed' AND (%s::text[] IS NULL OR doc_id = ANY(%s::text[]))",
            (doc_ids, doc_ids),
        )
        return int(cur.rowcount)


class Embedders:
    """The passage encoders a worker uses, each loaded once, on first need (or given, by a server)."""

    def __init__(self, settings: Settings, given: dict[str, Embedder] | None = None) -> None:
        self.settings = settings
        self._loaded = dict(given or {})

    def __call__(self, name: str) -> Embedder:
        if name not in self._loaded:
            self._loaded[name] = get_embedder(name, self.settings.build_threads, self.settings.query_encoder)
        return self._loaded[name]


def drain(
    db: Database,
    settings: Settings,
    progress: bool = True,
    embedders: Embedders | None = None,
    owner: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
    on_stage: Callable[[list[StageStatus]], None] | None = None,
    on_publish: Callable[[object], None] | None = None,
) -> int:
    """Run jobs until none is free (or ``should_stop``); the number done. ``on_stage`` hears the running
    job as a stage (its model, texts done of total); ``on_publish`` each time a document was made ready
    or a job finished."""
    owner = owner or worker_id()
    embedders = embedders or Embedders(settings)
    models = [m for m in settings.embedders if m in EMBEDDERS]
    done = 0
    while not should_stop():
        job = claim(db, owner, settings.db_lease_seconds, models, settings.db_max_attempts)
        if job is None:
            return done
        stage = StageStatus(job.model, "running", 0, None, None, 0.0, time.perf_counter())

        def report(n: int, total: int, stage: StageStatus = stage) -> None:
            stage.done, stage.total = n, total
            stage.seconds = time.perf_counter() - (stage.started or 0.0)
            stage.rate = n / stage.seconds if stage.seconds > 0 and n else None
            if on_stage is not None:
                on_stage([stage])

        try:
            run(db, settings, job, embedders(job.model), owner, progress, report)
            done += 1
            if on_publish is not None:
                on_publish(job.doc_id)
        except LeaseLost as exc:
            log.warning("%s; leaving it to that worker", exc)
        except DatabaseError:
            raise  # the caller waits for the database; the lease lets another worker take the job
        except Exception as exc:  # a model failed on this document: record why
            error = f"{type(exc).__name__}: {exc}"
            final = _fail_quietly(db, job, owner, error, settings.db_max_attempts)
            if final:
                log.error("job %d (%r with %s) failed %d times and is given up: %s (`forumqa db retry "
                          "%s` queues it again)", job.id, job.doc_id, job.model, job.attempts, error,
                          job.doc_id)
            else:
                log.warning("job %d (%r with %s) failed (attempt %d of %d): %s", job.id, job.doc_id,
                            job.model, job.attempts, settings.db_max_attempts, error)
    return done


def _fail_quietly(db: Database, job: Job, owner: str, error: str, max_attempts: int) -> bool:
    try:
        return fail(db, job, owner, error, max_attempts)
    except DatabaseError:
        return False  # the log has it; the lease runs out and the job is tried again


def work(settings: Settings, db: Database, *, once: bool = False, progress: bool = True,
         stop: threading.Event | None = None) -> int:
    """``forumqa worker``: run jobs as they come (polling every ``poll_seconds``); ``once``: until no job
    is queued (waiting out the lease of a job another worker holds). Survives the database going away
    (waits and retries, saying so once). A role that may only read raises :class:`ReadOnlyRole` at once.
    Returns jobs done."""
    from rag.store.postgres.rows import can_write

    owner = worker_id()
    embedders = Embedders(settings)
    stop = stop or threading.Event()
    with db.connect("starting the worker", autocommit=True) as conn:
        if not can_write(conn):
            raise ReadOnlyRole("this database role may only read: a worker needs a role that may write the "
                               "jobs and vectors (see README, \"A read-only replica\")")
    total = 0
    away: str | None = None
    log.info("worker %s: running embedding jobs for %s", owner, ", ".join(settings.embedders))
    while not stop.is_set():
        try:
            total += drain(db, settings, progress, embedders, owner, stop.is_set)
            queued = _queued(db, settings)
        except ReadOnlyRole:
            raise
        except DatabaseError as exc:
            if away is None:
                log.warning("worker %s: %s; waiting for the database", owner, exc)
            away = str(exc)
            stop.wait(max(1.0, settings.poll_seconds))
            continue
        if away is not None:
            log.info("worker %s: the database is back", owner)
            away = None
        if once and not queued:
            break  # nothing queued at all (a job leased by another worker waits for its lease to end)
        stop.wait(settings.poll_seconds)
    return total


def _queued(db: Database, settings: Settings) -> int:
    """Jobs still queued (leased or not) that could be run, for ``--once``."""
    with db.connect("counting jobs", autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM forumqa_jobs WHERE state = 'queued' AND model = ANY(%s) AND attempts < %s",
            ([m for m in settings.embedders if m in EMBEDDERS], settings.db_max_attempts),
        ).fetchone()
    return int(row[0])
