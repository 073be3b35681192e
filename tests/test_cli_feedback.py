"""The feedback file (rag/feedback/jsonl.py) and ``forumqa feedback export``, run as the venv's console
script: records come out in the eval set's shape, ``forumqa eval``'s loader reads them, and a line a crash
cut short neither breaks the export nor swallows the next record."""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import replace
from pathlib import Path

from core_support import FORUMQA

from rag.evaluation import load_questions
from rag.feedback import jsonl as feedback
from rag.feedback import records as feedback_records
from rag.feedback.records import Feedback
from rag.types import Turn

RECORDS = [
    Feedback(
        question="When did the Third Korea-Russia Forum take place?", answer_id="0123456789abcdef",
        answer="On September 27-28. [1]", verdict="answered", rating="up", time="2026-12-05T10:00:00+00:00",
        build_id="b1",
    ),
    Feedback(
        question="그는 누구입니까?", answer_id="fedcba9876543210", answer="The report does not say.",
        verdict="not_covered", rating="down", comment="It is in section 2 — «Security».",
        history=(Turn("user", "Who led the Russian delegation?"), Turn("assistant", "Igor Ivanov. [1]")),
        time="2026-12-05T10:01:00+00:00", build_id="b1",
    ),
]


def forumqa(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([str(FORUMQA), *args], capture_output=True, text=True, timeout=120, check=False,
                          env=env)


def test_a_line_cut_by_a_crash_is_skipped_and_the_next_record_kept(tmp_path: Path) -> None:
    feedback.append(tmp_path, RECORDS[0], max_bytes=1 << 20)
    with feedback.feedback_file(tmp_path).open("a", encoding="utf-8") as fh:
        fh.write('{"question": "cut sho')  # a writer killed mid-line, without its newline
    feedback.append(tmp_path, RECORDS[1], max_bytes=1 << 20)
    assert list(feedback.read(tmp_path)) == RECORDS
    assert len(feedback.feedback_file(tmp_path).read_text(encoding="utf-8").splitlines()) == 3


def test_export_writes_eval_set_records(tmp_path: Path) -> None:
    index = tmp_path / "index"
    for record in RECORDS:
        feedback.append(index, record, max_bytes=1 << 20)
    out = tmp_path / "feedback-eval.jsonl"
    result = forumqa("feedback", "export", "--index-dir", str(index), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    assert f"exported 2 feedback records (1 👎) to {out}" in result.stderr
    lines = out.read_text(encoding="utf-8").splitlines()
    exported = [json.loads(line) for line in lines]
    assert exported[1] == {
        "id": "feedback-2", "question": "그는 누구입니까?", "lang": "ko",
        "history": [{"role": "user", "content": "Who led the Russian delegation?"},
                    {"role": "assistant", "content": "Igor Ivanov. [1]"}],
        "evidence": [], "answer": "The report does not say.", "answer_id": "fedcba9876543210",
        "verdict": "not_covered", "rating": "down", "comment": "It is in section 2 — «Security».",
        "time": "2026-12-05T10:01:00+00:00", "build_id": "b1",
    }
    assert exported[0]["lang"] == "en" and exported[0]["rating"] == "up"
    # `forumqa eval` reads the file as a question set, history included.
    items = load_questions(out)
    assert [i.question for i in items] == [r.question for r in RECORDS]
    assert items[1].history == list(RECORDS[1].history) and items[1].lang == "ko"

    # Without --out, the same lines go to stdout.
    printed = forumqa("feedback", "export", "--index-dir", str(index))
    assert printed.returncode == 0 and printed.stdout.splitlines() == lines


def test_export_with_no_feedback_writes_an_empty_file(tmp_path: Path) -> None:
    out = tmp_path / "empty.jsonl"
    result = forumqa("feedback", "export", "--index-dir", str(tmp_path), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert out.read_text() == "" and "exported 0 feedback records" in result.stderr


def test_feedback_export_explains_itself() -> None:
    result = forumqa("feedback", "export", "--help")
    assert result.returncode == 0, result.stderr
    text = " ".join(result.stdout.split())
    for word in ("--out", "--index-dir", "eval set", "rating", "build id", "feedback.jsonl"):
        assert word in text, word
    assert "feedback" in forumqa("--help").stdout


def test_export_keeps_the_newest_record_of_each_answer(tmp_path: Path) -> None:
    """A rating changed, then a comment added: later lines of the same answer_id supersede earlier ones;
    the export has one record per answer, in the order of those newest records."""
    index = tmp_path / "index"
    first, second = RECORDS
    changed = replace(first, rating="down", time="2026-12-05T10:02:00+00:00")
    commented = replace(changed, comment="Only the first day.", time="2026-12-05T10:03:00+00:00")
    for record in (first, second, changed, commented):
        feedback.append(index, record, max_bytes=1 << 20)
    assert feedback_records.latest(feedback.read(index)) == [second, commented]
    out = tmp_path / "latest.jsonl"
    result = forumqa("feedback", "export", "--index-dir", str(index), "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert "exported 2 feedback records (2 👎)" in result.stderr
    exported = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [(r["id"], r["answer_id"], r["rating"], r["comment"]) for r in exported] == [
        ("feedback-1", second.answer_id, "down", second.comment),
        ("feedback-2", first.answer_id, "down", "Only the first day."),
    ]
