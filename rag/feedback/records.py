"""Readers' feedback on answers (👍/👎 and a comment): the record, and the eval-set records it becomes.

The store keeps them (:meth:`rag.store.Store.add_feedback`): the file store as JSON lines in the index
folder (:mod:`rag.feedback.jsonl`), the database store in a table. Nothing serves feedback back over
HTTP: ``forumqa feedback export`` reads it where it is kept.

A reader may change their mind: the page stores a rating as soon as 👍 or 👎 is pressed, then again when
the other one is pressed or a comment is added. Each change is one more record for the same ``answer_id``;
none is ever rewritten, and the newest record of an answer supersedes the older ones (:func:`latest`, what
``forumqa feedback export`` writes).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from rag.text import letters
from rag.types import Turn, Verdict

Rating = Literal["up", "down"]


class FeedbackFull(Exception):
    """The feedback file reached ``FORUMQA_FEEDBACK_MAX_FILE_BYTES``; nothing more is stored."""


@dataclass(frozen=True, slots=True)
class Feedback:
    """One reader's judgement of one answer."""

    question: str
    answer_id: str  # the answer object's ``answer_id``
    answer: str  # the answer text the reader judged
    verdict: Verdict  # the answer's own verdict (answered, uncertain, not_covered)
    rating: Rating
    comment: str = ""
    history: tuple[Turn, ...] = ()  # the earlier turns, so a follow-up question can be asked again
    time: str = ""  # ISO 8601, UTC, set when stored
    build_id: str | None = None  # the index build serving when the feedback arrived
    user: str | None = None  # who rated (rag/accounts); None: no accounts, or anonymous
    # The collections the rater could read then: all the question and answer can hold. None: every one.
    collections: tuple[str, ...] | None = None

    @staticmethod
    def now() -> str:
        """The time a record is stored at: ISO 8601, UTC, to the second."""
        return now()

    def to_json(self) -> dict[str, Any]:
        return {
            "time": self.time,
            "build_id": self.build_id,
            "answer_id": self.answer_id,
            "rating": self.rating,
            "verdict": self.verdict,
            "question": self.question,
            "history": [{"role": t.role, "content": t.content} for t in self.history],
            "answer": self.answer,
            "comment": self.comment,
            **({"user": self.user} if self.user is not None else {}),
            **({"collections": list(self.collections)} if self.collections is not None else {}),
        }

    def visible_to(self, readable: frozenset[str] | None) -> bool:
        """Whether someone who may read ``readable`` (None: every collection) may see this record: only
        when they may read all its rater could."""
        if readable is None:
            return True
        return self.collections is not None and set(self.collections) <= readable

    @classmethod
    def from_json(cls, raw: dict[str, Any]) -> Feedback:
        return cls(
            question=str(raw["question"]),
            answer_id=str(raw["answer_id"]),
            answer=str(raw["answer"]),
            verdict=raw["verdict"],
            rating=raw["rating"],
            comment=str(raw.get("comment", "")),
            history=tuple(Turn(t["role"], t["content"]) for t in raw.get("history", [])),
            time=str(raw.get("time", "")),
            build_id=raw.get("build_id"),
            user=raw.get("user"),
            collections=tuple(raw["collections"]) if isinstance(raw.get("collections"), list) else None,
        )


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def latest(records: Iterable[Feedback]) -> list[Feedback]:
    """The newest record of each ``answer_id`` (a later line supersedes an earlier one: a changed rating,
    a comment added), in the order those newest records were stored."""
    newest: dict[str, tuple[int, Feedback]] = {}
    for n, fb in enumerate(records):
        newest[fb.answer_id] = (n, fb)
    return [fb for _, fb in sorted(newest.values(), key=lambda pair: pair[0])]


def language(text: str) -> str:
    """The eval set's ``lang`` of a question, by the script most of its letters are in: en (Latin), ko
    (Hangul), ru (Cyrillic); "other" when none of them."""
    latin, _ = letters(text)
    hangul = sum(1 for ch in text if "\uac00" <= ch <= "\ud7a3" or "\u3131" <= ch <= "\u318e")
    cyrillic = sum(1 for ch in text if "\u0400" <= ch <= "\u04ff")
    counts = {"en": latin, "ko": hangul, "ru": cyrillic}
    best = max(counts, key=lambda k: counts[k])
    return best if counts[best] else "other"


def eval_records(records: Iterable[Feedback]) -> Iterator[dict[str, Any]]:
    """The feedback as records of the eval set's shape (``forumqa eval`` loads them; see eval/README):
    ``id``, ``question``, ``lang``, ``history``; ``evidence`` is left empty for a person to fill in, with
    the reader's judgement and the answer judged beside it. One record per answer: its newest
    (:func:`latest`)."""
    for n, fb in enumerate(latest(records), 1):
        yield {
            "id": f"feedback-{n}",
            "question": fb.question,
            "lang": language(fb.question),
            "history": [{"role": t.role, "content": t.content} for t in fb.history],
            "evidence": [],
            "answer": fb.answer,
            "answer_id": fb.answer_id,
            "verdict": fb.verdict,
            "rating": fb.rating,
            "comment": fb.comment,
            "time": fb.time,
            "build_id": fb.build_id,
            **({"user": fb.user} if fb.user is not None else {}),
        }
