"""Feedback as JSON lines in the index folder: the file store's keeping of it.

``index_dir/feedback.jsonl`` holds one JSON object per line. It lives beside the builds, not in one, so a
rebuild never touches it. Several server processes (``forumqa serve --workers 2``) append to it at once:
each record is written by one ``write()`` of the whole line, to a file opened with ``O_APPEND``, under an
exclusive ``flock`` held by the writer, so lines never interleave; the line is fsynced before the writer
answers. A line cut short by a crash (the last one, without its newline) is skipped when read, and the next
append starts on a fresh line.
"""

from __future__ import annotations

import fcntl
import json
import logging
import os
from collections.abc import Iterator
from pathlib import Path

from rag.feedback.records import Feedback, FeedbackFull

log = logging.getLogger(__name__)

FILE = "feedback.jsonl"


def feedback_file(index_dir: Path) -> Path:
    return index_dir / FILE


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


