"""Question analysis: what a question asks for, read from its wording (English, and the question words
of Korean and Russian).

- :class:`QuestionTypes`: the reader's view (who, when, where, how many, why; several may hold), paired
  with what each candidate sentence offers;
- :class:`QuestionForm` and :class:`AnswerType`: the short-answer finder's view (the one type of span a
  question expects, its head noun and preposition);
- :class:`Kind` and :func:`kind_of`: overview, yes/no or fact, which decides how an answer is composed;
- the yes/no rules' words (:data:`META_VERBS`, :func:`denies`).

Only the answer stage (and training, which fits it) reads questions, so this lives in ``answer/``; the
rules about words, numbers, dates, names and negation that sentences and questions share stay in
:mod:`rag.text`.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from functools import lru_cache

from rag.text import (
    FUNCTION_WORDS,
    NUMBER,
    is_latin,
    negated,
    strip_accents,
    word_set,
)


def question_words(question: str) -> frozenset[str]:
    """The question's words, lower-cased, as a sentence's names and places are compared with them."""
    return frozenset(w.lower().strip("'’") for w in re.findall(r"[\w'’-]+", question))


def question_numbers(question: str) -> frozenset[str]:
    return frozenset(m.group(0).lower() for m in NUMBER.finditer(question))


# ------------------------------------------------------------------------------------ question types

WH_WORDS = ("who", "whom", "whose", "what", "when", "where", "why", "how", "which")

_WHEN = re.compile(
    r"\b(when|what (?:year|years|date|day|month|time|decade|century|era|period|season)|"
    r"which (?:year|date|day|month|decade|century)|how long ago|since when)\b",
    re.IGNORECASE,
)
_HOW_MANY = re.compile(
    r"\b(how (?:many|much|long|old|far|large|big|tall|high|fast|often|deep|heavy|wide)|"
    r"what (?:percentage|percent|proportion|share|number|amount|fraction|age|size|population)|"
    r"what was the (?:number|amount|cost|price|budget|total))\b",
    re.IGNORECASE,
)
_WHO = re.compile(r"\b(who|whom|whose|which (?:person|man|woman|company|organi[sz]ation|group|band))\b", re.I)
_WHERE = re.compile(
    r"\b(where|(?:what|which|in what|in which) (?:city|country|place|state|region|town|location|"
    r"province|area|continent|county|nation|island|venue|university|school|building|street))\b",
    re.IGNORECASE,
)
_WHY = re.compile(r"\b(why|what (?:caused|was the reason|reason)|for what reason)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class QuestionTypes:
    """What kinds of answer a question asks for, by its wording (several may hold; none for a plain
    "what"): the reader's view, which pairs each with what a sentence offers."""

    when: bool
    how_many: bool
    who: bool
    where: bool
    why: bool

    @property
    def typed(self) -> bool:
        return self.when or self.how_many or self.who or self.where or self.why

    @classmethod
    def of(cls, question: str) -> QuestionTypes:
        return cls(
            bool(_WHEN.search(question)),
            bool(_HOW_MANY.search(question)),
            bool(_WHO.search(question)),
            bool(_WHERE.search(question)),
            bool(_WHY.search(question)),
        )


class AnswerType(Enum):
    """The one kind of answer a question expects: the short-answer finder's view."""

    DATE = "date"
    NUMBER = "number"
    PERSON = "person"
    PLACE = "place"
    ENTITY = "entity"
    OTHER = "other"


# Nouns after "what"/"which" that say what kind of thing is asked for.
PERSON_HEADS = word_set(
    """person man woman people actor actress singer artist composer musician writer author poet
    painter player coach director producer leader king queen emperor president minister official
    member teacher student father mother son daughter brother sister wife husband friend politician
    scientist architect designer character figure individual manager mayor governor general founder
    councillor councilor chairman chairwoman chairperson chair secretary treasurer speaker officer
    engineer doctor lawyer auditor sponsor ceo executive
    critic journalist host judge rapper band group duo team"""
)
PLACE_HEADS = word_set(
    """city town village country nation state province region county borough district neighborhood
    neighbourhood island continent place location area street avenue park venue building hall
    stadium arena river lake mountain sea ocean capital site port airport station university
    college school school's hospital church palace theater theatre"""
)
DATE_HEADS = word_set("year date day month decade century season period time")
NUMBER_HEADS = word_set(
    """percentage percent proportion share number amount population total rate price cost age
    height length width depth distance size magnitude temperature speed ratio count sum fee salary
    budget score value revenue income turnover profit deficit surplus debt spending expenditure fare
    wage capacity attendance turnout commission tariff vote"""
)
_HEADS = PERSON_HEADS | PLACE_HEADS | DATE_HEADS | NUMBER_HEADS
_BE = frozenset({"is", "was", "are", "were", "will", "would"})
_AUXILIARIES = frozenset({"does", "did", "do", "would", "will", "could", "might", "can", "should"})
_DETERMINERS = word_set("the a an its their his her this that these those be")
# "how" + these asks for a number: the reader's how-many words (_HOW_MANY) and measures of cost, heat, use
_MEASURES = word_set(
    """many much long old large big far tall high fast deep often heavy wide widely expensive costly hot
    cold warm"""
)
# "Why" asks for a reason, which no span type answers: a why-question's form is read from any other
# wh-word it holds ("Why did the king whom ... ?"), else it is OTHER.
_WH = re.compile(rf"\b({'|'.join(w for w in WH_WORDS if w != 'why')})\b", re.IGNORECASE)

# A token: an abbreviation like "U.S.", a number like "1,200.5", or a word with inner ' - . &.
_TOKEN = re.compile(r"(?:[A-Z]\.){2,}|\d+(?:[.,:]\d+)*|\w+(?:['’\-.&]\w+)*['’]?|\S")


def fold(word: str) -> str:
    """Lowercase, strip accents and a possessive/plural ending, so "Beyoncé's" meets "beyonce"."""
    word = strip_accents(word.casefold()).replace("’", "'")
    if word.endswith("'s"):
        word = word[:-2]
    elif word.endswith("'"):
        word = word[:-1]
    if len(word) > 3 and word.endswith("ies"):
        word = word[:-3] + "y"
    elif len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
        word = word[:-1]
    return word


@dataclass(frozen=True, slots=True)
class Token:
    """A token of a sentence with its offsets and its folded form."""

    text: str
    start: int
    end: int
    key: str  # fold(text)


def tokens(text: str) -> list[Token]:
    """The tokens of ``text``: abbreviations, numbers with separators, words, punctuation marks."""
    return [Token(m.group(), m.start(), m.end(), fold(m.group())) for m in _TOKEN.finditer(text)]


def parts(token: Token) -> list[str]:
    """The folded parts of a hyphenated word ("end-of-the-decade"), or the word itself."""
    return [fold(p) for p in token.text.split("-") if p] if "-" in token.text else [token.key]


_WANT = (
    ("percent", re.compile(r"\b(?:percent(?:age)?|proportion|share|per cent|%)", re.IGNORECASE)),
    (
        "money",
        re.compile(
            r"\b(?:money|cost|price|paid|pay|worth|earn\w*|gross\w*|budget|revenue|dollars?|spen[dt])\b", re.I
        ),
    ),
    ("decade", re.compile(r"\bdecade\b", re.IGNORECASE)),
    ("century", re.compile(r"\bcentury\b", re.IGNORECASE)),
    ("month", re.compile(r"\bmonth\b", re.IGNORECASE)),
    ("year", re.compile(r"\b(?:what|which) year\b", re.IGNORECASE)),
    ("age", re.compile(r"\b(?:how old|what age)\b", re.IGNORECASE)),
)


@dataclass(frozen=True, slots=True)
class QuestionForm:
    """The answer a question expects, read from its wh-word and the noun after it."""

    type: AnswerType
    head: str  # the noun after "what"/"which"/"how many", folded; "" when there is none
    prep: str  # a preposition right before the wh-word ("in" for "In what year"), or ""
    keys: frozenset[str]  # the question's content words, folded
    want: str = ""  # a finer shape of the answer: percent, money, year, month, decade, century, age
    before: frozenset[str] = frozenset()  # content words the question puts before its wh-word

    @classmethod
    def of(cls, question: str) -> QuestionForm:
        q = _form_type(question)
        want = next((name for name, pattern in _WANT if pattern.search(question)), "")
        m = _WH.search(question)
        before = frozenset(t.key for t in tokens(question[: m.start()])) & q.keys if m else frozenset()
        return cls(q.type, q.head, q.prep, q.keys, want, before)


@lru_cache(maxsize=1024)
def question_form(question: str) -> QuestionForm:
    """:meth:`QuestionForm.of`, cached: the same question meets several sentences."""
    return QuestionForm.of(question)


def answer_type(question: str) -> AnswerType:
    """What kind of answer ``question`` asks for (a date, a number, a person, a place...)."""
    return question_form(question).type


# Korean and Russian question words, first match wins (a Korean "몇 년도" asks for a year before "몇" asks
# for a number). The sentences that answer are English, so only the answer's type is read: no head noun,
# no preposition, and none of the question's words will be found in the sentence.
_FOREIGN_WH = (
    (
        AnswerType.DATE,
        re.compile(
            r"언제|몇\s*년도|몇\s*년에|몇\s*월|며칠|"  # when, what year, what month, what day
            r"\bкогда\b|\bв каком году\b|\bкакого числа\b",
            re.I,
        ),
    ),
    (AnswerType.NUMBER, re.compile(r"몇|얼마|\bсколько\b", re.I)),
    (AnswerType.PERSON, re.compile(r"누구|누가|\bкто\b|\bкого\b|\bкому\b|\bкем\b", re.I)),
    (AnswerType.PLACE, re.compile(r"어디|\bгде\b|\bкуда\b|\bоткуда\b", re.I)),
)


def _form_type(question: str) -> QuestionForm:
    toks = tokens(question)
    lowered = [t.text.casefold() for t in toks]
    keys = frozenset(
        w for t in toks if t.text[:1].isalnum() for w in {t.key, *parts(t)} if w not in FUNCTION_WORDS
    )
    m = _WH.search(question)
    if m is None:
        if not is_latin(question):
            for kind, pattern in _FOREIGN_WH:
                if pattern.search(question):
                    return QuestionForm(kind, "", "", keys)
        return QuestionForm(AnswerType.OTHER, "", "", keys)
    i = next(k for k, t in enumerate(toks) if t.start == m.start())
    wh = lowered[i]
    prep = lowered[i - 1] if i > 0 and lowered[i - 1] in {"in", "on", "at", "by", "from", "to", "for"} else ""
    nxt = lowered[i + 1] if i + 1 < len(lowered) else ""
    # The noun the wh-word asks about: skip adjectives-ish words up to the first non-stopword.
    head = ""
    for w in lowered[i + 1 : i + 4]:
        if w in FUNCTION_WORDS or not w[:1].isalpha():
            break
        head = fold(w)
        if head in _HEADS:
            break
    if wh in {"who", "whom", "whose"}:
        return QuestionForm(AnswerType.PERSON, "", prep, keys)
    if wh == "when":
        return QuestionForm(AnswerType.DATE, "", prep, keys)
    if wh == "where":
        return QuestionForm(AnswerType.PLACE, "", prep, keys)
    if wh == "how":
        if nxt in _MEASURES:
            after = fold(lowered[i + 2]) if i + 2 < len(lowered) else ""
            head = after if nxt in {"many", "much"} and after not in FUNCTION_WORDS else ""
            return QuestionForm(AnswerType.NUMBER, head, prep, keys)
        return QuestionForm(AnswerType.OTHER, "", prep, keys)
    # "What does / would X cost?" asks for an amount
    if wh == "what" and nxt in _AUXILIARIES and "cost" in lowered[i + 2 :]:
        return QuestionForm(AnswerType.NUMBER, "", prep, keys)
    # what / which; "What is the budget of X?", "What was the date of Y?" name their head after the verb
    if not head and nxt in _BE:
        following = [w for w in lowered[i + 2 : i + 6] if w not in _DETERMINERS]
        if following and fold(following[0]) in _HEADS:
            head = fold(following[0])
    for heads, kind in (
        (DATE_HEADS, AnswerType.DATE),
        (NUMBER_HEADS, AnswerType.NUMBER),
        (PERSON_HEADS, AnswerType.PERSON),
        (PLACE_HEADS, AnswerType.PLACE),
    ):
        if head in heads:
            return QuestionForm(kind, head, prep, keys)
    if head and nxt not in FUNCTION_WORDS:
        return QuestionForm(AnswerType.ENTITY, head, prep, keys)
    return QuestionForm(AnswerType.OTHER, "", prep, keys)


# ------------------------------------------------------------------------------------ question kinds
#
# What kind of answer a question wants, by its form (English): an overview of a document ("What is this
# report about?", "Who was Frédéric Chopin?" asked of the article titled so), which no single sentence
# resembles, so the answer is the document's lead; a yes or a no, settled by one sentence; or a fact.


class Kind(Enum):
    OVERVIEW = "overview"
    YES_NO = "yes_no"
    FACT = "fact"


_SUMMARY = re.compile(
    r"\b(?:summar(?:y|ies|ise|ize|ised|ized|ising|izing)|overview|gist|synopsis|tl;?dr|in a nutshell|"
    r"main (?:points?|ideas?|topics?|themes?|findings?|messages?)|"
    r"key (?:points?|takeaways?|findings?|ideas?|messages?)|highlights|sum (?:it |this |that |them )?up)\b",
    re.IGNORECASE,
)
# "When was the main theme of Spectre released?" asks for a fact, summary words or not.
_SPECIFIC = re.compile(r"^\W*(?:when|where|who|whom|whose|why|how)\b", re.IGNORECASE)
_DOCUMENT_WORDS = (
    r"(?:report|document|article|text|paper|page|file|piece|story|entry|documents|reports|articles|texts|"
    r"papers|files|sources?|minutes|memo|memorandum|brief|briefing|notes|record|records|proceedings|"
    r"update|newsletter|review|summary|statement|submission)"
)
# What a document reports on, as its readers name it: "What was the site visit about?", "What are these
# council minutes about?". Asked "about" with one of these, a question wants the document's gist.
_EVENT_WORDS = (
    r"(?:meeting|session|sitting|forum|conference|congress|summit|symposium|workshop|seminar|webinar|"
    r"visit|mission|trip|tour|hearing|inquiry|inspection|audit|survey|study|evaluation|assessment|"
    r"project|programme|program|initiative|plan|strategy|year|event|talks|dialogue|exchange|round ?table)"
)
_ABOUT = re.compile(
    r"^\W*(?:so\s+)?(?:what(?:'s|’s| is| are| was| were)?|what (?:does|do|did))\s+"
    r"(?:this|the|these|that|your)\s+(?:[\w'’.,&-]+\s+){0,5}?"
    + _DOCUMENT_WORDS
    + r"\s*(?:about|on|cover|covers|say|says|discuss|discusses|describe|describes|tell (?:me|us)|"
    r"report|reports|record|records)\b"
    r"|^\W*(?:so\s+)?what(?:'s|’s| is| are| was| were)\s+(?:this|the|these|that)\s+(?:[\w'’.,&-]+\s+){0,5}?"
    + _EVENT_WORDS
    + r"s?\s+(?:all\s+)?about\W*$"
    r"|\bwhat(?:'s|’s| is| was) (?:it|this|that) (?:all )?about\W*$"
    r"|^\W*(?:tell me|what can you tell me|what do you know) about (?:this|the|these|your) "
    + _DOCUMENT_WORDS
    + r"\b"
    # "What kind of document is this?", "What type of report is the Wirrabee report?"
    r"|^\W*what (?:kind|type|sort) of (?:a\s+)?(?:document|report|text|file|paper|thing)s?\b"
    r"|^\W*what (?:is|are) (?:this|these)\W*$",
    re.IGNORECASE,
)
# "Where does Project Maré stand?", "What is the status of the migration project?": the state of the
# whole thing a document reports on, which a status report's opening gives. Only when the subject is
# the document's own (see :func:`kind_of`).
_STANDING = re.compile(
    r"^\W*(?:where (?:does|do|did) (?P<a>.+?) stand|what(?:'s|’s| is) the (?:overall |current |latest )?"
    r"(?:status|state|progress) of (?P<b>.+?)"
    r"|how (?:is|are) (?P<c>.+?) (?:going|progressing|doing|coming along))"
    r"\W*$",
    re.IGNORECASE,
)
_KIND_WORDS = re.compile(_DOCUMENT_WORDS + "|" + _EVENT_WORDS, re.IGNORECASE)
_NAMED = re.compile(
    r"^\W*(?:(?:who|what)\s+(?:is|was|are|were)|tell me about|describe|explain|introduce)\s+(?P<x>.+?)\W*$",
    re.IGNORECASE,
)
_YES_NO = re.compile(
    r"^\W*(?:is|are|was|were|am|did|does|do|has|have|had|can|could|will|would|should|shall|may|might|must|"
    r"isn't|aren't|wasn't|weren't|didn't|doesn't|don't|hasn't|haven't|hadn't|won't|wouldn't|can't|"
    r"couldn't)\b",
    re.IGNORECASE,
)
_CHOICE = re.compile(r"\bor\b(?!\s+not\b)", re.IGNORECASE)  # "Was it X or Y?" asks which, not whether
# Where a title splits into parts, each part names the document too: "Twilight Princess" of "The Legend
# of Zelda: Twilight Princess", "Spectre" of "Spectre (2015 film)".
_TITLE_PARTS = re.compile(r"\s*[:()—–]\s*|\s+-\s+")
_ARTICLES = frozenset({"the", "a", "an"})


def _folded_words(text: str) -> list[str]:
    return [w for w in re.findall(r"\w+", strip_accents(text).casefold()) if w not in _ARTICLES]


def named_documents(question: str, titles: Sequence[str]) -> list[int]:
    """Indexes of the ``titles`` that a "Who/What is X?" or "Tell me about X" question names as X."""
    match = _NAMED.match(question.strip())
    if match is None:
        return []
    asked = _folded_words(match.group("x"))
    if not asked:
        return []
    named = []
    for i, title in enumerate(titles):
        parts = [title, *_TITLE_PARTS.split(title)]
        if any(asked == _folded_words(part) for part in parts if part.strip()):
            named.append(i)
    return named


def _names_a_document(subject: str, titles: Sequence[str]) -> bool:
    """``subject`` ("Project Maré", "the Azores migration project") is made of one title's words and words
    naming a kind of document or event, with at least one word of the title."""
    asked = [w for w in _folded_words(subject) if not _KIND_WORDS.fullmatch(w)]
    if not asked:
        return True  # "Where does the project stand?": the project the documents report on
    return any(set(asked) <= set(_folded_words(title)) for title in titles)


def kind_of(question: str, titles: Sequence[str] = ()) -> Kind:
    """The kind of answer ``question`` wants, given the titles of the documents it may be about."""
    q = question.strip()
    if (_SUMMARY.search(q) and not _SPECIFIC.match(q)) or _ABOUT.search(q) or named_documents(q, titles):
        return Kind.OVERVIEW
    standing = _STANDING.match(q)
    if standing is not None:
        subject = next(g for g in standing.groups() if g is not None)
        if _names_a_document(subject, titles):
            return Kind.OVERVIEW
    if _YES_NO.match(q) and not _CHOICE.search(q):
        return Kind.YES_NO
    return Kind.FACT


# Verbs that ask whether the documents speak of something at all: "Was X discussed?" is settled by a
# sentence about X, which rarely repeats the verb.
META_VERBS = frozenset(
    {"discuss", "mention", "talk", "rais", "cover", "address", "debat", "note", "bring", "brought", "touch",
     "consid", "discussed", "mentioned", "talked", "raised", "covered", "addressed", "debated", "noted",
     "touched", "considered"}
)
# Words that deny what follows without a negation word: "Girl's Tyme failed to win" says no.
_DENIAL = re.compile(
    r"\b(?:failed|fails|fail|refused|refuses|declined|declines|rejected|rejects|denied|lacks?|lacked|cannot)\b",
    re.IGNORECASE,
)


def denies(text: str) -> bool:
    """A negation (:data:`NEGATION`) or a denial ("failed to", "refused") in ``text``."""
    return negated(text) or _DENIAL.search(text) is not None
