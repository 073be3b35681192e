"""Embedding jobs of the database store: claimed with ``FOR UPDATE SKIP LOCKED`` under a lease.

A job is one document and one model. A worker (``forumqa worker``, or a serving replica's job thread)
claims the queued job of the lowest stage whose lease is free or expired, embeds the texts of the
document that model has no vector for yet, and stores the vectors batch by batch while renewing its lease.
When it is done it marks the job done, makes the document ready when this was its first stage, and bumps
the generation so every replica reloads.

Nothing is lost when a worker dies mid-job: the vectors it stored stay (they are keyed by text, not by
job), its lease runs out after ``FORUMQA_DB_LEASE_SECONDS``, and the next worker to claim the job embeds
only what is still missing. A worker that finds its lease taken over stops without marking anything.
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
from rag.index.build import chunk_embed_text, embedder_fingerprint, progress_bar
from rag.index.database import (
    Database,
    DatabaseError,
    bump_generation,
    decode_text,
    open_database,
    put_vectors,
)
from rag.index.embedders import EMBEDDERS, Embedder, get_embedder

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


def claim(db: Database, owner: str, lease_seconds: float, models: list[str]) -> Job | None:
    """The next job for one of ``models``, leased to ``owner``; None when none is free."""
    with db.connect("claiming a job") as conn:
        row = conn.execute(
            "UPDATE forumqa_jobs SET lease_owner = %s, lease_until = now() + make_interval(secs => %s), "
            "attempts = attempts + 1 "
            "WHERE id = (SELECT id FROM forumqa_jobs WHERE state = 'queued' AND model = ANY(%s) "
            "AND (lease_until IS NULL OR lease_until < now()) ORDER BY stage, id "
            "FOR UPDATE SKIP LOCKED LIMIT 1) "
            "RETURNING id, doc_id, model, stage, attempts",
            (owner, lease_seconds, models),
        ).fetchone()
    return Job(*row) if row else None


def renew(conn: Any, job: Job, owner: str, lease_seconds: float) -> None:
    cur = conn.execute(
        "UPDATE forumqa_jobs SET lease_until = now() + make_interval(secs => %s) "
        "WHERE id = %s AND lease_owner = %s AND state = 'queued'",
        (lease_seconds, job.id, owner),
    )
    if cur.rowcount != 1:
        raise LeaseLost(f"job {job.id} ({job.doc_id}, {job.model}) was taken over by another worker")


def job_texts(conn: Any, doc_id: str, chunks_too: bool = True) -> list[str]:
    """What the file store embeds for a document: its chunks (section title + text) unless the model's
    chunk vectors are derived from its sentences (``chunks_too`` false), then its sentences."""
    row = conn.execute("SELECT text FROM forumqa_documents WHERE id = %s", (doc_id,)).fetchone()
    if row is None:
        return []
    text = decode_text(row[0])
    from rag.types import Chunk

    chunks = [] if not chunks_too else [
        chunk_embed_text(Chunk(0, doc_id, decode_text(section), start, end, text[start:end], ()))
        for section, start, end in conn.execute(
            "SELECT section, start_at, end_at FROM forumqa_chunks WHERE doc_id = %s ORDER BY ord", (doc_id,)
        )
    ]
    sentences = [
        text[start:end]
        for start, end in conn.execute(
            "SELECT start_at, end_at FROM forumqa_sentences WHERE doc_id = %s ORDER BY ord", (doc_id,)
        )
    ]
    return chunks + sentences


def missing_texts(conn: Any, model: str, texts: list[str]) -> dict[str, str]:
    """sha256 -> text for the texts ``model`` has no vector for (by the current encoder)."""
    keys = {sha256_text(t): t for t in texts}
    have = {
        r[0]
        for r in conn.execute(
            "SELECT text_sha256 FROM forumqa_embeddings WHERE model = %s AND encoder = %s::jsonb "
            "AND text_sha256 = ANY(%s)",
            (model, _encoder(model), list(keys)),
        )
    }
    return {k: t for k, t in keys.items() if k not in have}


def _encoder(model: str) -> str:
    import json

    return json.dumps(embedder_fingerprint(EMBEDDERS[model]))


def run(db: Database, settings: Settings, job: Job, embedder: Embedder, owner: str, progress: bool) -> int:
    """Do ``job``: embed what is missing, store it, finish. Returns texts embedded. Raises LeaseLost."""
    lease = settings.db_lease_seconds
    with db.connect("reading a job's texts") as conn:
        texts = job_texts(conn, job.doc_id, chunks_too=job.model not in settings.derived_chunk_vectors)
        missing = missing_texts(conn, job.model, texts)
    # Shortest first, so a batch holds texts of about one length (as the file build does).
    todo = sorted(missing.items(), key=lambda item: (len(item[1]), item[0]))
    log.info("job %d: embedding %d text(s) of %r with %s (attempt %d)",
             job.id, len(todo), job.doc_id, job.model, job.attempts)
    batch_size = max(1, embedder.passage_batch)
    pending: dict[str, np.ndarray] = {}
    last_flush = time.monotonic()
    with progress_bar(len(todo), f"job {job.id}: {job.doc_id} with {job.model}", progress) as bar:
        for i in range(0, len(todo), batch_size):
            batch = todo[i : i + batch_size]
            vectors = embedder.encode_passages([t for _, t in batch])
            for (key, _), vector in zip(batch, vectors, strict=True):
                pending[key] = np.array(vector, dtype=np.float32)
            bar.update(len(batch))
            if time.monotonic() - last_flush >= FLUSH_SECONDS:
                _flush(db, job, owner, lease, pending)
                last_flush = time.monotonic()
    _flush(db, job, owner, lease, pending)
    finish(db, job, owner)
    return len(todo)


def _flush(db: Database, job: Job, owner: str, lease: float, pending: dict[str, np.ndarray]) -> None:
    """Store the vectors embedded so far and renew the lease (or learn that it was lost)."""
    with db.connect("renewing a lease") as conn:
        renew(conn, job, owner, lease)
    put_vectors(db, job.model, pending)
    pending.clear()


def finish(db: Database, job: Job, owner: str) -> None:
    """Mark ``job`` done; the document becomes ready when its first stage is done; bump the generation."""
    with db.connect("finishing a job") as conn:
        cur = conn.execute(
            "UPDATE forumqa_jobs SET state = 'done', finished = now(), lease_until = NULL "
            "WHERE id = %s AND lease_owner = %s AND state = 'queued'",
            (job.id, owner),
        )
        if cur.rowcount != 1:
            raise LeaseLost(f"job {job.id} was taken over before it finished")
        conn.execute(
            "UPDATE forumqa_documents SET ready = true WHERE id = %s AND NOT ready AND "
            "(SELECT state FROM forumqa_jobs WHERE doc_id = %s ORDER BY stage, id LIMIT 1) = 'done'",
            (job.doc_id, job.doc_id),
        )
        ready = conn.execute("SELECT ready FROM forumqa_documents WHERE id = %s", (job.doc_id,)).fetchone()
        if ready and ready[0]:
            bump_generation(conn, f"{job.doc_id} embedded with {job.model}")
    log.info("job %d done: %r embedded with %s", job.id, job.doc_id, job.model)


class Embedders:
    """The passage encoders a worker uses, each loaded once, on first need (or given, by a server)."""

    def __init__(self, settings: Settings, given: dict[str, Embedder] | None = None) -> None:
        self.settings = settings
        self._loaded = dict(given or {})

    def __call__(self, name: str) -> Embedder:
        if name not in self._loaded:
            self._loaded[name] = get_embedder(name, self.settings.threads, self.settings.query_encoder)
        return self._loaded[name]


def drain(
    db: Database,
    settings: Settings,
    progress: bool = True,
    embedders: Embedders | None = None,
    owner: str | None = None,
    should_stop: Callable[[], bool] = lambda: False,
) -> int:
    """Run jobs until none is free (or ``should_stop``); the number done."""
    owner = owner or worker_id()
    embedders = embedders or Embedders(settings)
    models = [m for m in settings.embedders if m in EMBEDDERS]
    done = 0
    while not should_stop():
        job = claim(db, owner, settings.db_lease_seconds, models)
        if job is None:
            return done
        try:
            run(db, settings, job, embedders(job.model), owner, progress)
            done += 1
        except LeaseLost as exc:
            log.warning("%s; leaving it to that worker", exc)
        except DatabaseError:
            raise  # the caller waits for the database; the lease lets another worker take the job
        except Exception as exc:  # a model failed on this document: record why, retry after the lease
            log.exception("job %d (%r with %s) failed; it is retried when its lease ends",
                          job.id, job.doc_id, job.model)
            _record_failure(db, job, owner, f"{type(exc).__name__}: {exc}")
            return done
    return done


def _record_failure(db: Database, job: Job, owner: str, error: str) -> None:
    try:
        with db.connect("recording a failed job") as conn:
            conn.execute(
                "UPDATE forumqa_jobs SET last_error = %s WHERE id = %s AND lease_owner = %s",
                (error[:2000], job.id, owner),
            )
    except DatabaseError:
        pass  # best effort: the log has it


def _queued(db: Database, settings: Settings) -> int:
    try:
        with db.connect("counting jobs", autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM forumqa_jobs WHERE state = 'queued' AND model = ANY(%s)",
                ([m for m in settings.embedders if m in EMBEDDERS],),
            ).fetchone()
    except DatabaseError:
        return 1  # unknown: keep trying
    return int(row[0])


def work(settings: Settings, *, once: bool = False, progress: bool = True,
         stop: threading.Event | None = None) -> int:
    """``forumqa worker``: run jobs as they come (polling every ``db_poll_seconds``); ``once``: until
    no job is queued (waiting out the lease of a job another worker holds). Survives the database going
    away (waits and retries). Returns jobs done."""
    db = open_database(settings)
    owner = worker_id()
    embedders = Embedders(settings)
    stop = stop or threading.Event()
    total = 0
    log.info("worker %s: running embedding jobs for %s", owner, ", ".join(settings.embedders))
    while not stop.is_set():
        try:
            total += drain(db, settings, progress, embedders, owner, stop.is_set)
        except DatabaseError as exc:
            log.warning("worker %s: %s; retrying", owner, exc)
            stop.wait(max(1.0, settings.db_poll_seconds))
            continue
        if once and not _queued(db, settings):
            break  # nothing queued at all (a job leased by another worker waits for its lease to end)
        stop.wait(settings.db_poll_seconds)
    return total
