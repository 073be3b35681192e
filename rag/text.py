"""Text analysis shared by every stage: the one place where a rule about words, numbers, dates, names,
scripts, negation or question types is written.

The index (BM25's terms), the reader (what a sentence offers, what a question asks for), the short-answer
finder (answer types, spans) and the grounding check (numbers and names an answer states, negations,
scripts) all read text through this module, so a fix to "how many" or to "1,000" lands once and the
models fitted on these features move together. It imports no stage of the package.

Results are frozen dataclasses computed once per text (:class:`SentenceMarks`, :class:`QuestionTypes`,
:class:`QuestionForm`); the regular expressions are public so that span finders can build on them.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
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


def _listed(text: str) -> frozenset[str]:
    return frozenset(_words_of(text))


# The English stopwords of BM25, the reader's overlap features and the grounding check's content words.
# bm25s ships two English lists: STOPWORDS_EN (33 words, all of them in this list) and STOPWORDS_EN_PLUS
# (NLTK's 179: it adds contractions such as "aren't", and lacks "according", "said", "one", "many",
# "much", "may"...). Either would change every BM25 index and the reader's features, so the reader
# would have to be refitted and re-measured; not done yet, so the list stays the one the shipped
# models were fitted with.
STOPWORDS = _listed(
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
    - _listed(
        """according again don further herself himself itself myself now one ones ourselves said say says
        t themselves yourself yourselves"""
    )
) | _listed(
    """'s across along although among another around done either even every fewer first get got it's
    last least less made make mine near neither one's onto since still though throughout till toward
    towards unless upon us whatever whether whichever whoever whose within without yet"""
)

# Russian words that are never transliterated to meet the report's names: bm25s's Russian list
# (pronouns, prepositions, particles) and question words and particles it lacks ("почему", "сколько"),
# which transliterated would match English words by accident.
RUSSIAN_STOPWORDS = frozenset(STOPWORDS_RUSSIAN) | _listed(
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
PERSON_HEADS = _listed(
    """person man woman people actor actress singer artist composer musician writer author poet
    painter player coach director producer leader king queen emperor president minister official
    member teacher student father mother son daughter brother sister wife husband friend politician
    scientist architect designer character figure individual manager mayor governor general founder
    critic journalist host judge rapper band group duo team"""
)
PLACE_HEADS = _listed(
    """city town village country nation state province region county borough district neighborhood
    neighbourhood island continent place location area street avenue park venue building hall
    stadium arena river lake mountain sea ocean capital site port airport station university
    college school school's hospital church palace theater theatre"""
)
DATE_HEADS = _listed("year date day month decade century season period")
NUMBER_HEADS = _listed(
    """percentage percent proportion share number amount population total rate price cost age
    height length width depth distance size magnitude temperature speed ratio count sum fee salary
    budget score"""
)
_HEADS = PERSON_HEADS | PLACE_HEADS | DATE_HEADS | NUMBER_HEADS
_MEASURES = frozenset({"many", "much", "long", "old", "large", "big", "far", "tall", "high", "fast", "deep"})
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
    # what / which
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
    r"papers|files|sources?)"
)
_ABOUT = re.compile(
    r"^\W*(?:so\s+)?(?:what(?:'s|’s| is| are| was| were)?|what (?:does|do|did))\s+"
    r"(?:this|the|these|that|your)\s+"
    + _DOCUMENT_WORDS
    + r"\s*(?:about|on|cover|covers|say|says|discuss|discusses|describe|describes|tell (?:me|us))\b"
    r"|\bwhat(?:'s|’s| is| was) (?:it|this|that) (?:all )?about\W*$"
    r"|^\W*(?:tell me|what can you tell me|what do you know) about (?:this|the|these|your) "
    + _DOCUMENT_WORDS
    + r"\b",
    re.IGNORECASE,
)
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


def kind_of(question: str, titles: Sequence[str] = ()) -> Kind:
    """The kind of answer ``question`` wants, given the titles of the documents it may be about."""
    q = question.strip()
    if (_SUMMARY.search(q) and not _SPECIFIC.match(q)) or _ABOUT.search(q) or named_documents(q, titles):
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
