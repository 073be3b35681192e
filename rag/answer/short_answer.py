"""Mark the short answer inside an answer sentence, when a few surface rules are confident about it.

The service quotes a whole sentence; this module points at the phrase in it that answers the question
("When did ... become popular?" -> "the late 1990s"): rules plus two small logistic models per answer
type (``rag/models/short_answer.json``, sha256 pinned, rebuilt by ``forumqa train-short-answer``), pure
Python, well under a millisecond per call:

1. *Answer type* from the question's wording (:class:`rag.answer.question.QuestionForm`): when/what
   year -> DATE; how many/much/long, what percentage -> NUMBER; who/whom/whose -> PERSON; where/what
   city -> PLACE; what/which + noun -> ENTITY; anything else (what did, why, how did ...) -> OTHER,
   which rarely clears the threshold.
2. *Candidates* of that type in the sentence: dates (years, decades, "17 October 1849", "the late
   1990s"), quantities (numbers with currency, scale words, percent and a unit noun, number words),
   names (runs of capitalised words, joined by "of"/"the"/"de"/"and"... and across a lowercase job
   title, so "Korea Foundation president Lee In-ho" stays whole) and quoted titles. A candidate whose
   content words all occur in the question (accents, case, plurals and possessives folded) is
   dropped: the question never asks for what it already says.
3. *Ranking*: a per-candidate logistic model over named features (``FEATURES``) such as how close the
   candidate is to the question's words found in the sentence, how many candidates compete, and
   whether the preposition before it echoes the question's ("In what year" -> "in 1913").
4. *Confidence*: a second logistic model (``CALIBRATION_FEATURES``) maps the best candidate's rank
   score, its margin over the runner-up and the number of candidates to an estimated probability that
   the span is right (contains a crowd answer, or lies inside one covering at least half of it).

Both are fitted by :mod:`rag.train.short_answer` on SQuAD 2.0 questions about the five training articles
of the reader (sentence = the evidence sentence). The model's threshold is the lowest at which precision
on those articles is at least 0.8 (0.80 there, 48% of questions answered); on the five held-out
articles: 0.725 precision, 39% answered. Confidence is well calibrated on the fitting articles and
about 0.1 optimistic between 0.4 and 0.9 on the held-out ones, mostly on what/which questions whose
answers are not names.
"""

from __future__ import annotations

import math
import re
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
from rag.text import FUNCTION_WORDS, MONTH_NAMES

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
MODEL_SHA256 = "2393620f4d7b63aaf26b6600447e0528b9493e5136f2f74e03e90cdb6cb24c28"


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

# Lowercase words that may sit inside a capitalised name: "Bank of America", "Leonardo da Vinci".
_NAME_JOINERS = _words("of the de da di del della du des van von der den la le y and &")

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
_NUMBER_WORDS = (
    "one|two|three|four|five|six|seven|eight|nine|ten|eleven|twelve|thirteen|fourteen|fifteen|"
    "sixteen|seventeen|eighteen|nineteen|twenty|thirty|forty|fifty|sixty|seventy|eighty|ninety|"
    "hundred|a hundred|a thousand|dozen|a dozen|dozens|hundreds|thousands|millions|half|a half|"
    "a third|a quarter|one-third|two-thirds|one-quarter|three-quarters|single|double|triple|"
    "twice|thrice|once"
)
_SCALE = "hundred|thousand|million|billion|trillion|crore|lakh|bn|m|k"
_APPROX = (
    "about|around|approximately|nearly|almost|roughly|some|over|under|up to|more than|less than|"
    "fewer than|at least|at most|as many as|as much as|as few as|upwards of|just over|just under|"
    "an estimated|estimated"
)
# Nouns a count or amount is measured in; a following noun from this list is part of the answer.
_UNITS = _words(
    """percent per cent percentage points point points degrees degree years year months month weeks
    week days day hours hour minutes minute seconds second decades decade centuries century times
    km kilometres kilometers kilometre kilometer miles mile metres meters metre meter m cm mm ft feet
    foot inches inch sq square acres acre hectares hectare km2 mi tons tonnes ton tonne kg kilograms
    pounds lb lbs ounces oz grams g mph km/h kmh liters litres gallons dollars euros pounds yen yuan
    won rubles people persons residents inhabitants members students employees workers visitors
    copies units albums songs singles records awards nominations votes seats games episodes
    nights performances concerts shows floors stories storeys buildings times"""
)

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

_ORD = r"\d{1,2}(?:st|nd|rd|th)?(?:\s?[-–]\s?\d{1,2}(?:st|nd|rd|th)?)?"  # 17th, or a range: 27-28
_YEAR = r"(?:1[0-9]{3}|20[0-9]{2}|[1-9][0-9]{0,2}\s?(?:BC|BCE|AD|CE))"
_DATE = re.compile(
    rf"""(?:(?:the\s+)?(?:early|mid|late|middle|end\s+of\s+the)[-\s]+)?
    (?:
        (?:{_ORD}\s+)?(?:{_MONTHS})(?:\s+{_ORD})?(?:,?\s+{_YEAR})?      # 17 October 1849 / May 5, 2010
      | (?:(?:spring|summer|autumn|fall|winter)\s+(?:of\s+)?){_YEAR}   # spring of 1830
      | {_YEAR}(?:\s?(?:–|-|to|and)\s?(?:\d{{2,4}}))?s?                 # 1829, 1829–30, 1990s
      | \d{{1,2}}(?:st|nd|rd|th)\s+century                              # 19th century
      | (?:first|second|third|fourth|last)\s+(?:half|quarter)\s+of\s+(?:the\s+)?\d{{4}}s?
    )\b""",
    re.VERBOSE | re.IGNORECASE,
)
_NUMBER = re.compile(
    rf"""(?:(?:{_APPROX})\s+)?
    (?:
        [$£€¥₩]\s?\d+(?:[.,]\d+)*(?:\s?(?:{_SCALE})\b)?                 # $1.5 million
      | (?:US\$|USD|EUR|GBP|RMB|¥)\s?\d+(?:[.,]\d+)*(?:\s?(?:{_SCALE})\b)?
      | \d+(?:[.,]\d+)*(?:\s?%|\s?(?:{_SCALE})\b)?                      # 12.21 million, 60%
      | \b(?:{_NUMBER_WORDS})\b(?:[-\s](?:{_NUMBER_WORDS}))*(?:\s(?:{_SCALE})\b)?
    )""",
    re.VERBOSE | re.IGNORECASE,
)
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


def _dates(sentence: str, tokens: list[Token]) -> list[_Candidate]:
    out = []
    for m in _DATE.finditer(sentence):
        text = m.group()
        # A bare month word ("May", "March") is usually a verb or a name, not a date.
        if not any(c.isdigit() for c in text) and "century" not in text.lower():
            continue
        out.append(_Candidate(m.start(), m.end(), Kind.DATE, *_token_span(tokens, m.start(), m.end())))
    return out


def _numbers(sentence: str, tokens: list[Token], unit_keys: frozenset[str]) -> list[_Candidate]:
    out = []
    for m in _NUMBER.finditer(sentence):
        start, end = m.start(), m.end()
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
        # The noun it counts belongs to the answer: "four nights", "9 meters", "60 percent".
        tail = re.match(r"(\s*(?:%|per\s?cent))|\s+([A-Za-z][\w\-]*)", sentence[end:])
        if tail is not None:
            word = tail.group(2)
            if tail.group(1) or (
                word is not None
                and word.islower()
                and word.casefold() not in FUNCTION_WORDS
                and (fold(word) in _UNITS or fold(word) in unit_keys)
            ):
                end += tail.end()
        out.append(_Candidate(start, end, Kind.NUMBER, *_token_span(tokens, start, end)))
    return out


def _names(tokens: list[Token]) -> list[_Candidate]:
    """Runs of capitalised words, joined by lowercase name particles and across job titles."""
    out: list[_Candidate] = []
    i, n = 0, len(tokens)
    while i < n:
        t = tokens[i]
        if not _name_word(t.text) or t.text.casefold() in _CAPITAL_FUNCTION_WORDS:
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
            if k < n and k > j + 1 and _name_word(tokens[k].text):
                j = k
            elif j + 1 < n and _name_word(tokens[j + 1].text):
                j += 1
            else:
                break
        out.append(_Candidate(tokens[i].start, tokens[j].end, Kind.NAME, i, j))
        i = j + 1
    return out


def _quotes(sentence: str, tokens: list[Token]) -> list[_Candidate]:
    out = []
    for m in _QUOTE.finditer(sentence):
        g = next(k for k in (1, 2, 3) if m.group(k) is not None)
        start, end = m.start(g), m.end(g)
        out.append(_Candidate(start, end, Kind.QUOTE, *_token_span(tokens, start, end)))
    return out


# Which kinds of span can answer which type of question.
_KINDS: dict[AnswerType, tuple[Kind, ...]] = {
    AnswerType.DATE: (Kind.DATE,),
    AnswerType.NUMBER: (Kind.NUMBER,),
    AnswerType.PERSON: (Kind.NAME,),
    AnswerType.PLACE: (Kind.NAME,),
    AnswerType.ENTITY: (Kind.NAME, Kind.QUOTE),
    AnswerType.OTHER: (Kind.NAME, Kind.QUOTE),
}


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
        cands += [c for c in _names(tokens) if not any(a <= c.start and c.end <= b for a, b in quoted)]
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


_LOCATIVE = _words("in at near outside inside from to into across around within")


@lru_cache(maxsize=65536)
def sentence_spans(sentence: str) -> tuple[Span, ...]:
    """Every date, quantity, name and quoted title of ``sentence``, whatever the question: found once per
    sentence, so that asking which sentences offer a question's type costs set look-ups only."""
    toks = tokenize(sentence)
    found = _dates(sentence, toks) + _numbers(sentence, toks, frozenset()) + _quotes(sentence, toks)
    quoted = [(c.start, c.end) for c in found if c.kind is Kind.QUOTE]
    found += [c for c in _names(toks) if not any(a <= c.start and c.end <= b for a, b in quoted)]
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
    kinds = _KINDS[form.type]
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
)

_CURRENCY = re.compile(
    r"[$£€¥₩₽₹₺₦]|\b(?:USD|EUR|GBP|RMB|CHF|yuan|dollars?|euros?|pounds|yen|won|roubles?|rubles?|rupees?|"
    r"pesos?|francs?|kronor|krona|kroner|krone|kuna|dinars?|shillings?|kwacha|rand|naira|lira|lire|zloty|"
    r"forints?|lei|leva?|hryvnias?|tenge|ringgit|baht|dong|rupiah)\b"
)

_ORG_WORDS = _words(
    """university college school company corporation inc ltd records group foundation association
    council committee museum hall church city state river street avenue park building bridge
    centre center county island department ministry agency party league award awards prize festival
    band orchestra theatre theater times news magazine journal bank institute"""
)


def _features(q: QuestionForm, c: _Candidate, tokens: list[Token], sentence: str) -> dict[str, float]:
    anchors = [i for i, t in enumerate(tokens) if t.key in q.keys and t.key not in FUNCTION_WORDS]
    anchors = [i for i in anchors if not c.first <= i <= c.last]
    if anchors:
        nearest = min(anchors, key=lambda i: min(abs(i - c.first), abs(i - c.last)))
        distance = min(abs(nearest - c.first), abs(nearest - c.last)) - 1
        after = 1.0 if nearest < c.first else 0.0
    else:
        distance, after = 0, 0.0
    words = [t.key for t in tokens[c.first : c.last + 1] if t.text[:1].isalnum()]
    content = [w for w in words if w not in FUNCTION_WORDS] or words
    overlap = sum(w in q.keys for w in content) / max(1, len(content))
    before = tokens[c.first - 1].text.casefold() if c.first > 0 else ""
    prep_echo = 1.0 if q.prep and before == q.prep else 0.0
    in_parens = 1.0 if before == "(" else 0.0
    neighbours = {tokens[i].key for i in (c.first - 1, c.last + 1, c.last) if 0 <= i < len(tokens)}
    head_follows = 1.0 if q.head and q.head in neighbours else 0.0
    span_tokens = tokens[c.first : c.last + 1]
    person_like = (
        1.0
        if c.kind is Kind.NAME
        and 2 <= len(span_tokens) <= 4
        and all(_is_capitalised(t.text) for t in span_tokens)
        and not any(t.key in _ORG_WORDS for t in span_tokens)
        else 0.0
    )
    found = {t.key for t in tokens if t.key in q.keys and t.key not in FUNCTION_WORDS}
    near = {
        tokens[i].key
        for i in range(max(0, c.first - 5), min(len(tokens), c.last + 6))
        if tokens[i].key in found and not c.first <= i <= c.last
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
    shape = {
        "percent": "%" in text or "per" in text.casefold(),
        "money": _CURRENCY.search(text) is not None,
        "year": re.search(r"\d{3,4}", text) is not None,
        "month": re.search(_MONTHS, text, re.IGNORECASE) is not None,
        "decade": re.search(r"\d0s\b", text) is not None,
        "century": "century" in text.casefold(),
        "age": re.search(r"\d|\b[a-z]+\b", text) is not None and "%" not in text,
    }.get(q.want)
    shape_fit = 0.0 if shape is None else (1.0 if shape else -1.0)
    last = tokens[c.last]
    unit_mismatch = (
        1.0
        if c.kind is Kind.NUMBER and last.text.isalpha() and last.key in _UNITS and last.key not in q.keys
        else 0.0
    )
    sides = [(i < c.first) == (tokens[i].key in q.before) for i in anchors]
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
    }


# Calibration of the best candidate: a logistic model of "the best candidate is right" per answer type,
# over its ranking logit, its margin over the runner-up and how many candidates compete. The maximum of
# several ranking probabilities is biased upwards and candidates compete; this second step corrects for
# both.
CALIBRATION_FEATURES = (
    "logit",  # the best candidate's ranking logit
    "margin",  # its margin over the runner-up, capped at 5 (5 when it has none)
    "log_candidates",  # log of the number of candidates
)
MARGIN_CAP = 5.0


@dataclass(frozen=True)
class ShortAnswerModel:
    """Per answer type, the ranking model of candidates and the calibration of the best one; the
    lowest confidence :meth:`ShortAnswerFinder.find` returns."""

    rank: dict[AnswerType, LinearModel]
    calibration: dict[AnswerType, LinearModel]
    threshold: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        data = {
            "rank": {t.value: self.rank[t].to_dict() for t in AnswerType},
            "calibration": {t.value: self.calibration[t].to_dict() for t in AnswerType},
            "threshold": rounded([self.threshold], 4)[0],
            "metadata": self.metadata,
        }
        return dump_model(data)

    @classmethod
    def from_json(cls, text: str) -> ShortAnswerModel:
        raw = read_model(text, "short-answer model")
        types = sorted(t.value for t in AnswerType)
        for part in ("rank", "calibration"):
            if sorted(raw[part]) != types:
                raise ValueError(f"{part} models for {sorted(raw[part])}, not for the answer types {types}")
        return cls(
            {t: LinearModel.from_dict(raw["rank"][t.value], FEATURES) for t in AnswerType},
            {t: LinearModel.from_dict(raw["calibration"][t.value], CALIBRATION_FEATURES) for t in AnswerType},
            float(raw["threshold"]),
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
    toks = tokenize(sentence)
    return q, [(c, _features(q, c, toks, sentence)) for c in _candidates(q, sentence, toks)]


def calibration_features(scored: list[Scored]) -> dict[str, float]:
    """The calibration's inputs for the best of ``scored`` (best first, at least one)."""
    best = scored[0].logit
    margin = best - scored[1].logit if len(scored) > 1 else MARGIN_CAP
    return {"logit": best, "margin": min(margin, MARGIN_CAP), "log_candidates": math.log(len(scored))}


class ShortAnswerFinder:
    """Marks short answers with one loaded :class:`ShortAnswerModel`; built once, by ``ForumQA``."""

    def __init__(self, model: ShortAnswerModel) -> None:
        self.model = model

    def scored(self, question: str, sentence: str) -> tuple[QuestionForm, list[Scored]]:
        """The question's form and every candidate with its ranking logit, best first."""
        q, found = candidates(question, sentence)
        rank = self.model.rank[q.type]
        scored = [Scored(c, f, rank.score(f)) for c, f in found]
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
        if confidence < self.model.threshold:
            return None
        c = scored[0].candidate
        return ShortAnswer(c.start, c.end, sentence[c.start : c.end], round(confidence, 4))


def short_answer(question: str, sentence: str, finder: ShortAnswerFinder | None = None) -> ShortAnswer | None:
    """The short answer to ``question`` inside ``sentence`` by ``finder`` (the shipped model's by
    default), or None when there is no confident one."""
    return (finder or ShortAnswerFinder(shipped_model())).find(question, sentence)
