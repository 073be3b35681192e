"""Readers' feedback on answers (👍/👎 and a comment), kept as JSON lines in the index folder.

``index_dir/feedback.jsonl`` holds one JSON object per line. It lives beside the builds, not in one, so a
rebuild never touches it. Several server processes (``forumqa serve --workers 2``) append to it at once:
each record is written by one ``write()`` of the whole line, to a file opened with ``O_APPEND``, under an
exclusive ``flock`` held by the writer, so lines never interleave; the line is fsynced before the writer
answers. A line cut short by a crash (the last one, without its newline) is skipped when read, and the next
append starts on a fresh line.

A reader may change their mind: the page stores a rating as soon as 👍 or 👎 is pressed, then again when
the other one is pressed or a comment is added. Each change is one more line for the same ``answer_id``;
the file is never rewritten, and the newest line of an answer supersedes the older ones
(:func:`latest`, what ``forumqa feedback export`` writes).

Nothing here serves feedback back over HTTP: ``forumqa feedback export`` reads it on the server's machine.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from rag.text import letters
from rag.types import Turn, Verdict

log = logging.getLogger(__name__)

FILE = "feedback.jsonl"
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
        }

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
        )


def feedback_file(index_dir: Path) -> Path:
    return index_dir / FILE


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def append(index_dir: Path, feedback: Feedback, max_bytes: int) -> None:
    """Append ``feedback`` as one line; :class:`FeedbackFull` when the file would pass ``max_bytes``."""
    line = json.dumps(feedback.to_json(), ensure_ascii=False, separators=(",", ":")) + "\n"
    data = line.encode("utf-8")
    index_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(feedback_file(index_dir), os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
    try:
        # The lock, not O_APPEND alone, is what keeps lines whole: a write() to a regular file may be
        # partial, and the loop below must not let another process's line in between its pieces.
        fcntl.flock(fd, fcntl.LOCK_EX)
        size = os.fstat(fd).st_size
        if size and os.pread(fd, 1, size - 1) != b"\n":
            data = b"\n" + data  # the last writer died mid-line: keep this record on a line of its own
        if size + len(data) > max_bytes:
            raise FeedbackFull(f"the feedback file is full ({size} bytes of {max_bytes})")
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]
        os.fsync(fd)
    finally:
        os.close(fd)  # releases the lock


def read(index_dir: Path) -> Iterator[Feedback]:
    """Every stored feedback, oldest first; unreadable lines (a crash mid-write) are skipped and logged."""
    path = feedback_file(index_dir)
    if not path.exists():
        return
    with path.open(encoding="utf-8", errors="replace") as fh:
        for n, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield Feedback.from_json(json.loads(line))
            except (ValueError, KeyError, TypeError) as exc:
                log.warning("%s:%d: skipped, not a feedback record (%s)", path, n, exc)


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
        }
