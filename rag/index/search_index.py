"""The search index: the documents, their chunks and sentences, each model's vectors and BM25, in memory.

Both stores give one (:mod:`rag.store`): the file store loads it from a published build folder
(:mod:`rag.index.publish`), the PostgreSQL store from the database's rows. Answering reads nothing else.

A model may cover some documents only: one just added is answered by the models that have embedded it so
far (at least the fast one) while the slower ones catch up, and every other document keeps all of them.
:attr:`SearchIndex.pending` says which document lacks which model; such a document's chunks are absent
from that model's FAISS index and its sentences' rows are zeros (:func:`chunk_index`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import faiss
import numpy as np

from rag.hashing import sha256_text
from rag.index.lexical import LexicalIndex
from rag.index.vectors import build_vector_index
from rag.types import Chunk, Document, Span

# What is embedded for a chunk: its section title, then its text. The title gives each window the
# topic it belongs to ("Economic Relations"), which the sentences themselves often leave implicit.
EMBED_RECIPE = "section-title+text"


def chunk_embed_text(chunk: Chunk) -> str:
    """The text that represents ``chunk`` in the dense and lexical indexes (see EMBED_RECIPE)."""
    return f"{chunk.section}. {chunk.text}"


@dataclass
class Tables:
    """The documents with their chunks and sentences, numbered across documents in corpus order."""

    documents: list[Document]
    chunks: list[Chunk]
    sentences: list[Span]

    @property
    def chunk_texts(self) -> list[str]:
        return [chunk_embed_text(c) for c in self.chunks]

    @property
    def sentence_texts(self) -> list[str]:
        return [s.text for s in self.sentences]


def chunk_vectors_from_sentences(chunks: Sequence[Chunk], sentence_vectors: np.ndarray) -> np.ndarray:
    """Each chunk's vector as the normalised mean of its sentences' vectors (no model call)."""
    out = np.empty((len(chunks), sentence_vectors.shape[1]), dtype=np.float32)
    for row, chunk in enumerate(chunks):
        mean = sentence_vectors[list(chunk.sentence_ids)].mean(axis=0)
        out[row] = mean / max(float(np.linalg.norm(mean)), 1e-12)
    return out


def chunk_index(vectors: np.ndarray, present: np.ndarray | None = None) -> faiss.Index:
    """A FAISS index of chunk vectors whose ids are chunk ids: every row, or only the rows ``present``
    (a boolean mask; the chunks of documents a model has not embedded yet are left out)."""
    if present is None or bool(present.all()):
        return build_vector_index(vectors)
    ids = np.flatnonzero(present).astype(np.int64)
    rows = np.ascontiguousarray(vectors[ids], dtype=np.float32)
    inner = build_vector_index(rows if len(ids) else np.zeros((1, vectors.shape[1]), dtype=np.float32))
    inner.reset()  # keeps an inverted file's training; the rows go in through the id map
    mapped = faiss.IndexIDMap2(inner)
    if len(ids):
        mapped.add_with_ids(rows, ids)
    return mapped


@dataclass(frozen=True)
class Coverage:
    """Which documents one model's vectors cover."""

    #: Documents with no sentence vectors of this model yet: the model does not serve them.
    missing: tuple[str, ...] = ()
    #: Documents served with chunk vectors derived from their sentences' until their chunks are embedded
    #: (only for a model that embeds its chunks).
    derived: tuple[str, ...] = ()

    @property
    def complete(self) -> bool:
        return not self.missing and not self.derived


@dataclass(frozen=True)
class ModelVectors:
    """One model's vectors of an index's texts, as answering reads them, and whom they cover."""

    sentences: np.ndarray  # a row per sentence; zeros for the documents of ``coverage.missing``
    chunks: faiss.Index  # ids are chunk ids; the chunks of ``coverage.missing`` are absent
    coverage: Coverage


def model_vectors(
    tables: Tables, found: Mapping[str, np.ndarray], dim: int, derive_chunks: bool
) -> ModelVectors:
    """One model's vectors of ``tables`` from ``found`` (its vectors by text sha256, possibly partial).

    A document is served when every sentence of it has a vector; its chunk vectors are the embedded ones
    when every chunk of it has one (and ``derive_chunks`` is off, which a model's recipe sets), otherwise
    the normalised mean of their sentences' vectors (:func:`chunk_vectors_from_sentences`).
    """
    by_doc: dict[str, list[int]] = {}
    for sid, sentence in enumerate(tables.sentences):
        by_doc.setdefault(sentence.doc_id, []).append(sid)
    sentence_keys = [sha256_text(s.text) for s in tables.sentences]
    served = {
        d.id for d in tables.documents if all(sentence_keys[i] in found for i in by_doc.get(d.id, ()))
    }
    sentences = np.zeros((len(tables.sentences), dim), dtype=np.float32)
    for sid, key in enumerate(sentence_keys):
        if tables.sentences[sid].doc_id in served:
            sentences[sid] = found[key]
    chunk_keys = [sha256_text(chunk_embed_text(c)) for c in tables.chunks]
    embedded: set[str] = set()
    if not derive_chunks:
        lacking = {c.doc_id for c in tables.chunks if chunk_keys[c.id] not in found}
        embedded = served - lacking
    chunks = chunk_vectors_from_sentences(tables.chunks, sentences)
    for chunk in tables.chunks:
        if chunk.doc_id in embedded:
            chunks[chunk.id] = found[chunk_keys[chunk.id]]
    present = np.array([c.doc_id in served for c in tables.chunks], dtype=bool)
    order = [d.id for d in tables.documents]
    coverage = Coverage(
        missing=tuple(d for d in order if d not in served),
        derived=() if derive_chunks else tuple(d for d in order if d in served and d not in embedded),
    )
    return ModelVectors(sentences, chunk_index(chunks, present), coverage)


def assemble(
    version: str,
    tables: Tables,
    models: Mapping[str, ModelVectors],
    chunk_lexicon: LexicalIndex | None = None,
    sentence_lexicon: LexicalIndex | None = None,
) -> SearchIndex:
    """A :class:`SearchIndex` over ``tables`` (BM25 built here unless given) with ``models`` (in build
    order); a model that serves no document yet is left out, and pending for every document."""
    pending: dict[str, list[str]] = {d.id: [] for d in tables.documents}
    for name, vectors in models.items():
        for doc_id in vectors.coverage.missing:
            pending[doc_id].append(name)
    serving = {n: v for n, v in models.items() if len(v.coverage.missing) < len(tables.documents)}
    return SearchIndex(
        version=version,
        documents={d.id: d for d in tables.documents},
        chunks=tables.chunks,
        sentences=tables.sentences,
        chunk_vectors={n: v.chunks for n, v in serving.items()},
        sentence_vectors={n: v.sentences for n, v in serving.items()},
        chunk_lexicon=chunk_lexicon or LexicalIndex.build(tables.chunk_texts, False, "chunks"),
        sentence_lexicon=sentence_lexicon or LexicalIndex.build(tables.sentence_texts, False, "sentences"),
        pending={d: tuple(m) for d, m in pending.items()},
    )


class IndexUnavailable(RuntimeError):
    """The index cannot be had: missing, incomplete, damaged, or nothing ready to serve yet."""


@dataclass
class SearchIndex:
    """A fully loaded index: tables, dense indexes per model, lexical indexes, and what it still lacks."""

    #: Names what is served (a file build id, or the database's generation): answer ids and the answer
    #: cache are keyed by it, and a store reloads when its own version differs.
    version: str
    documents: dict[str, Document]
    chunks: list[Chunk]
    sentences: list[Span]
    chunk_vectors: dict[str, faiss.Index]
    sentence_vectors: dict[str, np.ndarray]
    chunk_lexicon: LexicalIndex
    sentence_lexicon: LexicalIndex
    #: Per document, the models (of those the settings ask for) that have not embedded it yet, in the
    #: order they are built. A model no document has yet is pending for every document.
    pending: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # The chunks each sentence belongs to (overlapping windows: one or two), derived from the chunk table.
    sentence_chunks: list[list[int]] = field(init=False)

    def __post_init__(self) -> None:
        self.pending = {d: tuple(m) for d, m in self.pending.items() if m}
        self.sentence_chunks = [[] for _ in self.sentences]
        for chunk in self.chunks:
            for sid in chunk.sentence_ids:
                self.sentence_chunks[sid].append(chunk.id)

    @property
    def models(self) -> tuple[str, ...]:
        """The models that serve at least one document, in build order."""
        return tuple(self.chunk_vectors)

    @property
    def embedder_names(self) -> list[str]:
        return list(self.chunk_vectors)

    @property
    def build_id(self) -> str:
        """The same as :attr:`version` (the name the API shows as ``build_id``)."""
        return self.version

    def pending_models(self) -> tuple[str, ...]:
        """Every model some document still lacks, in build order."""
        found: dict[str, None] = {}
        for models in self.pending.values():
            found.update(dict.fromkeys(models))
        return tuple(found)

    def lacking(self, doc_ids: Iterable[str], models: Iterable[str]) -> dict[str, tuple[str, ...]]:
        """Of ``doc_ids``, those that lack one of ``models``, with the models they lack."""
        wanted = tuple(models)
        out = {}
        for doc_id in dict.fromkeys(doc_ids):
            missing = tuple(m for m in self.pending.get(doc_id, ()) if m in wanted)
            if missing:
                out[doc_id] = missing
        return out

    def without(self, models: Iterable[str]) -> SearchIndex:
        """The same index without ``models``' vectors (a view: the tables and BM25 are shared)."""
        dropped = set(models)
        view = replace(
            self,
            chunk_vectors={n: v for n, v in self.chunk_vectors.items() if n not in dropped},
            sentence_vectors={n: v for n, v in self.sentence_vectors.items() if n not in dropped},
            pending={d: tuple(m for m in ms if m not in dropped) for d, ms in self.pending.items()},
        )
        return view
