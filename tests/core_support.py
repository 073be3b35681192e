"""Helpers shared by the core-library tests (test_loading ... test_evaluation).

Nothing here knows an answer: expectations are read from the raw report and from the dev set's
evidence phrases.
"""

from __future__ import annotations

import json
import re
import shutil
import sys
from pathlib import Path
from typing import Any

from rag.config import Settings

# The same locations as tests/conftest.py.
ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
DEV_SET = ROOT / "eval" / "dev.jsonl"  # a copy of ../shared/eval/dev.jsonl, so a clone runs alone
REPORT_TXT = CORPUS / "third-korea-russia-forum.txt"
REPORT_META = CORPUS / "third-korea-russia-forum.meta.json"

# The venv's console script, next to the interpreter running the tests.
FORUMQA = Path(sys.executable).with_name("forumqa")

_SENTENCE_END = re.compile(r"[.!?][\"'”’)]*(?=\s|$)")


def raw_report_lines() -> list[str]:
    """The raw report file split into lines (line 0 is the web navigation junk)."""
    return REPORT_TXT.read_text(encoding="utf-8").split("\n")


def report_meta() -> dict[str, Any]:
    meta: dict[str, Any] = json.loads(REPORT_META.read_text(encoding="utf-8"))
    return meta


def raw_headings() -> list[str]:
    """Section headings of the raw report: lines of their own, after a blank line, followed directly
    by a paragraph. The title is not one of them: a blank line follows it.
    """
    lines = raw_report_lines()[1:]
    return [
        line.strip()
        for i, line in enumerate(lines)
        if 0 < i < len(lines) - 1 and line.strip() and not lines[i - 1].strip() and lines[i + 1].strip()
    ]


def dev_records() -> list[dict[str, Any]]:
    """The dev set as raw JSON records (parsed here, independently of rag.evaluation)."""
    return [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]


def fold(text: str) -> str:
    """Case-insensitive, white-space-folded form, as the dev set's README prescribes for evidence."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def has_evidence(text: str, evidence: list[str]) -> bool:
    return any(fold(e) in fold(text) for e in evidence)


def sentence_around(text: str, needle: str) -> tuple[int, int]:
    """Offsets of the sentence of ``text`` holding the first occurrence of ``needle``.

    The report's sentences end in ". " or at the end of a line, so the sentence runs from after the
    previous ". " (or the line start) to the next full stop followed by white space or the end.
    """
    at = text.index(needle)
    start = max(text.rfind(". ", 0, at) + 2, text.rfind("\n", 0, at) + 1)
    match = _SENTENCE_END.search(text, at)
    assert match is not None, f"no sentence end after {needle!r}"
    return start, match.end()


def copy_workspace(source: Settings, dest: Path) -> Settings:
    """A private, writable copy of ``source``'s corpus and built index under ``dest``.

    The copy's index is up to date for the copied corpus (the corpus hash covers names and bytes
    only), and its embedding cache lets later builds embed only new text.
    """
    corpus = dest / "corpus"
    shutil.copytree(source.corpus_dir, corpus)
    for path in corpus.iterdir():
        path.chmod(0o644)
    shutil.copytree(
        source.index_dir, dest / "index", ignore=shutil.ignore_patterns(".lock", ".tmp-*", "*.pid")
    )
    return source.model_copy(update={"corpus_dir": corpus, "index_dir": dest / "index"})
