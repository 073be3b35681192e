"""forum-qa: cited question answering over the Third Korea-Russia Forum report.

The package is laid out by stage, each importing only from the stages before it:
``ingest`` (files to documents and chunks) → ``index`` (embeddings, FAISS, BM25, staged builds) → ``store``
(where documents live and the index comes from: folders or PostgreSQL; with ``serving``, its background
threads, and ``feedback``) → ``answer`` (retrieval, reader, cited answer) → ``generate`` (an LLM's answer
and its grounding check); ``train`` rebuilds the shipped models. At the top: :class:`ForumQA` (qa.py) wires
the stages, the ``forumqa`` CLI (cli/), ``evaluation``, and what every stage shares: ``types``, ``config``
and ``hashing``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.answer.reader import ReaderModel, load_reader
    from rag.config import Settings
    from rag.index.build import build_index, ensure_index
    from rag.index.embedders import ModelIntegrityError
    from rag.index.publish import load_build
    from rag.index.search_index import IndexUnavailable
    from rag.ingest.extraction import CorpusError
    from rag.ingest.loading import load_corpus
    from rag.qa import ForumQA
    from rag.store import Store, open_store
    from rag.types import Answer, Chunk, Citation, Document, Section, Span, Turn

# Where each public name lives; imported on first use, so `import rag.config` (the CLI, the server's
# settings) does not pay for FAISS, bm25s and the models.
_EXPORTS = {
    "Settings": "rag.config",
    "ModelIntegrityError": "rag.index.embedders",
    "IndexUnavailable": "rag.index.search_index",
    "build_index": "rag.index.build",
    "ensure_index": "rag.index.build",
    "load_build": "rag.index.publish",
    "Store": "rag.store",
    "open_store": "rag.store",
    "CorpusError": "rag.ingest.extraction",
    "load_corpus": "rag.ingest.loading",
    "ForumQA": "rag.qa",
    "ReaderModel": "rag.answer.reader",
    "load_reader": "rag.answer.reader",
    **dict.fromkeys(["Answer", "Chunk", "Citation", "Document", "Section", "Span", "Turn"], "rag.types"),
}


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'rag' has no attribute {name!r}")


__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "CorpusError",
    "Document",
    "ForumQA",
    "IndexUnavailable",
    "ModelIntegrityError",
    "ReaderModel",
    "Section",
    "Settings",
    "Span",
    "Store",
    "Turn",
    "build_index",
    "ensure_index",
    "load_build",
    "load_corpus",
    "load_reader",
    "open_store",
]
