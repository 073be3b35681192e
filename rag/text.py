"""Text analysis shared by every stage: the one place where a rule about words, numbers, dates, names,
scripts or negation is written.

The index (BM25's terms), the reader (what a sentence offers), the short-answer finder (spans) and the
grounding check (numbers and names an answer states, negations, scripts) all read text through this
module, so a fix to "1,000" lands once and the models fitted on these features move together. It imports
no stage of the package. What a *question* asks for is the answer stage's own analysis
(:mod:`rag.answer.question`), built on these rules.

Results are frozen dataclasses computed once per text (:class:`SentenceMarks`); the regular expressions
are public so that span finders can build on them.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

import Stemmer
from bm25s.stopwords import STOPWORDS_RUSSIAN

# ------------------------------------------------------------------------------------ words and terms

# A word of the lexical index: a number with inner "-" or "." ("2008-09", "3.5"), or letters with inner
# apostrophes and hyphens ("jong-il's"); digits and letters are split ("U2" -> "u", "2").
_WORD = re.compile(r"[0-9]+(?:[-.][0-9]+)*|[^\W\d_]+(?:['’-][^\W\d_]+)*", re.UNICODE)
_stemmer = Stemmer.Stemmer("english")


def _words_of(text: str) -> list[str]:
    return text.split()


def word_set(text: str) -> frozenset[str]:
    return frozenset(_words_of(text))


# The English stopwords of BM25, the reader's overlap features and the grounding check's content words.
# bm25s ships two English lists: STOPWORDS_EN (33 words, all of them in this list) and STOPWORDS_EN_PLUS
# (NLTK's 179: it adds contractions such as "aren't", and lacks "according", "said", "one", "many",
# "much", "may"...). Either would change every BM25 index and the reader's features, so the reader
# would have to be refitted and re-measured; not done yet, so the list stays the one the shipped
# models were fitted with.
STOPWORDS = word_set(
    """a about above after again against all also am an and any are as at be because been before being
    below between both but by can could did do does doing down during each few for from further had has
    have having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves according said say says ones one may might must shall s t
    don many much"""
)

# The short-answer finder's function words: a candidate span made only of these, or of the question's
# words, is no answer. It drops more connectives ("although", "whether"), "first"/"last" and verbs of
# no content ("get", "made"), and keeps "one", "said" and reflexive pronouns, which can be answers.
FUNCTION_WORDS = (
    STOPWORDS
    - word_set(
        """according again don further herself himself itself myself now one ones ourselves said say says
        t themselves yourself yourselves"""
    )
) | word_set(
    """'s across along although among another around done either even every fewer first get got it's
    last least less made make mine near neither one's onto since still though throughout till toward
    towards unless upon us whatever whether whichever whoever whose within without yet"""
)

# Russian words that are never transliterated to meet the report's names: bm25s's Russian list
# (pronouns, prepositions, particles) and question words and particles it lacks ("почему", "сколько"),
# which transliterated would match English words by accident.
RUSSIAN_STOPWORDS = frozenset(STOPWORDS_RUSSIAN) | word_set(
    """весь всё какие какое кого кому оно очень почему свои свой своя сколько такая также такие такое
    эта это"""
)


@lru_cache(maxsize=65536)
def stem(word: str) -> str:
    """The form under which the lexical indexes store ``word`` (lower-cased)."""
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
                out.append(stem(part))
    return out


def strip_accents(text: str) -> str:
    """``text`` without combining marks ("Beyoncé" -> "Beyonce"); other characters kept."""
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


# ------------------------------------------------------------------------------------ script


def _is_latin_letter(ch: str) -> bool:
    return ch.isascii() or unicodedata.name(ch, "").startswith("LATIN")


def letters(text: str) -> tuple[int, int]:
    """How many letters of ``text`` are Latin (accented ones included: "Beyoncé") and how many are not."""
    latin = other = 0
    for ch in text:
        if ch.isalpha():
            if _is_latin_letter(ch):
                latin += 1
            else:
                other += 1
    return latin, other


def is_latin(text: str) -> bool:
    """Whether ``text`` is written mostly in Latin letters: at least twice as many Latin letters as
    letters of other scripts, and at least one.

    One rule for the service: which confidence an asked question gets (the English gate or the
    cross-lingual one) and which model checks a generated sentence (MiniLM or USE). A Korean
    sentence quoting an English name stays Korean; an English one quoting a Korean word stays English.
    """
    latin, other = letters(text)
    return latin > 0 and latin >= 2 * other


def script_of(text: str) -> str:
    """ "latin" (no letter of another script), "other", or "mixed" (some of both, at least three
    Latin): which embedders a question is searched with (:func:`rag.answer.retrieval.dense_models_for`)."""
    latin, other = letters(text)
    if other == 0:
        return "latin"
    if latin == 0:
        return "other"
    return "mixed" if latin >= 3 else "other"


# ------------------------------------------------------------------------------------ numbers and dates

YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})s?\b")
MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December|"
    r"Jan|Feb|Mar|Apr|Jun|Jul|Aug|Sep|Sept|Oct|Nov|Dec)\b\.?"
)
MONTH_NAMES = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
DATE_WORD = re.compile(r"\b(century|decade|centuries|BC|AD|BCE|CE)\b")
# A number as a sentence mentions it: digits ("1,000", "3.5", "60%") or a number word.
NUMBER = re.compile(
    r"(?<![\w.])\d+(?:[.,]\d+)*%?|\b(one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|"
    r"twenty|thirty|forty|fifty|hundred|hundreds|thousand|thousands|million|millions|billion|dozen|"
    r"half|twice|double)\b",
    re.IGNORECASE,
)
# Digits alone, for looking a question's numbers up in the documents.
DIGITS = re.compile(r"(?<![\w.])\d+(?:[.,]\d+)*")
_DIGITS_NORMALISED = re.compile(r"(?<![\d.,])\d+(?:[.,]\d+)*")

# Number words and the digits they stand for (English and Russian).
NUMBER_VALUES: dict[str, str] = {
    w: str(i)
    for i, w in enumerate(
        _words_of(
            """zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen
            fifteen sixteen seventeen eighteen nineteen twenty"""
        )
    )
}
NUMBER_VALUES.update({"thirty": "30", "forty": "40", "fifty": "50", "sixty": "60", "seventy": "70"})
NUMBER_VALUES.update({"eighty": "80", "ninety": "90", "hundred": "100", "thousand": "1000"})
NUMBER_VALUES.update({"dozen": "12", "million": "1000000", "billion": "1000000000"})
NUMBER_VALUES.update(
    {
        w: str(i + 1)
        for i, w in enumerate(_words_of("один два три четыре пять шесть семь восемь девять десять"))
    }
)
NUMBER_VALUES.update({"двадцать": "20", "тридцать": "30", "семьдесят": "70", "сто": "100"})
_ORDINAL_VALUES = {
    w: str(i + 1)
    for i, w in enumerate(
        _words_of(
            """first second third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth
            thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth nineteenth twentieth"""
        )
    )
}
_MONTH_VALUES = {m: str(i + 1) for i, m in enumerate(MONTH_NAMES)}
# What a text may write as a number elsewhere ("the last decade" -> 10년).
_SPAN_VALUES = {"decade": "10", "decades": "10", "century": "100", "dozen": "12", "half": "50"}


def numbers(text: str, months: bool = False) -> set[str]:
    """The numbers ``text`` states, normalised: "1,000" -> "1000", "twenty" -> "20", "27-28" -> 27, 28.

    With ``months``, month names, ordinals and spans ("decade") count as their number too: on a
    passage's side, what an answer in another language may write in digits (September as 9월).
    """
    out: set[str] = set()
    for m in _DIGITS_NORMALISED.finditer(text):
        raw = m.group(0)
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+", raw):
            raw = raw.replace(",", "")
        raw = raw.replace(",", ".")
        if "." in raw:
            raw = raw.rstrip("0").rstrip(".")
        out.add(raw.lstrip("0") or "0")
    for word in words(text):
        for part in word.split("-"):
            if part in NUMBER_VALUES:
                out.add(NUMBER_VALUES[part])
            elif months and part in _MONTH_VALUES:
                out.add(_MONTH_VALUES[part])
            elif months and part in _SPAN_VALUES:
                out.add(_SPAN_VALUES[part])
            elif months and part in _ORDINAL_VALUES:
                out.add(_ORDINAL_VALUES[part])
    return out


# ------------------------------------------------------------------------------------ negation

# English, Russian and Korean negations. The reader asks whether a question is negated; the grounding
# check whether an answer negates what its passage affirms, and what the negation's scope is.
NEGATION = re.compile(
    r"\b(?:not|never|no|none|neither|nor|nobody|nothing|without)\b|n't\b|"
    r"(?<!\w)(?:не|нет|ни|никогда|ничего|никто|без)(?!\w)|않|없|못|아니|(?<!\w)안(?= )",
    re.IGNORECASE,
)


def negated(text: str) -> bool:
    return NEGATION.search(text) is not None


# ------------------------------------------------------------------------------------ names

# A capitalised word, Latin or Cyrillic, not inside another word.
CAPITALISED = re.compile(r"(?<![\w'’-])[A-Z][\w'’-]*|(?<![\w'’-])[А-ЯЁ][\w'’-]*")
# The reader's looser form: a capital after any word boundary ("Jong-Il" holds "Il").
_CAPITALISED_LOOSE = re.compile(r"\b[A-Z][\w'’-]*")
_PLACE = re.compile(r"\b(?:in|at|near|from|to|into|across|outside|inside) (?:the )?([A-Z][\w'’-]*)")
_CAUSE = re.compile(
    r"\b(because|since|due to|owing to|so that|in order to|as a result|therefore|thus|led to|caused|"
    r"reason|so as to|aimed at|to help|to ensure)\b",
    re.IGNORECASE,
)
# A sentence that opens by pointing back ("It was...", "They also..."): it leans on the one before.
PRONOUN_START = re.compile(
    r"^\W*(it|he|she|they|this|these|those|that|his|her|its|their|there|such|the latter|the former|"
    r"the same|both|also|however|but)\b",
    re.IGNORECASE,
)
# A sentence that goes on about what the one before it named: it opens with a pronoun or a definite
# article ("It was chaired by...", "The budget is...", "The motion was defeated..."). Reports name a topic
# in one sentence and complete it in the next; the answer quotes the two together.
REFERS_BACK = re.compile(
    r"^\W*(?:it|he|she|they|this|these|those|that|his|her|its|their|such|both|each|the)\b",
    re.IGNORECASE,
)


def fold_name(raw: str) -> str:
    """A capitalised word as names are compared: lower-cased, possessive and accents dropped
    ("Beyoncé's" -> "beyonce")."""
    word = raw.lower().replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    return strip_accents(word).encode("ascii", "ignore").decode() or word


def names(sentence: str) -> list[str]:
    """Capitalised words of a sentence, folded ("Beyoncé's" -> "beyonce"), stopwords and number words
    aside.

    The opening word is capitalised anyway, so it counts only when it looks like a name regardless: a
    capital or a digit inside ("iPod", "U2"), or a capitalised word after it ("Kim Dae-jung ..."). On the
    held-out articles, counting every opening word dropped answer-style sentences ("Needed for ...").
    """
    out = []
    for m in CAPITALISED.finditer(sentence):
        raw = m.group(0)
        word = fold_name(raw).strip("'-")
        if not word or word in STOPWORDS or word in NUMBER_VALUES:
            continue
        if not sentence[: m.start()].strip(" \"'“‘(["):
            rest = sentence[m.end() :].lstrip()
            if not (re.search(r"[A-Z0-9]", raw[1:]) or rest[:1].isupper()):
                continue
        out.append(word)
    return out


@dataclass(frozen=True, slots=True)
class SentenceMarks:
    """What a sentence holds that may answer a question, found once per sentence (the regexes are slow)."""

    dated: bool  # a month or a date word ("century")
    years: tuple[str, ...]
    numbers: tuple[str, ...]  # lower-cased
    names: tuple[str, ...]  # capitalised words but the first of a sentence, lower-cased
    places: tuple[str, ...]  # the name after "in/at/near...", lower-cased
    cause: bool  # a causal phrase ("because", "due to")

    @classmethod
    def of(cls, sentence: str) -> SentenceMarks:
        found = tuple(
            m.group(0).lower().strip("'’")
            for m in _CAPITALISED_LOOSE.finditer(sentence)
            # a sentence's first word is capitalised anyway
            if m.start() and not sentence[: m.start()].rstrip().endswith((".", '"', "“"))
        )
        return cls(
            bool(MONTH.search(sentence) or DATE_WORD.search(sentence)),
            tuple(m.group(0) for m in YEAR.finditer(sentence)),
            tuple(m.group(0).lower() for m in NUMBER.finditer(sentence)),
            found,
            tuple(m.group(1).lower().strip("'’") for m in _PLACE.finditer(sentence)),
            bool(_CAUSE.search(sentence)),
        )
