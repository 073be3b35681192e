"""The PostgreSQL + pgvector store, shared by any number of replicas (``FORUMQA_DATABASE_URL``).

What the database holds (schema: ``rag/index/migrations/``): each document's original bytes, text,
sections, page starts and metadata; its sentences and chunks with their offsets; passage vectors per
model by the sha256 of the text embedded (pgvector, HNSW, cosine); embedding jobs (:mod:`rag.index.jobs`);
and a generation counter, bumped whenever what is served changes.

How a replica answers from it: it loads the ready documents, their chunks, sentences and vectors into
the same in-memory :class:`rag.index.build.SearchIndex` the file store loads (FAISS over the vectors,
BM25 over the texts), so the answering code, its figures and its citation offsets are the file store's
(parity by construction), and answers keep flowing while the database restarts. A thread polls the
generation every ``FORUMQA_DB_POLL_SECONDS`` and reloads when it moved (:class:`Follower`), so a document
added or removed through any replica is served by all of them about a second later. Chosen by measurement
over querying pgvector per question: ``python -m bench pgvector`` (README, "Several servers, one
database").

A document joins as "not ready" together with one embedding job per model; it is served once the job of
its first model (the fast stage) is done. A model is served when every served text has its vector;
until the slower models catch up, the replica serves without them, as a staged file build does.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.hashing import sha256_text
from rag.index.build import (
    CHUNKS_EMBEDDED,
    IndexUnavailable,
    SearchIndex,
    chunk_embed_text,
    chunk_vectors_from_sentences,
    embedder_fingerprint,
    model_recipe,
    stage_names,
)
from rag.index.database import (
    CHANNEL,
    Database,
    DatabaseError,
    ReadOnlyRole,
    bump_generation,
    check_schema,
    decode_text,
    generation,
    open_database,
    put_vectors,
)
from rag.index.database import encode_text as _b
from rag.index.embedders import EMBEDDERS
from rag.index.lexical import LexicalIndex
from rag.index.vectors import build_vector_index
from rag.ingest import naming, store
from rag.ingest.chunking import ChunkingParams, chunk_documents
from rag.ingest.filetypes import detect_kind
from rag.ingest.loading import load_corpus
from rag.types import Chunk, Document, Section, Span

log = logging.getLogger(__name__)

def stage_of(settings: Settings, model: str) -> int:
    """The order jobs are claimed in: the build's stages (the answerable model first, then the others)."""
    order = stage_names(settings)[3:]
    return order.index(model) if model in order else len(order)


# ---------------------------------------------------------------------------------------- writing


def can_write(conn: Any) -> bool:
    """Whether this role may change documents and run jobs (a read-only replica may not)."""
    row = conn.execute(
        "SELECT current_setting('transaction_read_only') = 'off' "
        "AND has_table_privilege('forumqa_documents', 'INSERT') "
        "AND has_table_privilege('forumqa_jobs', 'UPDATE') "
        "AND has_table_privilege('forumqa_embeddings', 'INSERT')"
    ).fetchone()
    return bool(row[0])


def _insert_document(
    conn: Any,
    settings: Settings,
    doc: Document,
    data: bytes,
    kind: str,
    sort_key: str,
    original_filename: str,
) -> None:
    """One document with its sentences, chunks and jobs (inside the caller's transaction)."""
    params = ChunkingParams(settings.chunk_sentences, settings.chunk_overlap)
    chunks, sentences = chunk_documents([doc], params)
    conn.execute(
        "INSERT INTO forumqa_documents (id, sort_key, title, source, kind, original_filename, sha256, data, "
        "text, sections, pages, metadata, chunking) "
        "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::json, %s, %s::json, %s::json)",
        (
            doc.id,
            sort_key,
            _b(doc.title),
            doc.source,
            kind,
            original_filename,
            hashlib.sha256(data).hexdigest(),
            data,
            _b(doc.text),
            json.dumps([{"title": s.title, "start": s.start, "end": s.end} for s in doc.sections]),
            list(doc.pages),
            json.dumps(doc.metadata),
            json.dumps({"sentences": params.sentences, "overlap": params.overlap}),
        ),
    )
    with conn.cursor() as cur:
        with cur.copy(
            "COPY forumqa_sentences (doc_id, ord, section, start_at, end_at) FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "int4", "bytea", "int4", "int4"])
            for i, s in enumerate(sentences):
                copy.write_row((doc.id, i, _b(s.section), s.start, s.end))
        with cur.copy(
            "COPY forumqa_chunks (doc_id, ord, section, start_at, end_at, sentence_ords) "
            "FROM STDIN (FORMAT BINARY)"
        ) as copy:
            copy.set_types(["text", "int4", "bytea", "int4", "int4", "int4[]"])
            for c in chunks:
                copy.write_row((doc.id, c.id, _b(c.section), c.start, c.end, list(c.sentence_ids)))
        cur.executemany(
            "INSERT INTO forumqa_jobs (doc_id, model, stage) VALUES (%s, %s, %s)",
            [(doc.id, m, stage_of(settings, m)) for m in settings.embedders],
        )
    conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, f"queued {doc.id}"))


def _refuse_duplicates(conn: Any, prepared: store.Prepared) -> store.Prepared:
    """The same bytes again are refused; a different file whose id is taken gets a numbered one."""
    row = conn.execute("SELECT id FROM forumqa_documents WHERE sha256 = %s", (prepared.sha256,)).fetchone()
    if row is not None:
        raise store.Duplicate(f"this file is already in the corpus as document {row[0]!r}")
    rows = conn.execute("SELECT id, sort_key FROM forumqa_documents").fetchall()
    return store.free_id(prepared, {r[0] for r in rows}, {Path(r[1]).stem for r in rows})


def add_document(db: Database, settings: Settings, data: bytes, filename: str) -> store.StoredDocument:
    """Check and store an upload, queue its embedding; the same checks and refusals as the file store.

    Raises :class:`rag.ingest.store.DocumentError` subclasses, :class:`DatabaseError` (unavailable,
    read-only role).
    """
    import psycopg

    prepared = store.prepare(data, filename, settings.max_upload_bytes)
    document = store.load_prepared(prepared)
    with db.connect("adding a document") as conn:
        # One writer of documents at a time: the duplicate checks and the insert see the same corpus.
        conn.execute("LOCK TABLE forumqa_documents IN SHARE ROW EXCLUSIVE MODE")
        numbered = _refuse_duplicates(conn, prepared)
        if numbered is not prepared:
            prepared, document = numbered, replace(document, id=numbered.id)
        try:
            _insert_document(
                conn, settings, document, prepared.data, prepared.kind, prepared.file_name,
                prepared.original_filename,
            )
        except psycopg.errors.UniqueViolation:
            raise store.Duplicate(f"a document with id {prepared.id!r} is already in the corpus") from None
    log.info("stored document %r (%s, %d bytes); embedding queued", prepared.id, prepared.kind, len(data))
    return prepared.stored()


def rename_document(db: Database, settings: Settings, doc_id: str, title: str) -> store.StoredDocument:
    """Give document ``doc_id`` the title ``title`` (its id stays), as the file store does: the document is
    read again from its stored bytes under the new title (its lead section is named after it), its
    sentences and chunks replaced, and its embedding jobs queued again; replicas keep serving the old
    title until its first model has embedded what changed (the jobs embed only texts without a vector)."""
    try:
        title = naming.clean_new_title(title)
    except ValueError as exc:
        raise store.Unreadable(str(exc)) from None
    with db.connect("renaming a document") as conn:
        conn.execute("LOCK TABLE forumqa_documents IN SHARE ROW EXCLUSIVE MODE")
        row = conn.execute(
            "SELECT source, kind, data, sort_key, original_filename, metadata FROM forumqa_documents "
            "WHERE id = %s",
            (doc_id,),
        ).fetchone()
        if row is None:
            raise store.NotFound(f"no document with id {doc_id!r} in the corpus")
        source, kind, data, sort_key, original, meta = row
        meta = {**(meta if isinstance(meta, dict) else {}), "id": doc_id, "title": title, "source": source}
        document = store.load_stored(bytes(data), sort_key, meta)
        conn.execute("DELETE FROM forumqa_documents WHERE id = %s", (doc_id,))  # its rows go with it
        _insert_document(conn, settings, document, bytes(data), kind, sort_key, original)
    pages = meta.get("page_count")
    log.info("renamed document %r to %r; embedding what changed", doc_id, title)
    return store.StoredDocument(doc_id, title, kind, len(data), sort_key, original,
                                pages if isinstance(pages, int) else None)


def remove_document(db: Database, doc_id: str) -> store.StoredDocument:
    """Delete a document (its chunks, sentences and jobs go with it) and bump the generation."""
    with db.connect("removing a document") as conn:
        conn.execute("LOCK TABLE forumqa_documents IN SHARE ROW EXCLUSIVE MODE")
        row = conn.execute(
            "SELECT title, kind, length(data), sort_key, original_filename, metadata, ready "
            "FROM forumqa_documents WHERE id = %s",
            (doc_id,),
        ).fetchone()
        if row is None:
            raise store.NotFound(f"no document with id {doc_id!r} in the corpus")
        title, kind, size, sort_key, original, meta, ready = row
        others = conn.execute(
            "SELECT count(*) FROM forumqa_documents WHERE ready AND id <> %s", (doc_id,)
        ).fetchone()[0]
        if ready and others == 0:
            raise store.LastDocument(
                f"{doc_id!r} is the only document; add another before removing it (an empty corpus "
                "cannot be indexed)"
            )
        conn.execute("DELETE FROM forumqa_documents WHERE id = %s", (doc_id,))
        if ready:
            bump_generation(conn, f"removed {doc_id}")
    pages = meta.get("page_count") if isinstance(meta, dict) else None
    log.info("removed document %r", doc_id)
    return store.StoredDocument(doc_id, decode_text(title), kind, int(size), sort_key, original,
                                pages if isinstance(pages, int) else None)


def import_corpus(db: Database, settings: Settings, corpus_dir: Path | None = None) -> list[str]:
    """Store every document of a corpus folder the database lacks (by id); the ids imported.

    Vectors the file store already computed for the same texts and encoders are copied too (from the
    current build in ``settings.index_dir``), so moving an existing installation embeds nothing again.
    """
    corpus_dir = corpus_dir or settings.corpus_dir
    documents = load_corpus(corpus_dir)
    added = []
    with db.connect("importing the corpus") as conn:
        conn.execute("LOCK TABLE forumqa_documents IN SHARE ROW EXCLUSIVE MODE")
        have = {r[0] for r in conn.execute("SELECT id FROM forumqa_documents")}
        for doc in documents:
            if doc.id in have:
                continue
            path = Path(doc.path)
            data = path.read_bytes()
            kind = str(doc.metadata.get("kind") or detect_kind(data[:4096], path.name))
            original = str(doc.metadata.get("original_filename") or path.name)
            _insert_document(conn, settings, _without_path(doc), data, kind, path.name, original)
            added.append(doc.id)
    if added:
        log.info("imported %d document(s) from %s: %s", len(added), corpus_dir, ", ".join(added))
        seeded = seed_vectors_from_files(db, settings)
        if seeded:
            log.info("copied vectors of the file store's current build: %s", seeded)
    return added


def _without_path(doc: Document) -> Document:
    from dataclasses import replace

    return replace(doc, path="")


def seed_vectors_from_files(db: Database, settings: Settings) -> dict[str, int]:
    """Copy the file store's vectors (current build of ``settings.index_dir``) for texts the database lacks.

    Only for models whose recorded encoder is the one this code would use, so a vector is never reused
    across encoders. Returns vectors copied per model.
    """
    from rag.index.build import load_index

    try:
        index = load_index(settings.index_dir)
    except (IndexUnavailable, OSError):
        return {}
    texts = {
        "chunks": [chunk_embed_text(c) for c in index.chunks],
        "sentences": [s.text for s in index.sentences],
    }
    copied: dict[str, int] = {}
    recorded = index.manifest.get("embedders", {})
    for name in index.embedder_names:
        cls = EMBEDDERS.get(name)
        made_by = dict(recorded.get(name) or {}) if isinstance(recorded, dict) else {}
        chunks_made = made_by.pop("chunks", CHUNKS_EMBEDDED)
        if cls is None or made_by != embedder_fingerprint(cls):
            continue
        vectors: dict[str, np.ndarray] = {}
        chunk_index = index.chunk_vectors[name]
        # Chunk vectors derived from sentences are no embedding of the chunk's text: never reused as one.
        if chunks_made == CHUNKS_EMBEDDED and hasattr(chunk_index, "reconstruct_n"):
            try:
                chunk_rows = chunk_index.reconstruct_n(0, chunk_index.ntotal)
            except RuntimeError:  # an index that cannot give its vectors back (compressed)
                chunk_rows = None
            if chunk_rows is not None:
                vectors.update({sha256_text(t): v for t, v in zip(texts["chunks"], chunk_rows, strict=True)})
        sentence_rows = np.asarray(index.sentence_vectors[name])
        vectors.update({sha256_text(t): v for t, v in zip(texts["sentences"], sentence_rows, strict=True)})
        copied[name] = put_vectors(db, name, vectors)
    return copied


# ---------------------------------------------------------------------------------------- reading


@dataclass(frozen=True)
class Tables:
    """The ready documents with their chunks and sentences, numbered as the file store numbers them."""

    generation: int
    documents: list[Document]
    chunks: list[Chunk]
    sentences: list[Span]


def read_tables(conn: Any) -> Tables:
    """The served documents, in corpus-folder order (by file name), with global chunk and sentence ids."""
    gen = generation(conn)
    documents = []
    for doc_id, title, source, text, sections, pages, metadata in conn.execute(
        "SELECT id, title, source, text, sections, pages, metadata FROM forumqa_documents "
        'WHERE ready ORDER BY sort_key COLLATE "C"'
    ):
        documents.append(
            Document(
                id=doc_id,
                title=decode_text(title),
                text=decode_text(text),
                sections=tuple(Section(**s) for s in sections),
                source=source,
                metadata=metadata,
                pages=tuple(pages),
            )
        )
    by_id = {d.id: d for d in documents}
    sentences: list[Span] = []
    base: dict[str, int] = {}
    for doc_id, section, start, end in conn.execute(
        "SELECT s.doc_id, s.section, s.start_at, s.end_at FROM forumqa_sentences s "
        "JOIN forumqa_documents d ON d.id = s.doc_id WHERE d.ready "
        'ORDER BY d.sort_key COLLATE "C", s.ord'
    ):
        base.setdefault(doc_id, len(sentences))
        sentences.append(Span(doc_id, decode_text(section), start, end, by_id[doc_id].text[start:end]))
    chunks: list[Chunk] = []
    for doc_id, section, start, end, ords in conn.execute(
        "SELECT c.doc_id, c.section, c.start_at, c.end_at, c.sentence_ords FROM forumqa_chunks c "
        "JOIN forumqa_documents d ON d.id = c.doc_id WHERE d.ready "
        'ORDER BY d.sort_key COLLATE "C", c.ord'
    ):
        first = base[doc_id]
        chunks.append(
            Chunk(len(chunks), doc_id, decode_text(section), start, end, by_id[doc_id].text[start:end],
                  tuple(first + o for o in ords))
        )
    return Tables(gen, documents, chunks, sentences)


def read_vectors(conn: Any, model: str, keys: Sequence[str]) -> np.ndarray | None:
    """Vectors of ``model`` for the texts with sha256 ``keys``, in order; None if any is missing."""
    cls = EMBEDDERS[model]
    wanted = sorted(set(keys))
    found: dict[str, np.ndarray] = {}
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT text_sha256, embedding FROM forumqa_embeddings "
            "WHERE model = %s AND encoder = %s::jsonb AND text_sha256 = ANY(%s)",
            (model, json.dumps(embedder_fingerprint(cls)), wanted),
        )
        for key, vector in cur:
            # pgvector's loader gives a Vector (newer versions) or a numpy array (older ones).
            found[key] = vector.to_numpy() if hasattr(vector, "to_numpy") else np.asarray(vector)
    if len(found) < len(wanted):
        return None
    out = np.empty((len(keys), cls.dim), dtype=np.float32)
    for row, key in enumerate(keys):
        out[row] = found[key]
    return out


def load_index(db: Database, settings: Settings) -> SearchIndex:
    """The served state of the database as an in-memory :class:`SearchIndex` (one consistent snapshot)."""
    started = time.perf_counter()
    with db.connect("loading the index", snapshot=True) as conn:
        check_schema(conn)
        tables = read_tables(conn)
        if not tables.documents:
            raise IndexUnavailable(
                "the database holds no ready document yet: add documents (forumqa db import, or "
                "POST /api/documents) and let a worker embed them"
            )
        chunk_texts = [chunk_embed_text(c) for c in tables.chunks]
        chunk_keys = [sha256_text(t) for t in chunk_texts]
        sentence_keys = [sha256_text(s.text) for s in tables.sentences]
        chunk_vectors, sentence_vectors, pending = {}, {}, []
        for name in stage_names(settings)[3:]:
            if name in settings.derived_chunk_vectors:  # chunk vectors: the mean of their sentences'
                vectors = read_vectors(conn, name, sentence_keys)
                if vectors is None:
                    pending.append(name)
                    continue
                chunk_vectors[name] = build_vector_index(chunk_vectors_from_sentences(tables.chunks, vectors))
                sentence_vectors[name] = vectors
                continue
            vectors = read_vectors(conn, name, chunk_keys + sentence_keys)
            if vectors is None:
                pending.append(name)
                continue
            chunk_vectors[name] = build_vector_index(vectors[: len(tables.chunks)])
            sentence_vectors[name] = vectors[len(tables.chunks) :]
    if not chunk_vectors:
        raise IndexUnavailable(f"no model has embedded every served text yet (waiting: {', '.join(pending)})")
    chunk_lexicon = LexicalIndex.build(chunk_texts, False, "chunks")
    sentence_lexicon = LexicalIndex.build([s.text for s in tables.sentences], False, "sentences")
    served = list(chunk_vectors)
    manifest = {
        "build_id": f"db-generation-{tables.generation}",
        "generation": tables.generation,
        "embedders": {n: model_recipe(settings, n) for n in served},
        "pending": pending,
        "store": "postgresql",
        "counts": {
            "documents": len(tables.documents),
            "chunks": len(tables.chunks),
            "sentences": len(tables.sentences),
        },
    }
    log.info(
        "loaded generation %d from the database: %d documents, %d chunks, models %s%s in %.2fs",
        tables.generation, len(tables.documents), len(tables.chunks), ", ".join(served),
        f" (still embedding: {', '.join(pending)})" if pending else "", time.perf_counter() - started,
    )
    return SearchIndex(
        path=Path(f"postgresql-generation-{tables.generation}"),
        manifest=manifest,
        documents={d.id: d for d in tables.documents},
        chunks=tables.chunks,
        sentences=tables.sentences,
        chunk_vectors=chunk_vectors,
        sentence_vectors=sentence_vectors,
        chunk_lexicon=chunk_lexicon,
        sentence_lexicon=sentence_lexicon,
    )


def served_generation(db: Database) -> int:
    with db.connect("reading the generation", autocommit=True) as conn:
        return generation(conn)


def corpus_state(db: Database) -> tuple[set[str], set[str]]:
    """(ready document ids, ids still waiting for their first model), for the status endpoint."""
    with db.connect("reading the documents", autocommit=True) as conn:
        rows = conn.execute("SELECT id, ready FROM forumqa_documents").fetchall()
    return {r[0] for r in rows if r[1]}, {r[0] for r in rows if not r[1]}


def ensure_index(settings: Settings, progress: bool = True, *, run_jobs: bool = True) -> SearchIndex:
    """Open the database store: check its schema, import the corpus folder into an empty database, run
    the queued embedding jobs here (``run_jobs``, when the role may write), then load it."""
    from rag.index import jobs

    db = open_database(settings)
    with db.connect("opening the store", autocommit=True) as conn:
        check_schema(conn)
        writable = can_write(conn)
        empty = conn.execute("SELECT NOT EXISTS (SELECT 1 FROM forumqa_documents)").fetchone()[0]
    if empty:
        if not writable:
            raise ReadOnlyRole(
                "the database holds no documents and this role may not add them: run `forumqa db import` "
                "with a role that may write"
            )
        import_corpus(db, settings)
    if run_jobs and writable:
        done = jobs.drain(db, settings, progress=progress)
        if done:
            log.info("ran %d embedding job(s) before serving", done)
    return load_index(db, settings)


__all__ = [
    "CHANNEL",
    "DatabaseError",
    "add_document",
    "corpus_state",
    "ensure_index",
    "import_corpus",
    "load_index",
    "open_database",
    "remove_document",
    "rename_document",
    "served_generation",
]


class Follower:
    """Daemon threads that keep a replica on the database's newest generation, and run jobs.

    Every ``settings.db_poll_seconds`` one thread calls ``reload`` (which compares the generation and
    loads only when it moved). While the database is away it logs once, keeps the index it has serving,
    and picks up again when the database is back. When given ``run_jobs``, a second thread runs embedding
    jobs as they come, so a long job never delays following the generation.
    """

    def __init__(
        self,
        settings: Settings,
        reload: Callable[[], object],
        run_jobs: Callable[[Callable[[], bool]], int] | None = None,
    ) -> None:
        self.settings = settings
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=("following the database", reload),
                                          name="forumqa-db-follow", daemon=True)]
        if run_jobs is not None:
            self._threads.append(threading.Thread(
                target=self._loop, args=("running embedding jobs", lambda: run_jobs(self._stop.is_set)),
                name="forumqa-db-jobs", daemon=True))
        self.errors: dict[str, str] = {}  # why the last round of each loop failed, while it keeps failing

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self, what: str, step: Callable[[], object]) -> None:
        while not self._stop.wait(self.settings.db_poll_seconds):
            try:
                step()
            except (DatabaseError, IndexUnavailable) as exc:
                if what not in self.errors:
                    log.warning("%s: %s; still serving the index loaded before", what, exc)
                self.errors[what] = str(exc)
                continue
            except Exception:  # never let the thread die: the next round tries again
                log.exception("%s failed; retrying", what)
                continue
            if self.errors.pop(what, None) is not None:
                log.info("the database is back; %s again", what)


def writable(settings: Settings) -> bool:
    """Whether the configured role may write (False for a read-only replica, or when unreachable)."""
    try:
        with open_database(settings).connect("checking the role", autocommit=True) as conn:
            return can_write(conn)
    except DatabaseError:
        return False
