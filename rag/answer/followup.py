"""Follow-ups: turn a question that leans on the chat history into one that stands alone.

"When will work on it start?" after "What did the Duma approve?" is searched as if the subject were
named: when the question refers back (a pronoun, "the same", or too few content words of its own),
the most recent user question is prepended. Deterministic, no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.text import terms
from rag.types import Turn

_REFERRING = re.compile(
    # English pronouns and words that point back.
    r"\b(it|its|they|them|their|theirs|this|that|these|those|he|him|his|she|her|there|then|such|same|"
    r"former|latter|above|mentioned)\b"
    # Korean demonstratives start a word (particles attach to them: 그것은, 그들의); a bare 그/이/저
    # is a determiner only as a word of its own ("그 계획"), since 이 is also the subject particle.
    r"|(?<!\S)(그것|그들|그곳|그때|그분|이것|이들|이곳|저것|해당)"
    r"|(?<!\S)(그|이|저)(?=\s)"
    # Russian personal and demonstrative pronouns, including the н- forms after prepositions.
    r"|(?<![\w])(он|она|оно|они|его|её|ее|их|ему|ей|им|ими|нём|нем|него|нему|ним|неё|нее|ней|нею|них|ними|"
    r"это|этот|эта|эти|этого|этому|этим|этой|этих|этом|тот|та|те|там|тогда)(?![\w])",
    re.IGNORECASE,
)
MAX_HISTORY_CHARS = 1000


def needs_context(question: str) -> bool:
    """True when ``question`` refers to something named earlier in the chat."""
    return bool(_REFERRING.search(question)) or len(terms(question)) < 2


def standalone_question(question: str, history: Sequence[Turn] | None) -> str:
    """The text to retrieve with: ``question`` alone, or with the last user question before it."""
    if not history or not needs_context(question):
        return question
    for turn in reversed(history):
        if turn.role == "user" and turn.content.strip():
            return f"{turn.content.strip()[:MAX_HISTORY_CHARS]} {question}"
    return question
