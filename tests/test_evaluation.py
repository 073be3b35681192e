"""Evaluation: question-set parsing, the metric arithmetic, the report table, and the dev-set measurement."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from core_support import DEV_SET, dev_records

from rag.evaluation import (
    COLUMNS,
    EvalItem,
    EvalResult,
    contains_evidence,
    evaluate,
    load_questions,
    metrics,
    report,
)
from rag.qa import ForumQA
from rag.types import Answer, Turn


def test_load_questions_reads_the_dev_set() -> None:
    items = load_questions(DEV_SET)
    records = dev_records()
    assert [i.id for i in items] == [r["id"] for r in records]
    for item, record in zip(items, records, strict=True):
        assert item.question == record["question"]
        assert item.evidence == record["evidence"]
        assert item.answerable == record["answerable"]
        assert item.lang == record["lang"]
        assert item.history == [Turn(t["role"], t["content"]) for t in record.get("history", [])]
    assert any(item.history for item in items)
    assert all(item.evidence for item in items if item.answerable)


def test_load_questions_fills_defaults_and_skips_blank_lines(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('\n{"question": "Who?"}\n\n', encoding="utf-8")
    (item,) = load_questions(path)
    assert item == EvalItem(id="2", question="Who?", evidence=[], answerable=True, lang="en", history=[])


@pytest.mark.parametrize(
    "bad", ['{"id": "x"}', "{not json", '{"question": "Q", "history": [{"role": "user"}]}']
)
def test_load_questions_names_the_bad_line(tmp_path: Path, bad: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"question": "Fine?"}\n' + bad + "\n", encoding="utf-8")
    with pytest.raises(ValueError, match=f"{path}:2"):
        load_questions(path)


def test_contains_evidence_folds_case_and_white_space() -> None:
    text = "The Korea Foundation cosponsored the Third Korea-Russia Forum\non   September 27-28 with ..."
    assert contains_evidence(text, ["ON SEPTEMBER 27-28"])
    assert contains_evidence(text, ["nothing like it", "forum on september"])
    assert not contains_evidence(text, ["September 28-29"])
    assert not contains_evidence(text, [])


def _result(
    item_id: str,
    answerable: bool,
    rank: int | None,
    flagged: bool,
    has_evidence: bool,
    ms: float,
    lang: str = "en",
) -> EvalResult:
    item = EvalItem(item_id, f"question {item_id}?", ["evidence"] if answerable else [], answerable, lang)
    answer = Answer(item.question, "text", not flagged, 0.5, [], ms)
    return EvalResult(item, answer, rank, has_evidence)


RESULTS = [
    _result("a", answerable=True, rank=1, flagged=False, has_evidence=True, ms=10),
    _result("b", answerable=True, rank=3, flagged=False, has_evidence=False, ms=20),
    _result("c", answerable=True, rank=None, flagged=True, has_evidence=False, ms=30),
    _result("d", answerable=False, rank=None, flagged=True, has_evidence=False, ms=40, lang="ko"),
    _result("e", answerable=False, rank=None, flagged=False, has_evidence=False, ms=50, lang="ko"),
]


def test_metrics_arithmetic() -> None:
    m = metrics(RESULTS)
    assert m["n"] == 5
    assert m["hit@1"] == pytest.approx(1 / 3)
    assert m["hit@3"] == pytest.approx(2 / 3)
    assert m["mrr"] == pytest.approx((1 + 1 / 3 + 0) / 3)
    assert m["answer_acc"] == pytest.approx(1 / 3)
    assert m["kept"] == pytest.approx(2 / 3)
    assert m["noans_p"] == pytest.approx(1 / 2)  # flagged: c (wrongly) and d
    assert m["noans_r"] == pytest.approx(1 / 2)  # unanswerable: d flagged, e not
    assert m["p50_ms"] == pytest.approx(30)
    assert m["p95_ms"] == pytest.approx(48)


def test_metrics_leave_out_what_cannot_be_measured() -> None:
    m = metrics(RESULTS[:2])
    assert "noans_p" not in m and "noans_r" not in m
    m = metrics(RESULTS[3:])
    assert "hit@1" not in m and "answer_acc" not in m


def test_report_table_has_a_row_per_language_and_overall() -> None:
    lines = report(RESULTS).splitlines()
    assert lines[0].split() == ["lang", *COLUMNS]
    rows = {line.split()[0]: line.split()[1:] for line in lines[1:]}
    assert list(rows) == ["en", "ko", "all"]
    assert rows["en"][COLUMNS.index("n")] == "3"
    assert rows["ko"][COLUMNS.index("hit@1")] == "-"  # no answerable Korean item
    assert rows["all"][COLUMNS.index("hit@3")] == "0.667"
    assert rows["all"][COLUMNS.index("noans_r")] == "0.500"


def test_evaluate_ranks_the_first_citation_with_evidence(qa: ForumQA) -> None:
    items = [i for i in load_questions(DEV_SET) if i.id in ("d07", "d15", "u11")]
    results = evaluate(qa, items, top_k=3)
    assert [r.item.id for r in results] == [i.id for i in items]
    for r in results:
        assert len(r.answer.citations) <= 3
        expected = next((c.n for c in r.answer.citations if contains_evidence(c.text, r.item.evidence)), None)
        assert r.rank == expected
        assert r.answer_has_evidence == contains_evidence(r.answer.answer, r.item.evidence)
    assert next(r for r in results if r.item.id == "u11").rank is None


def test_dev_set_measurement(qa: ForumQA, artifacts: Path) -> None:
    """The quality bar on the dev set: every English answerable question finds its evidence in the top 3,
    at least 90% of English answers quote it, and every unanswerable English question is declined."""
    fresh = ForumQA(qa.settings, qa.index)  # an empty answer cache, so the latencies are real
    results = evaluate(fresh, load_questions(DEV_SET))
    (artifacts / "core-dev-metrics.txt").write_text(report(results) + "\n", encoding="utf-8")
    english = metrics([r for r in results if r.item.lang == "en"])
    (artifacts / "core-dev-metrics.json").write_text(json.dumps(english, indent=2), encoding="utf-8")
    assert english["hit@3"] == 1.0
    assert english["answer_acc"] >= 0.9
    assert english["noans_r"] == 1.0
    assert english["kept"] >= 0.9
    overall = metrics(results)
    assert overall["hit@3"] == 1.0
