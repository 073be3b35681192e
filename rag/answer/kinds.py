"""What kind of answer a question wants: an overview of a document, a yes or a no, or a fact.

- **Overview** questions ("What is this report about?", "Summarize the main points", "Who was Frédéric
  Chopin?" asked of the article titled so) want a document's lead, not the one sentence most like the
  question: no sentence resembles "what is this about".
- **Yes/no** questions ("Was the Trans-Siberian railway discussed?") want the sentence that settles them,
  led by "Yes" or "No" only when that sentence settles it (:func:`yes_or_no`).
- Everything else is a **fact** question, for the reader's ranker.

The rules look at the question's form only (English); questions in other scripts are fact questions.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from enum import Enum


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
    decomposed = unicodedata.normalize("NFKD", text)
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    return [w for w in re.findall(r"\w+", plain) if w not in _ARTICLES]


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
_META_VERBS = frozenset(
    {"discuss", "mention", "talk", "rais", "cover", "address", "debat", "note", "bring", "brought", "touch",
     "consid", "discussed", "mentioned", "talked", "raised", "covered", "addressed", "debated", "noted",
     "touched", "considered"}
)
_NEGATION = re.compile(
    r"\b(?:not|never|no|none|nobody|nothing|neither|nor|without|failed|fails|fail|refused|denied|lacks?|"
    r"cannot)\b|n't\b",
    re.IGNORECASE,
)
SETTLED_COVERAGE = 0.75  # share of the question's weighted words the sentence must hold to settle it


def yes_or_no(
    question_terms: dict[str, float], sentence_terms: frozenset[str], question: str, sentence: str
) -> str | None:
    """"Yes" or "No" when ``sentence`` settles the yes/no ``question``, else None (show it unled).

    ``question_terms`` maps the question's content terms to their weights (idf). The sentence settles
    the question when it holds nearly all of that weight, so it speaks of the same things; then a
    negation in the sentence means "No", and none means "Yes". A negative question gets no lead.
    """
    content = {t: w for t, w in question_terms.items() if t not in _META_VERBS}
    total = sum(content.values())
    if not content or total <= 0:
        return None
    held = sum(w for t, w in content.items() if t in sentence_terms)
    if held / total < SETTLED_COVERAGE:
        return None
    if len(content) < len(question_terms):
        return "Yes"  # "Was X discussed?": a sentence about X says yes, whatever it says of X
    if _NEGATION.search(question):
        return None  # "Wasn't it approved?": English answers a negative question ambiguously
    return "No" if _NEGATION.search(sentence) else "Yes"
