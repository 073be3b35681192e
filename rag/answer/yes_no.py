"""Yes or no: whether the quoted sentences settle a yes/no question, and which way.

A wrong "Yes." is the worst answer the service gives, so a lead word is given only when a sentence says
it plainly, and three forms of question are told apart:

- **Was X discussed?** (a verb of :data:`~rag.answer.question.META_VERBS`): a sentence about X says yes,
  whatever it says of X.
- **An outcome** ("Did the council approve X?", "Was the treaty signed?", "Has the bridge been
  finished?"): only a sentence that *records* the outcome settles it. "Carried", "was approved", "has
  been completed" say yes; "defeated", "rejected", "withdrawn", "deferred", "delayed", "not yet ..." say
  no. A motion moved, a plan announced, approval sought ("moved that X be approved", "is expected to be
  completed") settles nothing, and the documents are then said not to settle the question
  (:attr:`Settled.UNSETTLED`). Minutes record a motion's outcome a sentence or two after it is moved, so
  the sentences after the quoted one, in the same paragraph, are read too: an outcome against anywhere
  among them settles it (a motion withdrawn after a remark, defeated after an amendment was agreed),
  else the last outcome for (the amended motion carried after its amendment).
- **Anything else** ("Is Moscow the capital?"): the sentence must hold nearly all of the question's
  weighted words; then a negation or a denial says no, a change the other way than the one asked ("fell"
  for "more") says no, and otherwise yes.

Pure rules over :mod:`rag.text`'s words; no model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from enum import Enum

from rag.answer.question import META_VERBS, denies
from rag.text import fold_name, names, stem, terms, word_set

SETTLED_COVERAGE = 0.75  # share of the question's weighted words a sentence must hold to settle it


class Settled(Enum):
    YES = "Yes"
    NO = "No"
    UNSETTLED = "unsettled"  # an outcome question whose sentences record no outcome


# Verbs whose question asks for an outcome: a decision taken, a document signed, work finished.
_OUTCOME_VERBS = frozenset(
    stem(w)
    for w in word_set(
        """approve adopt pass ban sign agree accept back endorse ratify grant award fund carry vote elect
        appoint hire finish complete open launch deliver reach release decide settle resolve win build
        install commission close sell buy purchase implement introduce allocate give confirm authorise
        authorize sanction extend renew cancel abolish reject refuse withdraw defer postpone"""
    )
)
# Verbs that record an outcome when a clause reports them done: "was approved", "the board adopted".
_DONE = (
    r"approved|adopted|carried|passed|signed|agreed|accepted|endorsed|ratified|granted|awarded|funded|"
    r"completed|finished|opened|launched|delivered|commissioned|installed|elected|appointed|confirmed|"
    r"authori[sz]ed|sanctioned|implemented|introduced|allocated|given|reached|released|won|built|"
    r"decided|resolved|settled|banned|extended|renewed|cancelled|canceled|abolished"
)
# Who takes a decision or does the work, when an active clause records it: "the council approved".
_AGENTS = (
    r"council|board|committee|meeting|members|participants|forum|assembly|parliament|government|ministry|"
    r"delegates|delegations|partners|parties|sides|shareholders|trustees|senate|cabinet|they|we|it|he|she|"
    r"who|which|motion|amendment|proposal|resolution|work|project|phase|contractor|company"
)
# A name as the agent ("Romania signed"), never a determiner ("The approved budget").
_NAMED_AGENT = (
    r"(?!(?:The|A|An|This|That|These|Those|Its|Their|Our|His|Her|Each|Every|All|No|Any)\b)[A-Z][\w'-]+"
)


def _done_clause(agents: str, flags: re.RegexFlag) -> re.Pattern[str]:
    """A clause reporting it done: passive or perfect with its auxiliary ("was completed", "has been
    approved"), active after one of ``agents`` ("the board adopted"), or minutes' bare "Carried." /
    "Agreed.". A participle alone ("an event funded by the council") records nothing."""
    return re.compile(
        rf"\b(?:was|were|has been|have been|had been|is now|are now|got)\s+(?:\w+ly\s+)?(?:{_DONE})\b"
        rf"|\b(?:{agents})\s+(?:\w+ly\s+)?(?:{_DONE})\b(?!\s+by\b)"
        rf"|^\W*(?:carried|agreed|approved|adopted)\b",
        flags,
    )


_DONE_CLAUSES = (
    _done_clause(_AGENTS, re.IGNORECASE),  # "The Council approved", "was Completed"
    _done_clause(_NAMED_AGENT, re.NOFLAG),  # a capital is what makes a name, so this one keeps case
)
# A done-verb after one of these is a proposal or a plan, not an outcome: "moved that X be approved",
# "expected to be completed", "will be signed".
_PROPOSED = re.compile(
    rf"\b(?:be|to|would|will|shall|should|could|may|might|must|if|whether|seeking|seek|sought|asked|"
    rf"ask|asks|proposed|propose|proposes|proposal|moved|move|moves|recommend\w*|hope\w*|plan\w*|expect\w*|"
    rf"intend\w*|aim\w*|want\w*|wish\w*|request\w*|notice|unless|until|before|once)"
    rf"(?:\s+(?:\w+ly|be|been|have|has|had|also|then|formally|now|finally|fully|not)){{0,2}}\s+(?:{_DONE})\b",
    re.IGNORECASE,
)
# A sentence that moves or proposes something: only an explicit outcome of it counts there.
_MOTION = re.compile(
    r"\b(?:moved that|moved to|proposed that|proposed an?|gave notice|notice of motion|asked (?:the \w+ )?to|"
    r"sought|requested|recommended that|called for|suggested)\b",
    re.IGNORECASE,
)
_MOTION_OUTCOME = re.compile(
    r"\b(?:motion|amendment|proposal|resolution|recommendation|it)\b[^.;]*?\b(?:was|were)\s+(?:\w+ly\s+)?"
    r"(?:carried|approved|adopted|passed|agreed)\b",
    re.IGNORECASE,
)
_RECORDED_NO = re.compile(
    r"\b(?:defeated|rejected|withdr[ae]w\w*|deferred|postponed|delayed|slipped|tabled|shelved|vetoed|"
    r"overturned|voted (?:down|against)|fell short|behind schedule|under construction|no decision|"
    r"not put to (?:a|the) vote|no vote was taken|(?:was|were) lost|(?:failed|declined|refused) to|"
    r"(?:not|never)(?: yet)?(?: been)? (?:" + _DONE + r")|"
    r"(?:has|have|had|did|was|were|is|are)(?: not|n't)(?: yet)?(?: been)? (?:" + _DONE + r")|"
    r"(?:awaiting|awaits|pending|still needs?) (?:its |their |the |a )?(?:approval|decision|signature|vote|"
    r"ratification|funding|agreement))\b",
    re.IGNORECASE,
)
# A change asked about and a change recorded: "Did visits go up?" against "visits fell".
_UP = re.compile(
    r"\b(?:more|increas\w*|ris(?:e|es|en|ing)|rose|grow\w*|grew|higher|up|gain\w*|improv\w*|above|exceed\w*|"
    r"surplus|raise\w*|expan\w*|over)\b",
    re.IGNORECASE,
)
_DOWN = re.compile(
    r"\b(?:less|fewer|decreas\w*|fell|fall\w*|drop\w*|declin\w*|lower|down|los(?:s|t|ing)|reduc\w*|below|"
    r"deficit|shrank|shrink\w*|cut|under)\b",
    re.IGNORECASE,
)


def asks_outcome(question: str) -> bool:
    """The question asks whether something was decided, signed, finished...: an outcome."""
    return any(t in _OUTCOME_VERBS for t in terms(question))


def asks_discussed(question_terms: dict[str, float]) -> bool:
    return any(t in META_VERBS for t in question_terms)


def recorded_outcome(sentence: str) -> Settled | None:
    """What ``sentence`` records: an outcome for (YES), one against (NO), or nothing (None)."""
    if _RECORDED_NO.search(sentence):
        return Settled.NO
    if _MOTION.search(sentence):
        return Settled.YES if _MOTION_OUTCOME.search(sentence) else None
    proposed = {m.end() for m in _PROPOSED.finditer(sentence)}
    for pattern in _DONE_CLAUSES:
        for match in pattern.finditer(sentence):
            if match.end() not in proposed:
                return Settled.YES
    return None


def _coverage(question_terms: dict[str, float], sentence_terms: frozenset[str]) -> float:
    content = {t: w for t, w in question_terms.items() if t not in META_VERBS}
    total = sum(content.values())
    if not content or total <= 0:
        return 0.0
    return sum(w for t, w in content.items() if t in sentence_terms) / total


def settle(
    question: str,
    question_terms: dict[str, float],
    sentences: Sequence[str],
    subject: frozenset[str] = frozenset(),
) -> tuple[Settled | None, int]:
    """Whether ``sentences`` settle the yes/no ``question``, and which of them does: the quoted sentence
    first, then those after it in the same paragraph. ``question_terms`` maps the question's content terms
    to their weights (idf).

    None means: no lead word (the sentence is quoted as it is); :attr:`Settled.UNSETTLED` means an
    outcome question whose sentences record no outcome. A name the question asks about ("Did *Romania*
    sign?") that the sentences up to the deciding one never mention leaves it unled: they settle it for
    someone else. ``subject``: names of the documents' titles, which a question may name without the
    sentence repeating them.
    """
    found, at = _settle(question, question_terms, sentences)
    if found in (Settled.YES, Settled.NO):
        said = {fold_name(w) for w in _WORDS.findall(" ".join(sentences[: at + 1]))}
        if any(name not in said for name in set(names(question)) - subject):
            return None, 0
    return found, at


_WORDS = re.compile(r"[\w'’-]+")


def _settle(
    question: str, question_terms: dict[str, float], sentences: Sequence[str]
) -> tuple[Settled | None, int]:
    if not sentences:
        return None, 0
    first = sentences[0]
    held = frozenset(terms(first))
    if asks_discussed(question_terms):
        # "Was X discussed?": a sentence about X says yes, even one that says "not".
        return (Settled.YES if _coverage(question_terms, held) >= SETTLED_COVERAGE else None), 0
    if denies(question):
        return None, 0  # "Wasn't it approved?": English answers a negative question ambiguously
    if asks_outcome(question):
        # Minutes record an amendment agreed before the motion is carried or withdrawn, and a clerk's
        # remark between: an outcome against settles it wherever it comes; else the last one for.
        found = [recorded_outcome(sentence) for sentence in sentences]
        if Settled.NO in found:
            return Settled.NO, found.index(Settled.NO)
        if Settled.YES in found:
            return Settled.YES, len(found) - 1 - found[::-1].index(Settled.YES)
        return Settled.UNSETTLED, 0
    if _coverage(question_terms, held) < SETTLED_COVERAGE:
        return None, 0
    asked_up, asked_down = bool(_UP.search(question)), bool(_DOWN.search(question))
    if asked_up != asked_down:  # the question asks about a change one way
        said_up, said_down = bool(_UP.search(first)), bool(_DOWN.search(first))
        if said_up == said_down:
            return None, 0  # no change recorded, or both ways: not settled by a rule
        return (Settled.YES if said_up == asked_up else Settled.NO), 0
    return (Settled.NO if denies(first) else Settled.YES), 0
