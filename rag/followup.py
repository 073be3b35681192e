"""Follow-ups: turn a question that leans on the chat history into one that stands alone.

"When will work on it start?" after "What did the Duma approve?" is searched as if the subject were
named: when the question refers back (a pronoun, "the same", or too few content words of its own),
the most recent user question is prepended. Deterministic, no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from rag.lexical import terms
from rag.types import Turn

_REFERRING = re.compile(
    r"\b(it|its|they|them|their|theirs|this|that|these|those|he|him|his|she|her|there|then|such|same|"
    r"former|latter|above|mentioned|also|else|more|other)\b"
    r"|(그것|그들|그곳|그때|이것|이들|저것|그|이|해당)"
    r"|(?<![\w])(он|она|оно|они|его|её|ее|их|ему|ей|им|это|этот|эта|эти|этого|этом|тот|та|те|там|тогда)(?![\w])",
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
