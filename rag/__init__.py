"""forum-qa: cited question answering over the Third Korea-Russia Forum report.

The pipeline, one module a stage: loading -> chunking -> embedding -> indexing (vectors, lexical)
-> retrieval -> reader -> answering, wrapped by :class:`ForumQA` (qa.py) and the ``forumqa`` CLI (cli.py).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rag.config import Settings
    from rag.embedding import ModelIntegrityError
    from rag.indexing import IndexUnavailable, build_index, ensure_index, load_index
    from rag.loading import CorpusError, load_corpus
    from rag.qa import ForumQA
    from rag.reader import ReaderModel, load_reader
    from rag.types import Answer, Chunk, Citation, Document, Section, Span, Turn

# Where each public name lives; imported on first use, so `import rag.config` (the CLI, the server's
# settings) does not pay for FAISS, bm25s and the models.
_EXPORTS = {
    "Settings": "rag.config",
    "ModelIntegrityError": "rag.embedding",
    "IndexUnavailable": "rag.indexing",
    "build_index": "rag.indexing",
    "ensure_index": "rag.indexing",
    "load_index": "rag.indexing",
    "CorpusError": "rag.loading",
    "load_corpus": "rag.loading",
    "ForumQA": "rag.qa",
    "ReaderModel": "rag.reader",
    "load_reader": "rag.reader",
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
    "Turn",
    "build_index",
    "ensure_index",
    "load_corpus",
    "load_index",
    "load_reader",
]
