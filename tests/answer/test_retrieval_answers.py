"""Retrieval and answers over the real report with the real models (session ``qa`` fixture).

Expectations come from the dev set: a passage is right when it contains one of the item's evidence
phrases, copied verbatim from the report.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from core_support import dev_records, has_evidence

from rag.answer.retrieval import script_of
from rag.qa import NOT_COVERED, UNCERTAIN, ForumQA
from rag.types import Answer, Turn

DEV = dev_records()
STANDALONE = [r for r in DEV if not r.get("history")]
EN_ANSWERABLE = [r for r in STANDALONE if r["lang"] == "en" and r["answerable"]]
OTHER_ANSWERABLE = [r for r in STANDALONE if r["lang"] != "en" and r["answerable"]]
UNANSWERABLE = [r for r in DEV if not r["answerable"]]
MARKER = re.compile(r"\s*\[(\d+)\]")


def ask(qa: ForumQA, record: dict[str, Any], top_k: int = 5) -> Answer:
    history = [Turn(t["role"], t["content"]) for t in record.get("history", [])]
    return qa.answer(record["question"], history, top_k=top_k)


def check_shape(qa: ForumQA, answer: Answer, top_k: int = 5) -> None:
    """The answer object's contract: ordered citations whose offsets index the documents, a highlighted
    sentence inside each passage, and an answer made of cited sentences marked [n]."""
    assert 1 <= len(answer.citations) <= top_k
    assert [c.n for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    assert 0.0 <= answer.confidence <= 1.0
    assert answer.took_ms >= 0
    starts = {(s.doc_id, s.start) for s in qa.index.sentences}
    ends = {(s.doc_id, s.end) for s in qa.index.sentences}
    highlights = set()
    for c in answer.citations:
        doc = qa.document(c.doc_id)
        assert doc is not None
        assert c.title == doc.title
        assert doc.text[c.start : c.end] == c.text
        assert c.section == doc.section_at(c.start).title
        assert c.start <= c.highlight_start < c.highlight_end <= c.end
        # The highlight is whole sentences: one, or one and the sentence it leans on ("They also...").
        assert (c.doc_id, c.highlight_start) in starts and (c.doc_id, c.highlight_end) in ends
        assert re.search(r"[.!?][\"”’)]*$", doc.text[c.highlight_start : c.highlight_end])
        highlights.add((c.doc_id, c.highlight_start))
    assert len(highlights) == len(answer.citations), "each citation highlights a different sentence"
    payload = json.loads(json.dumps(answer.to_dict()))
    assert set(payload) == {
        "question", "answer", "answerable", "confidence", "citations", "took_ms", "cached", "verdict", "kind",
        "mode", "model", "grounded", "dropped", "notice", "usage", "generated_ms",
    }
    assert payload["verdict"] in ("answered", "uncertain", "not_covered")
    assert payload["answerable"] == (payload["verdict"] != "not_covered")
    assert payload["mode"] == "extractive" and payload["model"] is None and payload["dropped"] == []
    if not answer.answerable:
        return
    assert "[1]" in answer.answer
    # The answer is sentences of the report, verbatim, each run followed by the marker of the citation
    # that highlights exactly that run.
    # Only the verdict's words may come first: "Yes."/"No." before a settled yes/no question, the
    # uncertain label before sentences that may not answer exactly.
    body = answer.answer
    for lead in (UNCERTAIN + " ", "Yes. ", "No. "):
        body = body.removeprefix(lead)
    pieces = MARKER.split(body)
    texts, numbers = pieces[0::2], pieces[1::2]
    assert numbers and texts[-1].strip() == ""
    for text, number in zip(texts, numbers, strict=False):
        assert 1 <= int(number) <= len(answer.citations)
        c = answer.citations[int(number) - 1]
        run = [
            s.text
            for s in qa.index.sentences
            if s.doc_id == c.doc_id and c.highlight_start <= s.start < c.highlight_end
        ]
        assert text.strip() == " ".join(run)


@pytest.mark.parametrize("record", EN_ANSWERABLE, ids=[r["id"] for r in EN_ANSWERABLE])
def test_english_evidence_in_top_three(qa: ForumQA, record: dict[str, Any]) -> None:
    answer = ask(qa, record)
    check_shape(qa, answer)
    ranks = [c.n for c in answer.citations if has_evidence(c.text, record["evidence"])]
    assert ranks and ranks[0] <= 3, [c.text[:80] for c in answer.citations]


@pytest.mark.parametrize("record", OTHER_ANSWERABLE, ids=[r["id"] for r in OTHER_ANSWERABLE])
def test_korean_and_russian_evidence_in_top_three(qa: ForumQA, record: dict[str, Any]) -> None:
    assert script_of(record["question"]) != "latin"
    answer = ask(qa, record)
    check_shape(qa, answer)
    ranks = [c.n for c in answer.citations if has_evidence(c.text, record["evidence"])]
    assert ranks and ranks[0] <= 3


@pytest.mark.parametrize("record", UNANSWERABLE, ids=[r["id"] for r in UNANSWERABLE])
def test_unanswerable_questions_are_flagged_but_list_passages(qa: ForumQA, record: dict[str, Any]) -> None:
    answer = ask(qa, record)
    assert answer.answerable is False and answer.verdict == "not_covered"
    assert answer.answer == NOT_COVERED
    assert answer.answer.startswith("The report does not say")
    assert answer.citations, "the nearest passages are still listed"
    check_shape(qa, answer)


@pytest.mark.parametrize("top_k", [1, 3, 5, 8])
def test_top_k_citations_are_returned(qa: ForumQA, top_k: int) -> None:
    """``top_k`` is how many citations to return (``forumqa ask --top-k``, "citations to return"); the
    report has far more than 8 distinct passages and sentences, so asking for k gives k."""
    assert len(qa.index.chunks) > 8 and len(qa.index.sentences) > 8
    record = EN_ANSWERABLE[0]
    answer = ask(qa, record, top_k=top_k)
    check_shape(qa, answer, top_k)
    assert len(answer.citations) == top_k
    assert has_evidence(answer.citations[0].text, record["evidence"])


def test_answers_are_deterministic(qa: ForumQA) -> None:
    record = EN_ANSWERABLE[-1]
    first, second = ask(qa, record, top_k=4), ask(qa, record, top_k=4)
    assert first.answer == second.answer
    assert [c.to_dict() for c in first.citations] == [c.to_dict() for c in second.citations]


def test_search_lists_passages_without_composing(qa: ForumQA) -> None:
    record = next(r for r in EN_ANSWERABLE if r["id"] == "d07")
    passages = qa.search(record["question"], top_k=3)
    assert [c.n for c in passages] == [1, 2, 3]
    assert any(has_evidence(c.text, record["evidence"]) for c in passages)


def test_question_about_a_number_not_in_the_report_is_not_answered(qa: ForumQA) -> None:
    """The report gives no figures for 2005; a question built from report words plus that year must not be
    answered with a sentence about another date."""
    assert "2005" not in qa.index.documents["third-korea-russia-forum"].text
    answer = qa.answer("How many Korean delegates attended the forum in 2005?")
    assert answer.answerable is False
    assert answer.citations
