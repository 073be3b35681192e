"""The database store's rows: documents written (with their sentences, chunks and jobs) and read back.

A document joins as "not ready" together with one embedding job per model (:mod:`.jobs`). It becomes
ready (served) as soon as the fast model's sentences are stored; each model serves it once that model's
sentence vectors are all stored (its chunk vectors derived from them until the chunks are embedded too),
so a document added to a served store never takes a model away from the others.

A replica reads the ready documents into the same in-memory :class:`~rag.index.search_index.SearchIndex`
the file store loads (FAISS over the vectors, BM25 over the texts), so the answering code, its figures
and its citation offsets are the file store's. It keeps each document's rows and vectors between loads
(:class:`Loader`) and reads again only the documents whose ``changed`` generation moved.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.hashing import sha256_text
from rag.index.embedders import EMBEDDERS, embedder_fingerprint
from rag.index.fingerprint import CHUNKS_EMBEDDED, derives_chunks
from rag.index.search_index import (
    ModelVectors,
    SearchIndex,
    Tables,
    assemble,
    chunk_embed_text,
    model_vectors,
)
from rag.index.stages import Stages
from rag.ingest import store
from rag.ingest.chunking import SPLITTER_VERSION, ChunkingParams, chunk_documents
from rag.ingest.filetypes import detect_kind
from rag.ingest.loading import load_corpus
from rag.store.base import NothingReady
from rag.store.postgres.database import (
    Database,
    bump_generation,
    check_schema,
    decode_text,
    encoder_of,
    generation,
    put_vectors,
)
from rag.store.postgres.database import encode_text as _b
from rag.types import Chunk, Document, Section, Span

log = logging.getLogger(__name__)


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
            json.dumps({"sentences": params.sentences, "overlap": params.overlap,
                        "splitter": SPLITTER_VERSION}),
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
        stages = Stages.of(settings)
        cur.executemany(
            "INSERT INTO forumqa_jobs (doc_id, model, stage) VALUES (%s, %s, %s)",
            [(doc.id, m, stages.order(m)) for m in settings.embedders],
        )


def _free_id(conn: Any, prepared: store.Prepared) -> store.Prepared:
    """The same bytes again are refused; a different file whose id is taken gets a numbered one (as in
    the file store: :func:`rag.ingest.store.free_id`)."""
    row = conn.execute("SELECT id FROM forumqa_documents WHERE sha256 = %s", (prepared.sha256,)).fetchone()
    if row is not None:
        raise store.Duplicate(f"this file is already in the corpus as document {row[0]!r}")
    taken = conn.execute("SELECT id, sort_key FROM forumqa_documents").fetchall()
    return store.free_id(prepared, {r[0] for r in taken}, {Path(r[1]).stem for r in taken})


def add_document(db: Database, settings: Settings, data: bytes, filename: str,
                 collection: str | None = None) -> store.StoredDocument:
    """Check and store an upload, queue its embedding; the same checks and refusals as the file store.

    Raises :class:`rag.ingest.store.DocumentError` subclasses, :class:`DatabaseError` (unavailable,
    read-only role).
    """
    import psycopg

    prepared = store.prepare(data, filename, settings.max_upload_bytes, collection)
    document = store.load_prepared(prepared)
    with db.connect("adding a document", write=True) as conn:
        # One writer of documents at a time: the duplicate checks and the insert see the same corpus.
        conn.execute("LOCK TABLE forumqa_documents IN SHARE ROW EXCLUSIVE MODE")
        numbered = _free_id(conn, prepared)
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


def remove_document(db: Database, doc_id: str) -> store.StoredDocument:
    """Delete a document (its chunks, sentences and jobs go with it) and bump the generation."""
    with db.connect("removing a document", write=True) as conn:
        title, kind, size, sort_key, original, meta, ready = _locked_row(
            conn,
            "SELECT title, kind, length(data), sort_key, original_filename, metadata, ready "
            "FROM forumqa_documents WHERE id = %s",
            doc_id,
        )
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
            bump_generation(conn)
    log.info("removed document %r", doc_id)
    return store.stored_document(doc_id, decode_text(title), kind, int(size), sort_key, meta, original)


def _locked_row(conn: Any, query: str, doc_id: str) -> tuple[Any, ...]:
    """Document ``doc_id``'s row as ``query`` reads it, the documents locked against other writers (inside
    the caller's transaction); NotFound when there is none."""
    conn.execute("LOCK TABLE forumqa_documents IN SHARE ROW EXCLUSIVE MODE")
    row = conn.execute(query, (doc_id,)).fetchone()
    if row is None:
        raise store.NotFound(f"no document with id {doc_id!r} in the corpus")
    return tuple(row)


def rename_document(db: Database, settings: Settings, doc_id: str, title: str) -> store.StoredDocument:
    """Give document ``doc_id`` the title ``title`` (its id stays), as the file store does: the document
    is read again from its stored bytes under the new title (its lead section is named after it) and its
    sentences and chunks replaced. A served document stays served: its sentences' texts, and so their
    vectors, are unchanged; the chunks whose section name changed are derived from their sentences
    until its jobs, queued again, embed them (only texts without a vector). Raises NotFound, Unreadable
    (a blank or overlong title), :class:`DatabaseError`."""
    title = store.new_title(title)
    with db.connect("renaming a document", write=True) as conn:
        source, kind, data, sort_key, original, meta, ready = _locked_row(
            conn,
            "SELECT source, kind, data, sort_key, original_filename, metadata, ready FROM forumqa_documents "
            "WHERE id = %s",
            doc_id,
        )
        meta = {**(meta if isinstance(meta, dict) else {}), "id": doc_id, "title": title, "source": source}
        document = store.load_stored(bytes(data), sort_key, meta)
        conn.execute("DELETE FROM forumqa_documents WHERE id = %s", (doc_id,))  # its rows go with it
        _insert_document(conn, settings, document, bytes(data), kind, sort_key, original)
        if ready:
            conn.execute("UPDATE forumqa_documents SET ready = true WHERE id = %s", (doc_id,))
            bump_generation(conn, doc_id)  # replicas read it again under its new title
    log.info("renamed document %r to %r; embedding what changed", doc_id, title)
    return store.stored_document(doc_id, title, kind, len(data), sort_key, meta, original)


def import_corpus(db: Database, settings: Settings, corpus_dir: Path | None = None,
                  index: SearchIndex | None = None, recipes: dict[str, Any] | None = None) -> list[str]:
    """Store every document of a corpus folder the database lacks (by id); the ids imported.

    ``index`` (the file store's, made by the encoders ``recipes`` records) gives vectors for the same
    texts, which are copied too, so moving an existing installation embeds nothing again.
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
            _insert_document(conn, settings, replace(doc, path=""), data, kind, path.name, original)
            added.append(doc.id)
    if added:
        log.info("imported %d document(s) from %s: %s", len(added), corpus_dir, ", ".join(added))
        if index is not None:
            seeded = seed_vectors(db, index, recipes or {})
            if seeded:
                log.info("copied vectors of the file store's current build: %s", seeded)
    return added


def seed_vectors(db: Database, index: SearchIndex, recipes: dict[str, Any]) -> dict[str, int]:
    """Copy ``index``'s vectors (the file store's; ``recipes``: its manifest's per model) for texts the
    database lacks; only for models whose recorded encoder is the one this code would use, so a vector is
    never reused across encoders. Returns vectors copied per model."""
    texts = {
        "chunks": [chunk_embed_text(c) for c in index.chunks],
        "sentences": [s.text for s in index.sentences],
    }
    copied: dict[str, int] = {}
    for name in index.models:
        cls = EMBEDDERS.get(name)
        made_by = dict(recipes.get(name) or {})
        chunks_made = made_by.pop("chunks", CHUNKS_EMBEDDED)
        if cls is None or made_by != embedder_fingerprint(cls):
            continue
        served = [i for i, s in enumerate(index.sentences) if name not in index.pending.get(s.doc_id, ())]
        vectors: dict[str, np.ndarray] = {}
        chunk_index = index.chunk_vectors[name]
        # Chunk vectors derived from sentences are no embedding of the chunk's text: never reused as one.
        if chunks_made == CHUNKS_EMBEDDED and hasattr(chunk_index, "reconstruct_n") and not index.pending:
            try:
                chunk_rows = chunk_index.reconstruct_n(0, chunk_index.ntotal)
            except RuntimeError:  # an index that cannot give its vectors back (compressed)
                chunk_rows = None
            if chunk_rows is not None and len(chunk_rows) == len(index.chunks):
                vectors.update({sha256_text(t): v for t, v in zip(texts["chunks"], chunk_rows, strict=True)})
        sentence_rows = np.asarray(index.sentence_vectors[name])
        vectors.update({sha256_text(texts["sentences"][i]): sentence_rows[i] for i in served})
        copied[name] = put_vectors(db, name, vectors)
    return copied


# ---------------------------------------------------------------------------------------- reading


@dataclass
class _DocumentRows:
    """One ready document as read from the database, with its vectors so far, between loads."""

    changed: int
    document: Document
    sentences: list[Span]  # numbered inside the document (ord)
    chunks: list[Chunk]  # ids and sentence ids inside the document
    vectors: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # model -> key -> vector


def _read_documents(conn: Any, ids: list[str]) -> dict[str, _DocumentRows]:
    out: dict[str, _DocumentRows] = {}
    for doc_id, title, source, text, sections, pages, metadata, changed in conn.execute(
        "SELECT id, title, source, text, sections, pages, metadata, changed FROM forumqa_documents "
        "WHERE id = ANY(%s)", (ids,)
    ):
        document = Document(
            id=doc_id,
            title=decode_text(title),
            text=decode_text(text),
            sections=tuple(Section(**s) for s in sections),
            source=source,
            metadata=metadata,
            pages=tuple(pages),
        )
        out[doc_id] = _DocumentRows(int(changed), document, [], [])
    for doc_id, section, start, end in conn.execute(
        "SELECT doc_id, section, start_at, end_at FROM forumqa_sentences WHERE doc_id = ANY(%s) "
        "ORDER BY doc_id, ord", (ids,)
    ):
        rows = out[doc_id]
        rows.sentences.append(Span(doc_id, decode_text(section), start, end, rows.document.text[start:end]))
    for doc_id, ord_, section, start, end, ords in conn.execute(
        "SELECT doc_id, ord, section, start_at, end_at, sentence_ords FROM forumqa_chunks "
        "WHERE doc_id = ANY(%s) ORDER BY doc_id, ord", (ids,)
    ):
        rows = out[doc_id]
        text = rows.document.text[start:end]
        rows.chunks.append(Chunk(ord_, doc_id, decode_text(section), start, end, text, tuple(ords)))
    return out


def read_vectors(conn: Any, model: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
    """The vectors of ``model`` (by the current encoder) the database holds for the text hashes ``keys``."""
    found: dict[str, np.ndarray] = {}
    if not keys:
        return found
    with conn.cursor(binary=True) as cur:
        cur.execute(
            "SELECT text_sha256, embedding FROM forumqa_embeddings "
            "WHERE model = %s AND encoder = %s::jsonb AND text_sha256 = ANY(%s)",
            (model, encoder_of(model), sorted(set(keys))),
        )
        for key, vector in cur:
            # pgvector's loader gives a Vector (newer versions) or a numpy array (older ones).
            found[key] = np.asarray(vector.to_numpy() if hasattr(vector, "to_numpy") else vector,
                                    dtype=np.float32)
    return found


class Loader:
    """Reads the served state of the database into a :class:`SearchIndex`, reading again only what
    changed since its last load (documents added, made ready or embedded by one more model; removed ones
    are dropped)."""

    def __init__(self, db: Database, settings: Settings) -> None:
        self.db = db
        self.settings = settings
        self.stages = Stages.of(settings)
        self._rows: dict[str, _DocumentRows] = {}

    def load(self) -> SearchIndex:
        started = time.perf_counter()
        with self.db.connect("loading the index", snapshot=True) as conn:
            check_schema(conn)
            gen = generation(conn)
            ready = conn.execute(
                'SELECT id, changed FROM forumqa_documents WHERE ready ORDER BY sort_key COLLATE "C"'
            ).fetchall()
            if not ready:
                raise NothingReady(
                    "the database holds no ready document yet: add documents (forumqa db import, or "
                    "POST /api/documents) and let a worker embed them"
                )
            stale = [d for d, changed in ready if d not in self._rows or self._rows[d].changed != changed]
            fresh = _read_documents(conn, stale) if stale else {}
            for rows in fresh.values():
                keys = [sha256_text(s.text) for s in rows.sentences]
                keys += [sha256_text(chunk_embed_text(c)) for c in rows.chunks]
                rows.vectors = {m: read_vectors(conn, m, keys) for m in self.stages.models}
        rows_by_id = {**self._rows, **fresh}
        self._rows = {d: rows_by_id[d] for d, _ in ready}
        index = self._assemble(f"db-generation-{gen}")
        pending = index.pending_models()
        log.info(
            "loaded generation %d from the database: %d documents (%d read again), %d chunks, models %s%s "
            "in %.2fs", gen, len(index.documents), len(fresh), len(index.chunks), ", ".join(index.models),
            f" (still embedding: {', '.join(pending)})" if pending else "", time.perf_counter() - started,
        )
        return index

    def _assemble(self, version: str) -> SearchIndex:
        documents: list[Document] = []
        chunks: list[Chunk] = []
        sentences: list[Span] = []
        found: dict[str, dict[str, np.ndarray]] = {m: {} for m in self.stages.models}
        for rows in self._rows.values():
            base = len(sentences)
            documents.append(rows.document)
            sentences.extend(rows.sentences)
            for c in rows.chunks:
                sentence_ids = tuple(base + o for o in c.sentence_ids)
                chunks.append(replace(c, id=len(chunks), sentence_ids=sentence_ids))
            for model, vectors in rows.vectors.items():
                found[model].update(vectors)
        tables = Tables(documents, chunks, sentences)
        models: dict[str, ModelVectors] = {
            m: model_vectors(tables, found[m], EMBEDDERS[m].dim, derives_chunks(self.settings, m))
            for m in self.stages.models
        }
        return assemble(version, tables, models)
