"""Mark the short answer inside an answer sentence, when a few surface rules are confident about it.

The service quotes a whole sentence; this module points at the phrase in it that answers the question
("When did ... become popular?" -> "the late 1990s"): rules plus two small logistic models per answer
type (``rag/models/short_answer.json``, sha256 pinned, rebuilt by ``forumqa train-short-answer``), pure
Python, well under a millisecond per call:

1. *Answer type* from the question's wording (:class:`rag.answer.question.QuestionForm`): when/what
   year -> DATE; how many/much/long, what percentage -> NUMBER; who/whom/whose -> PERSON; where/what
   city -> PLACE; what/which + noun -> ENTITY; anything else (what did, why, how did ...) -> OTHER.
2. *Candidates* of that type in the sentence: dates (years, decades, "17 October 1849", "the late
   1990s", "Tuesday 14 May 2024", "24 and 25 May", "in December", "9.40pm"), quantities (numbers with
   a currency sign, code or name, approximations, scale words, percent, a unit or counted noun and a
   rate: "some 240 delegates", "nearly a third", "KSh 92 per kg", "25,000 Norwegian kroner", "Eleven
   of the twelve"), names (runs of capitalised words, joined by "of"/"the"/"de"... across a lowercase
   job title, so "Korea Foundation president Lee In-ho" stays whole, and across an abbreviated title:
   "Dr. Ana Dobre"), lists of names ("Akureyri, Iceland"), quoted titles and, for what/which
   questions, runs of content words ("a moment of silence") and any of the above. A candidate whose
   content words all occur in the question (accents, case, plurals and possessives folded) is
   dropped: the question never asks for what it already says.
3. *Ranking*: a conditional logit per answer type over named features (``FEATURES``) such as how
   close the candidate is to the question's words found in the sentence (compared by stem, so
   "attended" meets "Attending"; the subject of a relative "who" counts as next to its verb), whether
   the preposition before it echoes the question's ("In what year" -> "in 1913"), whether it looks
   like a person or an organisation.
4. *Confidence*: a second logistic model (``CALIBRATION_FEATURES``) maps the best candidate's rank
   score, its margin over the runner-up, its softmax share and the number of candidates to an
   estimated probability that the span is right (contains a crowd answer, or lies inside one covering
   at least half of it), and a short answer is returned when that reaches the threshold trained for
   the question's type.

Both are fitted by :mod:`rag.train.short_answer` on SQuAD 2.0 questions about the five training articles
of the reader and the report-like documents of ``eval/reports``' fit split (sentence = the evidence
sentence); the calibration and the thresholds on cross-fitted rankings (each document scored by a
ranking fitted without it). Each type's threshold is the lowest at which precision there is at least
0.85 (1.0, never, for places: no threshold reaches it). On the five held-out SQuAD articles a short
answer is returned for 0.27 of the answerable questions and is right 0.85 of the time (dates: 0.93
shown, 0.88 right; numbers 0.67, 0.81; people 0.32, 0.81; what/which 0.03, 0.86); on the held-out
report-like documents for 0.74, right 0.98. Per type in ``forumqa train-short-answer``'s report.
"""

from __future__ import annotations

import itertools
import math
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import Enum
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from rag.answer.question import AnswerType, QuestionForm, Token, fold, parts, question_form
from rag.answer.question import answer_type as answer_type
from rag.answer.question import tokens as tokenize
from rag.index.embedders import load_pinned
from rag.linear import LinearModel, dump_model, read_model, rounded
from rag.text import FUNCTION_WORDS, MONTH_NAMES, stem

__all__ = [
    "AnswerType",
    "ShortAnswer",
    "ShortAnswerFinder",
    "ShortAnswerModel",
    "answer_type",
    "load_model",
    "short_answer",
]

MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "short_answer.json"
# The sha256 of the shipped model; `forumqa train-short-answer` reproduces these bytes from the data.
MODEL_SHA256 = "d3d37ebd31cc386eaa303e14d0a178de8c38a9b0a59aeaf48296c561737176b1"


@dataclass(frozen=True, slots=True)
class ShortAnswer:
    """A span of the sentence passed to :func:`short_answer`: ``sentence[start:end] == text``."""

    start: int
    end: int
    text: str
    confidence: float  # estimated probability (0..1) that the span is, contains or lies inside a right answer


class Kind(Enum):
    """What a candidate span looks like."""

    DATE = "date"
    NUMBER = "number"
    NAME = "name"
    QUOTE = "quote"
    PHRASE = "phrase"  # a run of content words, any case: "a moment of silence", "religious purposes"


# --------------------------------------------------------------------------------------------------
# Word lists
# --------------------------------------------------------------------------------------------------


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Capitalised words that start sentences or clauses but never name anything on their own.
_CAPITAL_FUNCTION_WORDS = FUNCTION_WORDS | _words(
    """however although despite following according meanwhile later earlier today yesterday tomorrow
    thus hence therefore furthermore moreover instead indeed nevertheless nonetheless additionally
    initially finally eventually originally subsequently currently recently previously today one two
    three four five six seven eight nine ten several numerous various most many"""
)

# Capitalised adjectives built with a hyphen ("London-based", "Grammy-nominated") describe, not name.
_ADJECTIVE_SUFFIX = re.compile(
    r"-(?:based|born|bred|led|owned|run|made|nominated|winning|award-winning|language|speaking|"
    r"style|styled|themed|era|like|inspired|backed|funded|sponsored|related|born)$",
    re.IGNORECASE,
)

# Lowercase words that may sit inside a capitalised name: "Bank of America", "Leonardo da Vinci". Names
# joined by "and" or commas are lists (:func:`_lists`), candidates besides each of their names.
_NAME_JOINERS = _words(
    "of the de da di del della du des van von der den la le y zu dos das do bin ibn al el ter ten"
)

# Lowercase words between an organisation and a person's name: "Korea Foundation president Lee In-ho".
_TITLES = _words(
    """president chairman chairwoman chair director minister ambassador secretary professor chief
    head leader founder ceo editor manager governor mayor senator spokesman spokeswoman spokesperson
    commander general captain king queen prince princess emperor pope bishop composer singer writer
    author actor actress producer coach deputy vice envoy official researcher"""
)

_MONTHS = (
    "January|February|March|April|May|June|July|August|September|October|November|December|"
    "Jan\\.|Feb\\.|Mar\\.|Apr\\.|Jun\\.|Jul\\.|Aug\\.|Sept?\\.|Oct\\.|Nov\\.|Dec\\."
)
_WEEKDAYS = "Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday"


def _alternatives(words: str) -> str:
    """A regex alternation of ``|``-separated phrases whose spaces match any white space (the patterns
    below are verbose: a literal space in them would match nothing)."""
    return "|".join(r"\s+".join(map(re.escape, w.split())) for w in words.split("|"))


_NUMBER_WORDS = _alternatives(
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|a hundred|a thousand|dozen|a dozen|dozens|hundreds|thousands|millions|half|a half|"
    "a third|a quarter|one-third|two-thirds|one-quarter|three-quarters|single|double|triple|"
    "twice|thrice|once"
)
_SCALE = "hundred|thousand|million|billion|trillion|crore|lakh|bn|m|k"
_APPROX = _alternatives(
    "about|around|approximately|nearly|almost|roughly|some|over|under|up to|more than|less than|"
    "fewer than|at least|at most|as many as|as much as|as few as|upwards of|just over|just under|"
    "an estimated|estimated|only|just|close to|well over|an average of|a total of|a maximum of|"
    "a minimum of|in excess of|no more than|no fewer than"
)
# Currency signs and codes written before an amount: "$1.5 million", "KSh 92", "€6,000", "Rs 40".
_CURRENCY_BEFORE = (
    r"(?:US\$|A\$|C\$|NZ\$|HK\$|S\$|R\$|[$£€¥₩₹₽₱₦₺]|"
    r"\b(?:USD|EUR|GBP|RMB|CNY|JPY|INR|RUB|KSh|Ksh|KES|Rs\.?|NOK|SEK|DKK|CHF|ZAR|NGN|PHP|HRK|ZMW|TRY)\b)"
)
# Currencies named after an amount: "12 billion roubles", "25,000 Norwegian kroner".
_CURRENCY_WORDS = _words(
    """dollar dollars euro euros pound pounds sterling yen yuan renminbi won rouble roubles ruble rubles
    rupee rupees kwacha kuna kunas dinar dinars shilling shillings krona kronor krone kroner franc
    francs rand naira lira lire liras peso pesos real reais baht ringgit rupiah dong zloty zlotys forint
    koruna lev leva lei leu lari dram manat tenge som hryvnia hryvnias cedi cedis birr dirham dirhams
    riyal riyals rial rials taka cents pence"""
)
# Nouns a count or amount is measured in; a following noun from this list is part of the answer.
_UNITS = (
    _words(
        """percent per cent percentage points point points degrees degree years year months month weeks
    week days day hours hour minutes minute seconds second decades decade centuries century times
    km kilometres kilometers kilometre kilometer miles mile metres meters metre meter m cm mm ft feet
    foot inches inch sq square acres acre hectares hectare km2 mi tons tonnes ton tonne kg kilograms
    pounds lb lbs ounces oz grams g mph km/h kmh liters litres gallons people persons residents
    inhabitants members students employees workers visitors copies units albums songs singles records
    awards nominations votes seats games episodes nights performances concerts shows floors stories
    storeys buildings times participants delegates attendees guests households customers families
    passengers vehicles cars trucks lorries sailings flights trips staff councillors countries
    towns villages cities schools branches libraries museums objects items fields pages loans books
    mw kw kwh gw gwh mwh kwp"""
    )
    | _CURRENCY_WORDS
) - {"per", "cent"}
# --------------------------------------------------------------------------------------------------
# Text helpers
# --------------------------------------------------------------------------------------------------


def _is_capitalised(token: str) -> bool:
    return token[:1].isupper() or (token[:1].isdigit() and any(c.isupper() for c in token))


def _name_word(token: str) -> bool:
    """A word that can be part of a name: capitalised, not a month, not a hyphenated adjective."""
    return (
        _is_capitalised(token)
        and token[:1].isalnum()
        and token.casefold() not in MONTH_NAMES
        and _ADJECTIVE_SUFFIX.search(token) is None
    )


# --------------------------------------------------------------------------------------------------
# Step 1: the answer type the question expects
# --------------------------------------------------------------------------------------------------

# The question's analysis (answer type, head noun, preposition, content words) is rag.text's
# QuestionForm, shared with the reader's view of question types.


# --------------------------------------------------------------------------------------------------
# Step 2: candidate spans
# --------------------------------------------------------------------------------------------------

_ORD = r"\d{1,2}(?:st|nd|rd|th)?(?:\s?(?:[-–]|and|to)\s?\d{1,2}(?:st|nd|rd|th)?)?"  # 17th; 27-28; 24 and 25
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2}|[1-9][0-9]{0,2}\s?(?:BC|BCE|AD|CE))"
_DATE = re.compile(
    rf"""(?:\b(?:the\s+)?(?:early|mid|late|middle|end\s+of\s+the)[-\s]+)?
    (?:\b(?:the\s+)?(?:end|beginning|start|middle|turn|close|first\s+half|second\s+half)\s+of\s+(?:the\s+)?)?
    (?:(?:{_WEEKDAYS}),?\s+)?
    (?:
        (?:{_ORD}\s+)?(?:{_MONTHS})(?:\s+{_ORD})?(?:,?\s+{_YEAR})?      # 17 October 1849 / May 5, 2010
      | (?:(?:spring|summer|autumn|fall|winter)\s+(?:of\s+)?){_YEAR}   # spring of 1830
      | {_YEAR}(?:\s?(?:–|-|/|to|and)\s?(?:\d{{2,4}}))?s?              # 1829, 1829–30, 2023/24, 1990s
      | \d{{1,2}}(?:st|nd|rd|th)\s+century                              # 19th century
      | (?:first|second|third|fourth|last)\s+(?:half|quarter)\s+of\s+(?:the\s+)?\d{{4}}s?
      | \d{{1,2}}(?:[.:]\d{{2}})?\s?(?:am|pm|a\.m\.|p\.m\.)(?!\w)        # 9.40pm, 11 a.m.
      | \d{{1,2}}:\d{{2}}(?!\d)                                          # 14:30
    )\b""",
    re.VERBOSE | re.IGNORECASE,
)
# A month name alone is a date after these words ("in December", "by September"); "May" and "March"
# alone are verbs or names too often, and need a day or a year.
_MONTH_ALONE_BEFORE = _words("in by until till since from of before after during around early late mid end")
_AMBIGUOUS_MONTHS = _words("may march")
_NUMBER = re.compile(
    rf"""(?:(?:{_APPROX})\s+)?
    (?:
        {_CURRENCY_BEFORE}\s?\d+(?:[.,]\d+)*(?:\s?(?:{_SCALE})\b)?       # $1.5 million, KSh 92
      | \d+(?:[.,]\d+)*(?:\s?%|\s?(?:{_SCALE})\b)?(?![^\W\d_])          # 12.21 million, 60%; not 5th, 1UP
      | \b(?:{_NUMBER_WORDS})\b(?:[-\s](?:{_NUMBER_WORDS}))*(?:\s+and\s+a\s+(?:half|quarter)\b)?
        (?:\s(?:{_SCALE})\b)?
    )""",
    re.VERBOSE | re.IGNORECASE,
)
# What may follow an amount and belongs to it: a unit or currency noun ("four nights", "9 meters",
# "60 percent", "12 billion roubles", "25,000 Norwegian kroner"), a rate ("per hour", "a day"), degrees
# ("41 °C"), a whole it is part of ("Eleven of the twelve") or the other end of a range or vote ("4
# votes to 7").
_PER = re.compile(r"\s+(?:per|a|an|each)\s+([A-Za-z][\w/]*)")
_DEGREES = re.compile(r"\s?°\s?[CF]\b")
_OF_WHOLE = re.compile(r"\s+of\s+(?:the\s+|its\s+|their\s+)?(\d+(?:[.,]\d+)*|[a-z]+)\b")
_TO_NUMBER = re.compile(r"\s+(?:to|-|–)\s+(\d+(?:[.,]\d+)*)\b")
_NUMBER_WORD = re.compile(rf"(?:{_NUMBER_WORDS})(?:-(?:{_NUMBER_WORDS}))?$", re.IGNORECASE)
_TIME_UNITS = _words("hour day week month year kg km kwh litre liter tonne ton head person capita night")
_QUOTE = re.compile(r"\"([^\"]{2,80})\"|“([^”]{2,80})”|‘([^’]{2,80})’")


@dataclass(frozen=True, slots=True)
class _Candidate:
    start: int
    end: int
    kind: Kind
    first: int  # index of its first token
    last: int  # index of its last token


def _token_span(tokens: list[Token], start: int, end: int) -> tuple[int, int]:
    first = next((i for i, t in enumerate(tokens) if t.end > start), len(tokens) - 1)
    last = max((i for i, t in enumerate(tokens) if t.start < end), default=first)
    return first, max(first, last)


@lru_cache(maxsize=4096)
def _date_matches(sentence: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((m.start(), m.end(), m.group()) for m in _DATE.finditer(sentence))


def _dates(sentence: str, tokens: list[Token]) -> list[_Candidate]:
    out = []
    for start, end, text in _date_matches(sentence):
        # A bare month word ("May", "March") is usually a verb or a name, not a date: a month alone
        # counts after "in", "by", "until"... and when it is no other month.
        if not any(c.isdigit() for c in text) and "century" not in text.lower():
            words = text.split()
            before = sentence[:start].split()[-1:]
            if len(words) != 1 or words[0].casefold() not in MONTH_NAMES or not before:
                if len(words) == 1 or words[-1].casefold() not in MONTH_NAMES:
                    continue
            elif words[0].casefold() in _AMBIGUOUS_MONTHS or before[0].casefold() not in _MONTH_ALONE_BEFORE:
                continue
        out.append(_Candidate(start, end, Kind.DATE, *_token_span(tokens, start, end)))
    return out


def _unit_word(word: str, unit_keys: frozenset[str]) -> bool:
    key = fold(word)
    return word.casefold() not in FUNCTION_WORDS and (
        key in _UNITS or word.casefold() in _UNITS or key in unit_keys
    )


def _amount_end(sentence: str, end: int, unit_keys: frozenset[str]) -> int:
    """Where the amount ending at ``end`` ends with what belongs to it (see :data:`_PER`...)."""
    start_end = end
    rest = sentence[end:]
    m = re.match(r"\s*(?:%|per\s?cent\b)", rest)
    if m is not None:
        end += m.end()
    else:
        m = _DEGREES.match(rest)
        if m is not None:
            return end + m.end()
        # A unit or currency noun, or a capitalised word naming the currency after it ("US dollars").
        m = re.match(r"\s+([A-Za-z][\w\-/]*)(?:\s+([A-Za-z][\w\-/]*))?", rest)
        if m is not None:
            first, second = m.group(1), m.group(2)
            if first.islower() and _unit_word(first, unit_keys):
                end += m.end(1)
            elif first[:1].isupper() and second is not None and second.casefold() in _CURRENCY_WORDS:
                end += m.end(2)
            elif (
                first.islower()
                and first.casefold() not in FUNCTION_WORDS
                and first.endswith("s")
                and not first.endswith(("ss", "us", "is"))
            ):
                end += m.end(1)  # a plural noun it counts: "412 customers", "15 fields"
            else:
                m = None
        if m is not None:
            m = re.match(r"\s+([A-Za-z][\w\-/]*)", sentence[end:])
            if m is not None and m.group(1).casefold() in _CURRENCY_WORDS:
                end += m.end()  # "6 kwacha", "12 billion Russian roubles" read on
    counted = end != start_end
    rest = sentence[end:]
    m = _PER.match(rest)
    if m is not None and (
        fold(m.group(1)) in _TIME_UNITS
        or m.group(1).lower() in _UNITS
        or m.group(1) in {"kWh", "kW", "MWh"}
        or rest.lstrip().startswith("per")
    ):
        return end + m.end()
    m = _OF_WHOLE.match(rest)
    if not counted and m is not None and (m.group(1)[:1].isdigit() or _NUMBER_WORD.match(m.group(1))):
        return end + m.end()
    m = _TO_NUMBER.match(rest)
    if m is not None:
        return end + m.end()
    return end


_MONTH_OR_CLOCK = re.compile(rf"(?:{_MONTHS}|{_WEEKDAYS})|\d(?:am|pm|\s?a\.m\.|\s?p\.m\.)", re.IGNORECASE)


def _numbers(sentence: str, tokens: list[Token], unit_keys: frozenset[str]) -> list[_Candidate]:
    out: list[_Candidate] = []
    # The day of a date or the hour of a time is no count: "March 14", "9.40pm".
    dated = [(a, b) for a, b, text in _date_matches(sentence) if _MONTH_OR_CLOCK.search(text)]
    for m in _NUMBER.finditer(sentence):
        start, end = m.start(), m.end()
        if out and start < out[-1].end:
            continue  # the other end of a range or the whole of a part, already read: "to 7", "of the 27"
        if any(a <= start < b for a, b in dated):
            continue
        core = m.group().strip()
        if not core or (core.isalpha() and core.lower() in {"once", "single", "half", "a half"}):
            continue
        # A bare four-digit year is a date, not a count ("in 1913").
        if re.fullmatch(r"(?:1[0-9]{3}|20[0-9]{2})", core) and not re.match(
            r"\s*(?:%|percent)", sentence[end:]
        ):
            nxt = re.match(r"\s+(\w+)", sentence[end:])
            if nxt is None or fold(nxt.group(1)) not in _UNITS | unit_keys:
                continue
        # A number inside a compound adjective ("a seven-tonne lorry", "a two-year plan") measures
        # something else than what is counted.
        if re.match(r"-[^\W\d]", sentence[end:]) and not _NUMBER_WORD.match(sentence[end + 1 :].split()[0]):
            continue
        # A clock time ("9.40pm", "14:30") is a date's, not a number.
        if re.match(r"(?:[.:]\d{2})?\s?(?:am|pm|a\.m\.|p\.m\.)(?!\w)", sentence[end:], re.IGNORECASE):
            continue
        end = _amount_end(sentence, end, unit_keys)
        out.append(_Candidate(start, end, Kind.NUMBER, *_token_span(tokens, start, end)))
    return out


# Abbreviated titles before a name, written with a full stop: "Dr. Milena Petrović", "Engr. Lorna Bautista".
_HONORIFICS = _words(
    """dr mr mrs ms mx prof engr eng st sr jr rev fr gen col capt cpt lt sgt maj hon cllr cr sen rep gov
    pres atty arch amb adm supt insp det"""
)


def _name_start(tokens: list[Token], i: int, sentence: str) -> bool:
    t = tokens[i]
    if not _name_word(t.text) or t.text.casefold() in _CAPITAL_FUNCTION_WORDS:
        return False
    # A sentence's first word ending in -ly is an adverb ("Usually", "Originally"), not a name.
    return not (i == 0 and t.text.islower() is False and t.text.endswith("ly") and len(t.text) > 4)


def _names(tokens: list[Token], sentence: str = "") -> list[_Candidate]:
    """Runs of capitalised words, joined by lowercase name particles and across job titles and the full
    stop of an abbreviated title ("Dr. Ana Dobre"); never across a line break (a heading above)."""
    out: list[_Candidate] = []
    i, n = 0, len(tokens)

    def broken(a: int, b: int) -> bool:
        return "\n" in sentence[tokens[a].end : tokens[b].start]

    while i < n:
        if not _name_start(tokens, i, sentence):
            i += 1
            continue
        j = i
        while True:
            k = j + 1
            # Allow "of the", "de", "and", "&" or a job title between capitalised words.
            while (
                k < n
                and k - j <= 2
                and (tokens[k].text in _NAME_JOINERS or tokens[k].text.casefold() in _TITLES)
            ):
                k += 1
            if tokens[j].text.endswith(("'s", "’s")) and j + 1 < n and _name_word(tokens[j + 1].text):
                break  # "Poland's Michał Ogiński": the owner, then the name
            if k < n and k > j + 1 and _name_word(tokens[k].text) and not broken(j, k):
                j = k
            elif j + 1 < n and _name_word(tokens[j + 1].text) and not broken(j, j + 1):
                j += 1
            elif (
                j + 2 < n
                and tokens[j + 1].text == "."
                and tokens[j].key in _HONORIFICS
                and _name_word(tokens[j + 2].text)
                and not broken(j, j + 2)
            ):
                j += 2
            else:
                break
        out.append(_Candidate(tokens[i].start, tokens[j].end, Kind.NAME, i, j))
        i = j + 1
    return out


_LIST_WORDS = frozenset({",", "and", "&", "or"})
_LIST_GAP = re.compile(r"(?:,\s*|\s+)(?:and\s+|&\s+|or\s+)?|,?\s+(?:and|&|or)\s+")
MAX_LIST = 5


def _lists(names: list[_Candidate], sentence: str) -> list[_Candidate]:
    """Runs of two to MAX_LIST names separated by commas, "and", "&" or "or" ("Vojvodina, Osijek-Baranja
    and Ruse", "Akureyri, Iceland"), as candidates of their own."""
    out = []
    for p in range(len(names)):
        for q in range(p + 1, min(len(names), p + MAX_LIST)):
            gap = sentence[names[q - 1].end : names[q].start]
            if not gap.strip() or _LIST_GAP.fullmatch(gap) is None:
                break
            out.append(_Candidate(names[p].start, names[q].end, Kind.NAME, names[p].first, names[q].last))
    return out


def _quotes(sentence: str, tokens: list[Token]) -> list[_Candidate]:
    out = []
    for m in _QUOTE.finditer(sentence):
        g = next(k for k in (1, 2, 3) if m.group(k) is not None)
        start, end = m.start(g), m.end(g)
        if m.group(g) != m.group(g).strip():
            continue  # a closing mark and the next opening one: '..." The X wrote: "'
        out.append(_Candidate(start, end, Kind.QUOTE, *_token_span(tokens, start, end)))
    return out


# Which kinds of span can answer which type of question.
_KINDS: dict[AnswerType, tuple[Kind, ...]] = {
    AnswerType.DATE: (Kind.DATE,),
    AnswerType.NUMBER: (Kind.NUMBER,),
    AnswerType.PERSON: (Kind.NAME,),
    AnswerType.PLACE: (Kind.NAME,),
    AnswerType.ENTITY: (Kind.NAME, Kind.QUOTE, Kind.PHRASE, Kind.NUMBER, Kind.DATE),
    AnswerType.OTHER: (Kind.NAME, Kind.QUOTE, Kind.PHRASE, Kind.NUMBER, Kind.DATE),
}
# Which kinds of span a sentence must hold to offer an answer to a typed question (:func:`offers`):
# names only for "which X" (a "what" question answered by a phrase or a number is no sign of type).
_OFFERED: dict[AnswerType, tuple[Kind, ...]] = {
    **_KINDS,
    AnswerType.ENTITY: (Kind.NAME, Kind.QUOTE),
    AnswerType.OTHER: (Kind.NAME, Kind.QUOTE),
}


_DETERMINERS = _words("the a an his her their its our my your this these those that such")
MAX_PHRASE = 6  # content words


def _verbish(word: str) -> bool:
    """A lowercase word that is more likely a verb or an adverb than part of a noun phrase."""
    return word.islower() and len(word) > 4 and word.endswith(("ed", "ing", "ly", "ize", "ise", "ates"))


def _phrases(q_stems: frozenset[str], sentence: str, tokens: list[Token]) -> list[_Candidate]:
    """Runs of content words (no function word, punctuation or question word inside), with the
    determiner before them, and such a run joined to the next by "of" or "and" ("a moment of silence",
    "singing and dancing"): the answers to "what" questions that are no names."""
    runs: list[tuple[int, int]] = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if not t.text[:1].isalnum() or t.text.casefold() in FUNCTION_WORDS or _is_anchor(t, q_stems):
            i += 1
            continue
        j = i
        while (
            j + 1 < n
            and j + 1 - i < MAX_PHRASE
            and tokens[j + 1].text[:1].isalnum()
            and tokens[j + 1].text.casefold() not in FUNCTION_WORDS
            and not _is_anchor(tokens[j + 1], q_stems)
            and "\n" not in sentence[tokens[j].end : tokens[j + 1].start]
        ):
            j += 1
        runs.append((i, j))
        i = j + 1

    def opened(first: int) -> int:
        return first - 1 if first > 0 and tokens[first - 1].text.casefold() in _DETERMINERS else first

    out = [_Candidate(tokens[opened(a)].start, tokens[b].end, Kind.PHRASE, opened(a), b) for a, b in runs]
    # A run holding a verb or an adverb ("Islam ranks", "her mother introduced", "rigid procedures
    # sometimes incorrectly attributed") also offers its pieces around it.
    for a, b in runs:
        verbs = [k for k in range(a, b + 1) if _verbish(tokens[k].text)]
        if verbs and b > a:
            pieces = [(a, verbs[0] - 1), (verbs[-1] + 1, b)]
            for x, y in pieces:
                if x <= y and (x, y) != (a, b):
                    first = opened(x) if x == a else x
                    out.append(_Candidate(tokens[first].start, tokens[y].end, Kind.PHRASE, first, y))
    for (a, b), (c, d) in itertools.pairwise(runs):
        joiner = tokens[b + 1].text.casefold() if b + 1 < n else ""
        if joiner in {"of", "and"} and opened(c) in {b + 2, b + 3} and (d - a) <= 2 * MAX_PHRASE:
            if opened(c) == b + 3 and tokens[b + 2].text.casefold() not in _DETERMINERS:
                continue
            out.append(_Candidate(tokens[opened(a)].start, tokens[d].end, Kind.PHRASE, opened(a), d))
    return out


def _candidates(q: QuestionForm, sentence: str, tokens: list[Token]) -> list[_Candidate]:
    kinds = _KINDS[q.type]
    cands: list[_Candidate] = []
    if Kind.DATE in kinds:
        cands += _dates(sentence, tokens)
    if Kind.NUMBER in kinds:
        cands += _numbers(sentence, tokens, q.keys)
    if Kind.QUOTE in kinds:
        cands += _quotes(sentence, tokens)
    if Kind.NAME in kinds:
        quoted = [(c.start, c.end) for c in cands if c.kind is Kind.QUOTE]
        names = [
            c for c in _names(tokens, sentence) if not any(a <= c.start and c.end <= b for a, b in quoted)
        ]
        cands += names + _lists(names, sentence)
    if Kind.PHRASE in kinds:
        seen = {(c.start, c.end) for c in cands}
        cands += [c for c in _phrases(_stems(q.keys), sentence, tokens) if (c.start, c.end) not in seen]
        # "What dynasty ...?" is answered by "the Song dynasty": a candidate the question's head noun
        # follows is also a candidate with it.
        if q.head:
            head = stem(q.head)
            seen = {(c.start, c.end) for c in cands}
            for c in list(cands):
                k = c.last + 1
                if k < len(tokens) and stem(tokens[k].key) == head and (c.start, tokens[k].end) not in seen:
                    cands.append(_Candidate(c.start, tokens[k].end, c.kind, c.first, k))
                    seen.add((c.start, tokens[k].end))
    kept = []
    for c in cands:
        # Hyphenated words count by their parts: "best-of" only repeats a question's "Best of".
        words = [w for t in tokens[c.first : c.last + 1] if t.text[:1].isalnum() for w in parts(t)]
        content = [w for w in words if w not in FUNCTION_WORDS]
        # The question never asks for what it already says.
        if content and all(w in q.keys for w in content):
            continue
        if not content and c.kind is not Kind.NUMBER and c.kind is not Kind.DATE:
            continue
        kept.append(c)
    return kept


# Question types whose answer is a span of a kind this module finds: the reader asks whether a sentence
# holds one (:func:`offers`), and a sentence that holds none does not answer the question.
TYPED = frozenset(
    {AnswerType.DATE, AnswerType.NUMBER, AnswerType.PERSON, AnswerType.PLACE, AnswerType.ENTITY}
)


@dataclass(frozen=True, slots=True)
class Span:
    """A span of a sentence that could answer some question: its kind and its content words (folded)."""

    kind: Kind
    keys: frozenset[str]
    located: bool  # right after "in", "at", "near"...: a name that can answer "where"
    shape: str = ""  # a quantity's finer shape: "money" (a currency in it or after it), "percent", or ""


def _sentence_tokens(sentence: str) -> list[Token]:
    """The tokens of ``sentence``, tokenised once for the reader's spans and the finder (a copy)."""
    return list(_tokens_cached(sentence))


@lru_cache(maxsize=65536)
def _tokens_cached(sentence: str) -> tuple[Token, ...]:
    return tuple(tokenize(sentence))


_LOCATIVE = _words("in at near outside inside from to into across around within")


@lru_cache(maxsize=65536)
def sentence_spans(sentence: str) -> tuple[Span, ...]:
    """Every date, quantity, name and quoted title of ``sentence``, whatever the question: found once per
    sentence, so that asking which sentences offer a question's type costs set look-ups only."""
    toks = _sentence_tokens(sentence)
    found = _dates(sentence, toks) + _numbers(sentence, toks, frozenset()) + _quotes(sentence, toks)
    quoted = [(c.start, c.end) for c in found if c.kind is Kind.QUOTE]
    found += [c for c in _names(toks, sentence) if not any(a <= c.start and c.end <= b for a, b in quoted)]
    out = []
    for c in found:
        words = [w for t in toks[c.first : c.last + 1] if t.text[:1].isalnum() for w in parts(t)]
        located = c.first > 0 and toks[c.first - 1].key in _LOCATIVE
        shape = _shape(sentence[c.start : c.end + 16]) if c.kind is Kind.NUMBER else ""
        out.append(Span(c.kind, frozenset(w for w in words if w not in FUNCTION_WORDS), located, shape))
    return tuple(out)


def _shape(text: str) -> str:
    """"money" or "percent" when ``text`` (a quantity and the words right after it) says so, else ""."""
    if _CURRENCY.search(text):
        return "money"
    return "percent" if re.search(r"%|\bper ?cent\b|\bpercentage points?\b", text, re.IGNORECASE) else ""


def offers(form: QuestionForm, spans: tuple[Span, ...]) -> bool:
    """Whether ``spans`` (of one sentence) hold an answer of the type ``form`` asks for that the question
    does not already say: a date for "when", a quantity for "how many", a name for "who", "where" or
    "which X". False for questions of no such type."""
    if form.type not in TYPED:
        return False
    kinds = _OFFERED[form.type]
    # "What is the budget?" asks for money, "What share...?" for a percentage: a count will not do.
    shape = form.want if form.want in ("money", "percent") and form.type is AnswerType.NUMBER else ""
    for span in spans:
        if span.kind not in kinds or (form.type is AnswerType.PLACE and not span.located):
            continue
        if shape and span.shape != shape:
            continue
        if not span.keys:
            if span.kind in (Kind.NUMBER, Kind.DATE):
                return True
            continue
        if not span.keys <= form.keys:
            return True
    return False


# --------------------------------------------------------------------------------------------------
# Step 3 and 4: features, ranking, calibration
# --------------------------------------------------------------------------------------------------

# Words around a candidate that tell its role: "called X", "by X", "X, who", "X (...)".
_CONTEXT_BEFORE = (
    "by",
    "of",
    "in",
    "at",
    "to",
    "from",
    "with",
    "as",
    "called",
    "named",
    "the",
    "a",
    "for",
    "including",
    "on",
    "and",
    "comma",
    "paren",
    "quote",
    "is",
    "was",
    "were",
    "under",
    "than",
)
_CONTEXT_AFTER = (
    "comma",
    "period",
    "paren",
    "and",
    "of",
    "in",
    "is",
    "was",
    "who",
    "which",
    "that",
    "s",
    "to",
    "for",
    "as",
    "had",
    "has",
    "said",
)
_PUNCTUATION_NAMES = {",": "comma", ".": "period", "(": "paren", ")": "paren", '"': "quote", "“": "quote"}

FEATURES = (
    "log_distance",  # log(1 + words between the candidate and the nearest question word in the sentence)
    "no_anchor",  # no question word occurs in the sentence at all
    "overlap",  # share of the candidate's content words that the question contains
    "prep_echo",  # the word before the candidate is the preposition the question puts before its wh-word
    "sentence_initial",  # a name run starting the sentence (its capital may only mark the sentence start)
    "n_tokens",  # log of its length in tokens
    "after_anchor",  # it follows (rather than precedes) the nearest question word
    "in_parens",  # it sits inside brackets: "(2003)"
    "head_follows",  # the question's head noun follows or precedes it ("nights" in "four nights")
    "quote",
    "person_like",  # 2-4 capitalised words without organisation words: looks like a person's name
    "window",  # share of the question's words found in the sentence that lie within 5 words of it
    "modifier",  # one capitalised word used as an adjective ("British general"): rarely the answer
    "shape_fit",  # +1/-1: it has / lacks the finer shape the question wants (a %, a currency, a year...)
    "unit_mismatch",  # it carries a unit noun the question does not use ("acres" for "in hectares")
    "order",  # share of the question's words found in the sentence on the same side of it as of the wh-word
    "by_before",  # "by" right before it: the agent of a passive ("written by ...")
    "org_like",  # a name holding an organisation word ("Diplomatic Academy of Russia")
    "who_subject",  # a name a relative "who" follows, past an apposition: "Yuri Fokin, director of X, who"
    "list",  # log(1 + names in it past the first): "Vojvodina, Osijek-Baranja and Ruse", "Akureyri, Iceland"
    "phrase",  # a run of content words (not a name, date, number or quote)
    "capitalised",  # share of its words that are capitalised
    "verb_like",  # a phrase whose first word ends in -ed or -ing: more likely a verb than the answer
    "joined",  # a phrase joined from two runs by "of" or "and"
    "numeric",  # a number or a date (for questions whose type does not ask for one)
    "right_after",  # only function words (at most two) between the nearest question word before it and it
    "right_before",  # only function words (at most two) between it and the nearest question word after it
    "copula_subject",  # it comes right before "is"/"was"/"are"/"were" followed by a question word
    "locative",  # right after "in", "at", "near", "from", "to"...: where something is, goes or comes from
    "possessive",  # it ends with "'s": the owner of what the sentence names, seldom the answer
    "initial_word",  # one capitalised word opening the sentence ("Details", "Soon"): often no name at all
    "head_inside",  # it ends with the question's head noun: "the Song dynasty" for "What dynasty"
    "described",  # a name right after a lowercase noun describing it: "the cellist Auguste Franchomme"
    *(f"before_{w}" for w in _CONTEXT_BEFORE),  # the word right before it is this one
    *(f"after_{w}" for w in _CONTEXT_AFTER),  # the word right after it is this one
)

_CURRENCY = re.compile(
    rf"{_CURRENCY_BEFORE}|\b(?:{'|'.join(sorted(_CURRENCY_WORDS))})\b",
    re.IGNORECASE,
)

_ORG_WORDS = _words(
    """university college school company corporation inc ltd records group foundation association
    council committee museum hall church city state river street avenue park building bridge
    centre center county island department ministry agency party league award awards prize festival
    band orchestra theatre theater times news magazine journal bank institute academy office chamber
    federation authority board commission cooperative co-operative society union trust fund service
    network programme program project forum conference delegation embassy bureau secretariat
    administration assembly parliament government court police army navy force club team unit centre
    laboratory lab hospital clinic library press agency partners associates holdings llc plc gmbh ag
    sa corp co"""
)


# Nouns that count people: "How many people attended?" is answered by "Thirty-four participants".
_PEOPLE = _words(
    """people person persons participant delegate attendee guest visitor member resident inhabitant
    student employee worker staff spectator fan councillor councilor official representative expert
    farmer family household customer passenger pupil child adult man woman volunteer user player
    soldier worker delegation"""
)


def _same_head(head: str, words: set[str]) -> bool:
    """Whether ``words`` hold the question's head noun, by stem, or another noun counting people when the
    head does."""
    if head in words or stem(head) in {stem(w) for w in words}:
        return True
    return head in _PEOPLE and any(w in _PEOPLE for w in words)


# Verbs that reports and questions use for one another, by stem: "Who led ...?" is answered by "headed
# by", "How many attended?" by "participants", "Who paid for ...?" by "funded by"; and irregular forms.
_SENSES = {
    member: group
    for group, members in {
        "lead": "lead led head chair presid direct manag moder coordin helm",
        "attend": "attend particip regist",
        "fund": "fund paid pay sponsor financ",
        "hold": "host held hold",
        "organis": "organis organiz",
        "teach": "teach taught train instruct",
        "cost": "cost price spend spent budget",
        "win": "win won",
        "sell": "sell sold",
        "buy": "buy bought",
        "begin": "begin began begun start",
        "write": "write wrote written",
        "give": "give gave given",
        "take": "take took taken",
    }.items()
    for member in members.split()
}


@lru_cache(maxsize=65536)
def _sense(word: str) -> str:
    """``word``'s stem, or the name of the group of verbs it belongs to (:data:`_SENSES`)."""
    root = stem(word)
    return _SENSES.get(root, root)


@lru_cache(maxsize=1024)
def _stems(keys: frozenset[str]) -> frozenset[str]:
    return frozenset(_sense(k) for k in keys)


def _is_anchor(t: Token, q_stems: frozenset[str]) -> bool:
    """A word of the sentence that is a word of the question, compared by stem ("attended" meets
    "Attending", "chaired" meets "chair")."""
    return t.key not in FUNCTION_WORDS and t.text[:1].isalnum() and _sense(t.key) in q_stems


def _who_subject(c: _Candidate, tokens: list[Token]) -> int:
    """The index of a relative "who" whose subject the name is, right after it or past an apposition in
    commas ("Yuri Fokin, director of the Diplomatic Academy, who led ..."): the name, not the
    apposition's, is its subject. -1 when there is none."""
    j = c.last + 1
    if j < len(tokens) and tokens[j].key == "who":
        return j
    if j + 1 < len(tokens) and tokens[j].text == "," and tokens[j + 1].key == "who":
        # "X, who": unless X itself closes an apposition ("..., director of the Academy, who")
        k = c.first - 1
        return -1 if k >= 1 and tokens[k].key in {"of", "the", "at", "for"} else j + 1
    if j < len(tokens) and tokens[j].text == "," and tokens[j + 1].text[:1].islower():
        for k in range(j + 1, min(len(tokens) - 1, j + 15)):
            if tokens[k].text in {";", "(", ")", "."}:
                return -1
            if tokens[k].text == ",":
                return k + 1 if tokens[k + 1].key == "who" else -1
    return -1


_BE_FORMS = _words("is was are were")


def _adjacent(tokens: list[Token], anchors: list[int], edge: int, step: int) -> bool:
    """Whether a question word lies ``step``-wards of ``edge`` with at most two function words between."""
    k = edge + step
    for _ in range(3):
        if not 0 <= k < len(tokens):
            return False
        if k in anchors:
            return True
        if tokens[k].text.casefold() not in FUNCTION_WORDS:
            return False
        k += step
    return False


def _copula_subject(tokens: list[Token], anchors: list[int], last: int) -> bool:
    k = last + 1
    if k < len(tokens) and tokens[k].text == ",":
        return False
    return k < len(tokens) and tokens[k].key in _BE_FORMS and any(k < a <= k + 5 for a in anchors)


# The finer shapes a question may want (QuestionForm.want), each checked on a candidate's text.
_SHAPES: dict[str, Callable[[str], bool]] = {
    "percent": lambda text: "%" in text or "per" in text.casefold(),
    "money": lambda text: _CURRENCY.search(text) is not None,
    "year": lambda text: re.search(r"\d{3,4}", text) is not None,
    "month": lambda text: re.search(_MONTHS, text, re.IGNORECASE) is not None,
    "decade": lambda text: re.search(r"\d0s\b", text) is not None,
    "century": lambda text: "century" in text.casefold(),
    "age": lambda text: re.search(r"\d|\b[a-z]+\b", text) is not None and "%" not in text,
}


def _context(tokens: list[Token], c: _Candidate) -> dict[str, float]:
    def word(i: int) -> str:
        if not 0 <= i < len(tokens):
            return ""
        text = tokens[i].text
        return _PUNCTUATION_NAMES.get(text, "s" if text in {"'s", "’s"} else text.casefold())

    before, after = word(c.first - 1), word(c.last + 1)
    return {
        **{f"before_{w}": 1.0 if before == w else 0.0 for w in _CONTEXT_BEFORE},
        **{f"after_{w}": 1.0 if after == w else 0.0 for w in _CONTEXT_AFTER},
    }


def _describes(word: str) -> bool:
    """A lowercase noun-like word right before a name: "the cellist Auguste Franchomme"."""
    return word.isalpha() and word.islower() and word not in FUNCTION_WORDS


def _verb_like(span: list[Token]) -> bool:
    first = next((t.text for t in span if t.text.casefold() not in _DETERMINERS), "")
    return first.islower() and first.endswith(("ed", "ing"))


def _features(
    q: QuestionForm, c: _Candidate, tokens: list[Token], sentence: str, every: list[int] | None = None
) -> dict[str, float]:
    """The named features of candidate ``c``; ``every``: the indices of the sentence's question words
    (computed here when not given: once per sentence is enough)."""
    q_stems = _stems(q.keys)
    if every is None:
        every = [i for i, t in enumerate(tokens) if _is_anchor(t, q_stems)]
    anchors = [i for i in every if not c.first <= i <= c.last]
    who = _who_subject(c, tokens) if c.kind is Kind.NAME else -1
    if who >= 0 and any(i > who for i in anchors):
        # the subject of a relative clause is as near to its verb as "who" is
        distance, after = min(i for i in anchors if i > who) - who - 1, 0.0
    elif anchors:
        nearest = min(anchors, key=lambda i: min(abs(i - c.first), abs(i - c.last)))
        distance = min(abs(nearest - c.first), abs(nearest - c.last)) - 1
        after = 1.0 if nearest < c.first else 0.0
    else:
        distance, after = 0, 0.0
    words = [t.key for t in tokens[c.first : c.last + 1] if t.text[:1].isalnum()]
    content = [w for w in words if w not in FUNCTION_WORDS] or words
    overlap = sum(_sense(w) in q_stems for w in content) / max(1, len(content))
    before = tokens[c.first - 1].text.casefold() if c.first > 0 else ""
    prep_echo = 1.0 if q.prep and before == q.prep else 0.0
    in_parens = 1.0 if before == "(" else 0.0
    neighbours = {tokens[i].key for i in (c.first - 1, c.last + 1, c.last) if 0 <= i < len(tokens)}
    head_follows = 1.0 if q.head and _same_head(q.head, neighbours) else 0.0
    span_tokens = tokens[c.first : c.last + 1]
    person_like = (
        1.0
        if c.kind is Kind.NAME
        and 2 <= len(span_tokens) <= 4
        and all(_is_capitalised(t.text) for t in span_tokens)
        and not any(t.key in _ORG_WORDS for t in span_tokens)
        else 0.0
    )
    found = {_sense(tokens[i].key) for i in every}
    near = {
        _sense(tokens[i].key)
        for i in range(max(0, c.first - 5), min(len(tokens), c.last + 6))
        if i in anchors
    }
    window = len(near) / len(found) if found else 0.0
    nxt = tokens[c.last + 1].text if c.last + 1 < len(tokens) else ""
    modifier = (
        1.0
        if c.kind is Kind.NAME
        and c.first == c.last
        and nxt.isalpha()
        and nxt.islower()
        and nxt not in FUNCTION_WORDS
        else 0.0
    )
    text = sentence[c.start : c.end]
    shape = _SHAPES[q.want](text) if q.want in _SHAPES else None
    shape_fit = 0.0 if shape is None else (1.0 if shape else -1.0)
    last = tokens[c.last]
    unit_mismatch = (
        1.0
        if c.kind is Kind.NUMBER and last.text.isalpha() and last.key in _UNITS and last.key not in q.keys
        else 0.0
    )
    before_stems = _stems(q.before)
    sides = [(i < c.first) == (_sense(tokens[i].key) in before_stems) for i in anchors]
    order = sum(sides) / len(sides) if sides else 0.5
    return {
        "log_distance": math.log1p(max(0, distance)),
        "no_anchor": 0.0 if anchors else 1.0,
        "overlap": overlap,
        "prep_echo": prep_echo,
        "sentence_initial": 1.0 if c.kind is Kind.NAME and c.first == 0 else 0.0,
        "n_tokens": math.log(len(span_tokens)),
        "after_anchor": after,
        "in_parens": in_parens,
        "head_follows": head_follows,
        "quote": 1.0 if c.kind is Kind.QUOTE else 0.0,
        "person_like": person_like,
        "window": window,
        "modifier": modifier,
        "shape_fit": shape_fit,
        "unit_mismatch": unit_mismatch,
        "order": order,
        "by_before": 1.0 if before == "by" else 0.0,
        "org_like": 1.0 if c.kind is Kind.NAME and any(t.key in _ORG_WORDS for t in span_tokens) else 0.0,
        "who_subject": 1.0 if who >= 0 else 0.0,
        "list": math.log1p(sum(t.text in _LIST_WORDS for t in span_tokens)) if c.kind is Kind.NAME else 0.0,
        "phrase": 1.0 if c.kind is Kind.PHRASE else 0.0,
        "capitalised": sum(_is_capitalised(t.text) for t in span_tokens) / len(span_tokens),
        "verb_like": 1.0 if c.kind is Kind.PHRASE and _verb_like(span_tokens) else 0.0,
        "joined": 1.0 if c.kind is Kind.PHRASE and any(t.key in {"of", "and"} for t in span_tokens) else 0.0,
        "numeric": 1.0 if c.kind in (Kind.NUMBER, Kind.DATE) and Kind.PHRASE in _KINDS[q.type] else 0.0,
        "right_after": 1.0 if _adjacent(tokens, anchors, c.first, -1) else 0.0,
        "right_before": 1.0 if _adjacent(tokens, anchors, c.last, 1) else 0.0,
        "copula_subject": 1.0 if _copula_subject(tokens, anchors, c.last) else 0.0,
        "locative": 1.0 if before in _LOCATIVE else 0.0,
        "possessive": 1.0 if last.text.endswith(("'s", "’s", "'", "’")) else 0.0,
        "initial_word": 1.0 if c.kind is not Kind.NUMBER and c.first == 0 and c.first == c.last else 0.0,
        "head_inside": 1.0 if q.head and c.last > c.first and stem(last.key) == stem(q.head) else 0.0,
        "described": 1.0 if c.kind is Kind.NAME and _describes(before) else 0.0,
        **_context(tokens, c),
    }


# Calibration of the best candidate: a logistic model of "the best candidate is right" per answer type,
# over its ranking logit, its margin over the runner-up and how many candidates compete. The maximum of
# several ranking probabilities is biased upwards and candidates compete; this second step corrects for
# both.
CALIBRATION_FEATURES = (
    "logit",  # the best candidate's ranking logit
    "margin",  # its margin over the runner-up, capped at 5 (5 when it has none)
    "log_candidates",  # log of the number of candidates
    "top_prob",  # the best candidate's softmax probability among the candidates
)
MARGIN_CAP = 5.0


@dataclass(frozen=True)
class ShortAnswerModel:
    """Per answer type, the ranking model of candidates, the calibration of the best one and the lowest
    confidence at which :meth:`ShortAnswerFinder.find` returns it (1.0: never)."""

    rank: dict[AnswerType, LinearModel]
    calibration: dict[AnswerType, LinearModel]
    thresholds: dict[AnswerType, float]
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "rank": {t.value: self.rank[t].to_dict() for t in AnswerType},
            "calibration": {t.value: self.calibration[t].to_dict() for t in AnswerType},
            "thresholds": {t.value: rounded([self.thresholds[t]], 4)[0] for t in AnswerType},
            "metadata": self.metadata,
        }
        return dump_model(data)

    @classmethod
    def from_json(cls, text: str) -> ShortAnswerModel:
        raw = read_model(text, "short-answer model")
        types = sorted(t.value for t in AnswerType)
        for part in ("rank", "calibration", "thresholds"):
            if sorted(raw[part]) != types:
                raise ValueError(f"{part} for {sorted(raw[part])}, not for the answer types {types}")
        return cls(
            {t: LinearModel.from_dict(raw["rank"][t.value], FEATURES) for t in AnswerType},
            {t: LinearModel.from_dict(raw["calibration"][t.value], CALIBRATION_FEATURES) for t in AnswerType},
            {t: float(raw["thresholds"][t.value]) for t in AnswerType},
            dict(raw.get("metadata", {})),
        )


def load_model(path: Path | None = None, expected_sha256: str | None = MODEL_SHA256) -> ShortAnswerModel:
    """The short-answer model (the shipped one by default), its sha256 checked; a bad file raises
    :class:`~rag.index.embedders.ModelIntegrityError` naming it. ``expected_sha256=None`` skips the
    check (a model being trained).
    """
    return load_pinned(
        path or MODEL_PATH,
        expected_sha256,
        "short-answer model",
        "`forumqa train-short-answer`",
        ShortAnswerModel.from_json,
    )


@cache
def shipped_model() -> ShortAnswerModel:
    """The shipped model, read and verified once per process (a few kB of weights, no embedder)."""
    return load_model()


@dataclass(frozen=True, slots=True)
class Scored:
    """A candidate span with its features and ranking logit."""

    candidate: _Candidate
    features: dict[str, float]
    logit: float


def candidates(
    question: str, sentence: str
) -> tuple[QuestionForm, list[tuple[_Candidate, dict[str, float]]]]:
    """The question's form and every candidate span of ``sentence`` with its named features (in
    sentence order): what the ranking model scores, and what its trainer fits on."""
    q = question_form(question)
    toks = _sentence_tokens(sentence)
    q_stems = _stems(q.keys)
    every = [i for i, t in enumerate(toks) if _is_anchor(t, q_stems)]
    return q, [(c, _features(q, c, toks, sentence, every)) for c in _candidates(q, sentence, toks)]


def calibration_features(scored: list[Scored]) -> dict[str, float]:
    """The calibration's inputs for the best of ``scored`` (best first, at least one)."""
    best = scored[0].logit
    margin = best - scored[1].logit if len(scored) > 1 else MARGIN_CAP
    top_prob = 1.0 / sum(math.exp(s.logit - best) for s in scored)
    return {
        "logit": best,
        "margin": min(margin, MARGIN_CAP),
        "log_candidates": math.log(len(scored)),
        "top_prob": top_prob,
    }


class ShortAnswerFinder:
    """Marks short answers with one loaded :class:`ShortAnswerModel`; built once, by ``ForumQA``."""

    def __init__(self, model: ShortAnswerModel) -> None:
        self.model = model

    def scored(self, question: str, sentence: str) -> tuple[QuestionForm, list[Scored]]:
        """The question's form and every candidate with its ranking logit, best first."""
        q, found = candidates(question, sentence)
        rank = self.model.rank[q.type]
        logits: list[float] = rank(rank.matrix([f for _, f in found])).tolist() if found else []
        scored = [Scored(c, f, x) for (c, f), x in zip(found, logits, strict=True)]
        scored.sort(key=lambda sc: -sc.logit)
        return q, scored

    def confidence(self, q: QuestionForm, scored: list[Scored]) -> float:
        """The estimated probability that the best of ``scored`` is right."""
        return self.model.calibration[q.type].probability(calibration_features(scored))

    def find(self, question: str, sentence: str) -> ShortAnswer | None:
        """The short answer to ``question`` inside ``sentence``, or None when there is no confident one."""
        q, scored = self.scored(question, sentence)
        if not scored:
            return None
        confidence = self.confidence(q, scored)
        if confidence < self.model.thresholds[q.type]:
            return None
        c = scored[0].candidate
        return ShortAnswer(c.start, c.end, sentence[c.start : c.end], round(confidence, 4))


def short_answer(question: str, sentence: str, finder: ShortAnswerFinder | None = None) -> ShortAnswer | None:
    """The short answer to ``question`` inside ``sentence`` by ``finder`` (the shipped model's by
    default), or None when there is no confident one."""
    return (finder or ShortAnswerFinder(shipped_model())).find(question, sentence)
