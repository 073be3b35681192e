"""Latin letters for Cyrillic and Hangul: for BM25 query terms (Russian names of an English report's
people and places, :mod:`rag.index.lexical`) and for readable ASCII document ids (:mod:`rag.ingest.naming`).
"""

from __future__ import annotations

import re

# Russian letters, as the report spells Russian names ("Фокин" -> "Fokin", "Находка" -> "Nakhodka").
_CYRILLIC = dict(
    zip(
        "абвгдеёжзийклмнопрстуфхцчшщъыьэюя",
        [
            "a", "b", "v", "g", "d", "e", "yo", "zh", "z", "i", "i", "k", "l", "m", "n", "o", "p", "r",
            "s", "t", "u", "f", "kh", "ts", "ch", "sh", "shch", "_", "y", "_", "e", "yu", "ya",
        ],
        strict=True,
    )
)
_HAS_CYRILLIC = re.compile(r"[а-яё]")
# Letters of other Cyrillic alphabets (Ukrainian, Belarusian, Serbian, Macedonian) for ids.
_CYRILLIC_MORE = {"і": "i", "ї": "yi", "є": "ye", "ґ": "g", "ў": "u", "ј": "j", "љ": "lj", "њ": "nj",
                  "ћ": "c", "ђ": "dj", "џ": "dz", "ѓ": "gj", "ќ": "kj", "ѕ": "dz"}


def transliterate(word: str) -> str:
    """Latin spelling of a Cyrillic word ("фокин" -> "fokin"); other words unchanged."""
    if not _HAS_CYRILLIC.search(word):
        return word
    return "".join(_CYRILLIC.get(ch, ch) for ch in word.lower()).replace("_", "")


def cyrillic_letter(ch: str) -> str | None:
    """The Latin spelling of one Cyrillic letter (either case), or None when ``ch`` is not one."""
    low = ch.lower()
    if low in _CYRILLIC:
        return _CYRILLIC[low].replace("_", "")
    return _CYRILLIC_MORE.get(low)


# Hangul syllables by the Revised Romanization of Korean, letter by letter (without the sound changes
# where syllables meet): 한국 -> hanguk, 서울 -> seoul, 포럼 -> poreom.
_INITIALS = ["g", "kk", "n", "d", "tt", "r", "m", "b", "pp", "s", "ss", "", "j", "jj", "ch", "k", "t", "p",
             "h"]
_VOWELS = ["a", "ae", "ya", "yae", "eo", "e", "yeo", "ye", "o", "wa", "wae", "oe", "yo", "u", "wo", "we",
           "wi", "yu", "eu", "ui", "i"]
_FINALS = ["", "k", "k", "k", "n", "n", "n", "t", "l", "k", "m", "l", "l", "l", "p", "l", "m", "p", "p",
           "t", "t", "ng", "t", "t", "k", "t", "p", "t"]
_HANGUL_FIRST, _HANGUL_LAST = 0xAC00, 0xD7A3


def hangul_syllable(ch: str) -> str | None:
    """The romanized spelling of one Hangul syllable ("한" -> "han"), or None when ``ch`` is not one."""
    code = ord(ch)
    if not _HANGUL_FIRST <= code <= _HANGUL_LAST:
        return None
    index = code - _HANGUL_FIRST
    return _INITIALS[index // 588] + _VOWELS[(index % 588) // 28] + _FINALS[index % 28]
