"""Lexical index: BM25 (``bm25s``) over chunks, on the terms of :func:`rag.text.terms` (the reader's too)."""

from __future__ import annotations

import difflib
import logging
import sys
from pathlib import Path

import bm25s
import numpy as np
from tqdm import tqdm

from rag.ingest.transliteration import transliterate
from rag.text import RUSSIAN_STOPWORDS, stem, terms, words

# bm25s logs every index build at DEBUG through a logger it configures itself.
logging.getLogger("bm25s").setLevel(logging.WARNING)

# Russian questions name people and places of an English report in Cyrillic ("Фокин", "Находка"):
# transliterated (rag/ingest/transliteration.py), they meet the report's spelling ("Fokin", "Nakhodka")
# closely enough to match.


class LexicalIndex:
    """BM25 over a list of texts; ``scores`` gives one score per text."""

    def __init__(self, retriever: bm25s.BM25, size: int) -> None:
        self._retriever = retriever
        self.size = size
        self._latin_terms: list[str] | None = None
        self._frequencies: dict[str, int] | None = None

    @classmethod
    def build(cls, texts: list[str], progress: bool = False, what: str = "texts") -> LexicalIndex:
        bar = tqdm(
            texts,
            desc=f"BM25 of {what}",
            unit="texts",
            disable=not progress or not texts,
            leave=False,
            file=sys.stderr,
            dynamic_ncols=True,
        )
        tokenized = [terms(t) or ["\x00"] for t in bar]
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index(tokenized, show_progress=False)
        return cls(retriever, len(texts))

    def scores(self, query: str, leave_out: frozenset[str] = frozenset()) -> np.ndarray:
        """BM25 of every text for ``query``'s terms, but those of ``leave_out``."""
        vocabulary = self._retriever.vocab_dict
        query_terms = [t for t in terms(query) if t in vocabulary and t not in leave_out]
        query_terms += self._transliterated_terms(query)
        if not query_terms:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(query_terms), dtype=np.float32)

    def _transliterated_terms(self, query: str) -> list[str]:
        """Index terms close to the Latin spelling of the query's Cyrillic words (names, places)."""
        found = []
        for word in words(query):
            latin = transliterate(word)
            if latin == word or len(latin) < 4 or word in RUSSIAN_STOPWORDS:
                continue
            stemmed = stem(latin)
            if stemmed in self._retriever.vocab_dict:
                found.append(stemmed)
                continue
            close = difflib.get_close_matches(stemmed, self._latin_vocabulary(), n=1, cutoff=0.8)
            found.extend(close)
        return found

    def _latin_vocabulary(self) -> list[str]:
        if self._latin_terms is None:
            self._latin_terms = [t for t in self._retriever.vocab_dict if isinstance(t, str) and t.isascii()]
        return self._latin_terms

    def rare_terms(self, query: str, max_df: int = 2) -> frozenset[str]:
        """Transliterated query terms found in at most ``max_df`` texts: names, places, rare words."""
        frequencies = self._document_frequencies()
        return frozenset(t for t in self._transliterated_terms(query) if frequencies.get(t, 0) <= max_df)

    def _document_frequencies(self) -> dict[str, int]:
        if self._frequencies is None:
            indptr = np.asarray(self._retriever.scores["indptr"])  # bm25s: CSC matrix, one column a term
            self._frequencies = {
                term: int(indptr[i + 1] - indptr[i])
                for term, i in self._retriever.vocab_dict.items()
                if i + 1 < len(indptr)
            }
        return self._frequencies

    def vocabulary(self) -> frozenset[str]:
        return frozenset(self._retriever.vocab_dict)

    def save(self, path: Path) -> None:
        self._retriever.save(str(path))

    @classmethod
    def load(cls, path: Path, size: int) -> LexicalIndex:
        return cls(bm25s.BM25.load(str(path)), size)
