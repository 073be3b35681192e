"""rag/index/lexical.py on its own: the tokenizer, stemming and stop words, Cyrillic transliteration, BM25
scores checked against the formula computed by hand on a tiny corpus, and rare_terms."""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import Stemmer

from rag.index.lexical import LexicalIndex, stem, terms, transliterate, words

# LexicalIndex.build's BM25 parameters (bm25s' "lucene" variant).
K1, B = 1.2, 0.75

CORPUS = [
    "Ships sail north.", "Ships carry cargo and cargo.", "Trains carry coal.", "The harbour of the city."
]
# The stemmed content terms of each text, written out by hand: "and", "the" and "of" are stop words.
CORPUS_TERMS = [
    ["ship", "sail", "north"],
    ["ship", "carri", "cargo", "cargo"],
    ["train", "carri", "coal"],
    ["harbour", "citi"],
]

NAMES = ["Yuri Fokin led the delegation.", "Fokin spoke first.", "Fokin closed the forum.",
         "Nakhodka hosts the complex."]


def bm25(query_terms: list[str], corpus_terms: list[list[str]]) -> list[float]:
    """BM25 by the book (Lucene's idf, Robertson's term frequency part), one score per text."""
    n = len(corpus_terms)
    average = sum(len(t) for t in corpus_terms) / n
    df = Counter(term for text in corpus_terms for term in set(text))
    scores = []
    for text in corpus_terms:
        tf = Counter(text)
        score = 0.0
        for term in query_terms:
            if tf[term]:
                idf = math.log(1 + (n - df[term] + 0.5) / (df[term] + 0.5))
                score += idf * tf[term] / (tf[term] + K1 * (1 - B + B * len(text) / average))
        scores.append(score)
    return scores


# ------------------------------------------------------------------------------------- tokens


def test_words_are_lower_cased_and_keep_hyphens_apostrophes_and_numbers() -> None:
    assert words("Kim Jong-il's DELEGATES met on 27-28 September; 3.5 per cent.") == [
        "kim", "jong-il's", "delegates", "met", "on", "27-28", "september", "3.5", "per", "cent"
    ]
    assert words("1,000 people") == ["1", "000", "people"]  # the comma splits: "1,000" is two numbers
    assert words("Фокин и Находка") == ["фокин", "и", "находка"]
    assert words("— … !?") == []


def test_stems_are_the_english_snowball_stemmers() -> None:
    snowball = Stemmer.Stemmer("english")
    for word in ("delegations", "running", "ships", "carry", "cities", "cooperation"):
        assert stem(word) == snowball.stemWord(word)
    assert stem("delegations") == stem("delegation") and stem("ships") == stem("ship")


def test_terms_drop_stop_words_and_possessives_and_split_hyphenated_words() -> None:
    assert terms("the of and was were to in") == []
    parts = ["kim", "jong-il", "jong", "il", "ships"]  # the whole hyphenated word, then its parts
    assert terms("Kim Jong-il's ships") == [stem(part) for part in parts]
    assert terms("Lee’s delegation") == terms("Lee's delegation") == [stem("lee"), stem("delegation")]
    assert [terms(text) for text in CORPUS] == CORPUS_TERMS


def test_cyrillic_is_transliterated_and_latin_left_alone() -> None:
    assert transliterate("Фокин") == "fokin"
    assert transliterate("Находка") == "nakhodka"
    assert transliterate("объект") == "obekt"  # the hard and soft signs have no letter of their own
    assert transliterate("щи") == "shchi"
    for word in ("Seoul", "MGIMO", "27-28", "서울"):
        assert transliterate(word) == word


# --------------------------------------------------------------------------------------- BM25


@pytest.mark.parametrize("query", ["cargo ships", "carry", "north harbour city", "Trains carrying coal"])
def test_scores_are_bm25_by_the_book(query: str) -> None:
    index = LexicalIndex.build(CORPUS)
    expected = bm25(terms(query), CORPUS_TERMS)
    assert index.scores(query) == pytest.approx(expected, rel=1e-5)
    assert index.scores(query).dtype == np.float32 and index.size == len(CORPUS)


def test_a_rarer_term_and_a_repeated_term_weigh_more() -> None:
    scores = LexicalIndex.build(CORPUS).scores("cargo ships")
    # "cargo" (one text, twice) outweighs "ships" (two texts, once each); the rest do not match.
    assert scores[1] > scores[0] > 0 and scores[2] == scores[3] == 0


@pytest.mark.parametrize("query", ["", "the of and", "zeppelin", "??"])
def test_a_query_with_no_indexed_term_scores_zero(query: str) -> None:
    assert not LexicalIndex.build(CORPUS).scores(query).any()


def test_a_saved_index_loads_with_the_same_scores_and_vocabulary(tmp_path: Path) -> None:
    index = LexicalIndex.build(CORPUS)
    index.save(tmp_path / "bm25")
    loaded = LexicalIndex.load(tmp_path / "bm25", len(CORPUS))
    for query in ("cargo ships", "carry coal"):
        assert loaded.scores(query) == pytest.approx(index.scores(query))
    assert loaded.vocabulary() == index.vocabulary() >= {t for text in CORPUS_TERMS for t in text}


# ------------------------------------------------------------------------ names in Cyrillic


def test_a_cyrillic_name_finds_the_latin_spelling_even_inflected() -> None:
    index = LexicalIndex.build(NAMES)
    latin = index.scores("Fokin")
    assert index.scores("Фокин") == pytest.approx(latin)
    assert index.scores("Фокина") == pytest.approx(latin)  # genitive: the closest indexed term
    assert latin[:3].all() and latin[3] == 0


def test_russian_question_words_are_not_transliterated() -> None:
    index = LexicalIndex.build(NAMES)
    assert index.scores("Что Фокин") == pytest.approx(index.scores("Фокин"))
    assert not index.scores("Когда это было").any()


def test_rare_terms_are_transliterated_names_in_few_texts() -> None:
    index = LexicalIndex.build(NAMES)
    nakhodka, fokin = stem("nakhodka"), stem("fokin")
    assert index.rare_terms("Фокин и Находка") == {nakhodka}  # Fokin is in three texts
    assert index.rare_terms("Фокин и Находка", max_df=3) == {nakhodka, fokin}
    assert index.rare_terms("Fokin and Nakhodka") == frozenset()  # only names written in Cyrillic count
    assert index.rare_terms("Что такое Сеул") == frozenset()  # no such name in the texts
