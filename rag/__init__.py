"""forum-qa: cited question answering over the Third Korea-Russia Forum report.

The pipeline, one module a stage: loading -> chunking -> embedding -> indexing (vectors, lexical)
-> retrieval -> answering, wrapped by :class:`ForumQA` (qa.py) and the ``forumqa`` CLI (cli.py).
"""

from rag.config import Settings
from rag.embedding import ModelIntegrityError
from rag.indexing import IndexUnavailable, build_index, ensure_index, load_index
from rag.loading import CorpusError, load_corpus
from rag.qa import ForumQA
from rag.types import Answer, Chunk, Citation, Document, Section, Span, Turn

__all__ = [
    "Answer",
    "Chunk",
    "Citation",
    "CorpusError",
    "Document",
    "ForumQA",
    "IndexUnavailable",
    "ModelIntegrityError",
    "Section",
    "Settings",
    "Span",
    "Turn",
    "build_index",
    "ensure_index",
    "load_corpus",
    "load_index",
]
