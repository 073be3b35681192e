"""Lexical index: BM25 (``bm25s``) over chunks, with a stemming tokenizer shared by the answer scorer."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import bm25s
import numpy as np
import Stemmer

_WORD = re.compile(r"[0-9]+(?:[-.][0-9]+)*|[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)
_stemmer = Stemmer.Stemmer("english")

STOPWORDS = frozenset(
    [
        "a",
        "about",
        "above",
        "after",
        "again",
        "against",
        "all",
        "also",
        "am",
        "an",
        "and",
        "any",
        "are",
        "as",
        "at",
        "be",
        "because",
        "been",
        "before",
        "being",
        "below",
        "between",
        "both",
        "but",
        "by",
        "can",
        "could",
        "did",
        "do",
        "does",
        "doing",
        "down",
        "during",
        "each",
        "few",
        "for",
        "from",
        "further",
        "had",
        "has",
        "have",
        "having",
        "he",
        "her",
        "here",
        "hers",
        "herself",
        "him",
        "himself",
        "his",
        "how",
        "i",
        "if",
        "in",
        "into",
        "is",
        "it",
        "its",
        "itself",
        "just",
        "me",
        "more",
        "most",
        "my",
        "myself",
        "no",
        "nor",
        "not",
        "now",
        "of",
        "off",
        "on",
        "once",
        "only",
        "or",
        "other",
        "our",
        "ours",
        "ourselves",
        "out",
        "over",
        "own",
        "same",
        "she",
        "should",
        "so",
        "some",
        "such",
        "than",
        "that",
        "the",
        "their",
        "theirs",
        "them",
        "themselves",
        "then",
        "there",
        "these",
        "they",
        "this",
        "those",
        "through",
        "to",
        "too",
        "under",
        "until",
        "up",
        "very",
        "was",
        "we",
        "were",
        "what",
        "when",
        "where",
        "which",
        "while",
        "who",
        "whom",
        "why",
        "will",
        "with",
        "would",
        "you",
        "your",
        "yours",
        "yourself",
        "yourselves",
        "according",
        "said",
        "say",
        "says",
        "did",
        "does",
        "ones",
        "one",
        "may",
        "might",
        "must",
        "shall",
        "s",
        "t",
        "don",
        "many",
        "much",
    ]
)


@lru_cache(maxsize=65536)
def _stem(word: str) -> str:
    return str(_stemmer.stemWord(word))


def words(text: str) -> list[str]:
    """Lower-cased word tokens of ``text`` ("Kim Jong-il's" -> ["kim", "jong-il's"])."""
    return [m.group(0).lower() for m in _WORD.finditer(text)]


def terms(text: str) -> list[str]:
    """Stemmed content terms: stop words dropped, hyphenated words also split into their parts."""
    out: list[str] = []
    for word in words(text):
        word = word.replace("’", "'")
        if word.endswith("'s"):
            word = word[:-2]
        parts = [word, *word.split("-")] if "-" in word else [word]
        for part in parts:
            if part and part not in STOPWORDS:
                out.append(_stem(part))
    return out


class LexicalIndex:
    """BM25 over a list of texts; ``scores`` gives one score per text."""

    def __init__(self, retriever: bm25s.BM25, size: int) -> None:
        self._retriever = retriever
        self.size = size

    @classmethod
    def build(cls, texts: list[str]) -> LexicalIndex:
        tokenized = [terms(t) or ["\x00"] for t in texts]
        retriever = bm25s.BM25(k1=1.2, b=0.75)
        retriever.index(tokenized, show_progress=False)
        return cls(retriever, len(texts))

    def scores(self, query: str) -> np.ndarray:
        query_terms = [t for t in terms(query) if t in self._retriever.vocab_dict]
        if not query_terms:
            return np.zeros(self.size, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(query_terms), dtype=np.float32)

    def vocabulary(self) -> frozenset[str]:
        return frozenset(self._retriever.vocab_dict)

    def save(self, path: Path) -> None:
        self._retriever.save(str(path))

    @classmethod
    def load(cls, path: Path, size: int) -> LexicalIndex:
        return cls(bm25s.BM25.load(str(path)), size)
