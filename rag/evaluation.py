"""Evaluate: run a question set (JSONL) and measure retrieval, answers, abstention and latency."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.qa import ForumQA
from rag.types import Answer, Turn


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    evidence: list[str]
    answerable: bool
    lang: str = "en"
    history: list[Turn] = field(default_factory=list)


@dataclass(frozen=True)
class EvalResult:
    item: EvalItem
    answer: Answer
    rank: int | None  # 1-based rank of the first citation containing evidence
    answer_has_evidence: bool


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def contains_evidence(text: str, evidence: Iterable[str]) -> bool:
    folded = _fold(text)
    return any(_fold(e) in folded for e in evidence)


def load_questions(path: Path) -> list[EvalItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw: dict[str, Any] = json.loads(line)
            items.append(
                EvalItem(
                    id=str(raw.get("id", n)),
                    question=raw["question"],
                    evidence=list(raw.get("evidence", [])),
                    answerable=bool(raw.get("answerable", True)),
                    lang=str(raw.get("lang", "en")),
                    history=[Turn(t["role"], t["content"]) for t in raw.get("history", [])],
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a question record: {exc}") from exc
    if not items:
        raise ValueError(f"{path}: no questions in the file")
    return items


def evaluate(qa: ForumQA, items: list[EvalItem], top_k: int = 5) -> list[EvalResult]:
    results = []
    for item in items:
        answer = qa.answer(item.question, item.history, top_k=top_k)
        rank = (
            next((c.n for c in answer.citations if contains_evidence(c.text, item.evidence)), None)
            if item.evidence
            else None
        )
        results.append(EvalResult(item, answer, rank, contains_evidence(answer.answer, item.evidence)))
    return results


def metrics(results: list[EvalResult]) -> dict[str, float]:
    """hit@1, hit@3, MRR and answer accuracy over answerable items; no-answer precision and recall."""
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]
    flagged = [r for r in results if not r.answer.answerable]
    out: dict[str, float] = {"n": float(len(results))}
    if answerable:
        out["hit@1"] = float(np.mean([r.rank == 1 for r in answerable]))
        out["hit@3"] = float(np.mean([r.rank is not None and r.rank <= 3 for r in answerable]))
        out["mrr"] = float(np.mean([1.0 / r.rank if r.rank else 0.0 for r in answerable]))
        out["answer_acc"] = float(np.mean([r.answer_has_evidence for r in answerable]))
        out["kept"] = float(np.mean([r.answer.answerable for r in answerable]))
    if flagged:
        out["noans_p"] = float(np.mean([not r.item.answerable for r in flagged]))
    if unanswerable:
        out["noans_r"] = float(np.mean([not r.answer.answerable for r in unanswerable]))
    latencies = [r.answer.took_ms for r in results]
    if not latencies:
        return out
    out["p50_ms"] = float(np.percentile(latencies, 50))
    out["p95_ms"] = float(np.percentile(latencies, 95))
    return out


COLUMNS = ["n", "hit@1", "hit@3", "mrr", "answer_acc", "kept", "noans_p", "noans_r", "p50_ms", "p95_ms"]


def report(results: list[EvalResult]) -> str:
    """A table of :func:`metrics` per language and overall."""
    groups: dict[str, list[EvalResult]] = {}
    for r in results:
        groups.setdefault(r.item.lang, []).append(r)
    rows = [(lang, metrics(rs)) for lang, rs in sorted(groups.items())] + [("all", metrics(results))]
    lines = ["lang  " + " ".join(f"{c:>10}" for c in COLUMNS)]
    for lang, m in rows:
        cells = []
        for c in COLUMNS:
            value = m.get(c)
            cells.append(
                f"{'-':>10}" if value is None else f"{int(value):>10}" if c == "n" else f"{value:>10.3f}"
            )
        lines.append(f"{lang:<5} " + " ".join(cells))
    return "\n".join(lines)
