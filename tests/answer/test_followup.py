"""Follow-up questions: detecting a question that leans on the chat, and answering it from the history."""

from __future__ import annotations

from typing import Any

import pytest
from core_support import dev_records, has_evidence, sentence_around

from rag.answer.followup import MAX_HISTORY_CHARS, needs_context, standalone_question
from rag.qa import ForumQA
from rag.types import Turn

DUMA = "What did the Duma approve?"
FOLLOW_UP = "When will work on it start?"
STANDALONE = [r for r in dev_records() if not r.get("history")]
FOLLOW_UPS = [r for r in dev_records() if r.get("history")]


@pytest.mark.parametrize(
    "question",
    [
        FOLLOW_UP,
        "What did they say about them?",
        "Why did he say that?",
        "Tell me more",
        "And then?",
        pytest.param("그것은 언제 시작됩니까?", id="ko-it"),  # "When does it start?"
        pytest.param("Что они сказали об этом?", id="ru-this"),  # "What did they say about this?"
        pytest.param("Когда начнутся работы над ним?", id="ru-on-it"),  # "When will work on it start?"
    ],
)
def test_referring_questions_need_context(question: str) -> None:
    assert needs_context(question)


@pytest.mark.parametrize("record", STANDALONE, ids=[r["id"] for r in STANDALONE])
def test_standalone_dev_questions_do_not_need_context(record: dict[str, Any]) -> None:
    assert not needs_context(record["question"])


@pytest.mark.parametrize(
    "question",
    [
        DUMA,
        # "How many members did the Korean delegation have?" (이 here is the copula, not "this")
        pytest.param("한국 대표단은 몇 명이었습니까?", id="ko-copula"),
        # "Why do Korea and Russia need new treaties?" (이 is the subject particle and part of 이유, "reason")
        pytest.param("한국과 러시아가 새로운 조약이 필요한 이유는 무엇입니까?", id="ko-particle"),
        # "What role does the Diplomatic Academy of Russia play?"
        pytest.param("Какую роль играет Дипломатическая академия России?", id="ru-plain"),
    ],
)
def test_self_contained_questions_do_not_need_context(question: str) -> None:
    assert not needs_context(question)


def test_standalone_question_prepends_the_last_user_question() -> None:
    history = [
        Turn("user", "What did the forum say about terrorism?"),
        Turn("assistant", "The Korean side stressed the need to forge a global unity. [1]"),
        Turn("user", f"  {DUMA}  "),
        Turn("assistant", "The Russian Duma gave the green light. [1]"),
        Turn("user", "   "),
    ]
    assert standalone_question(FOLLOW_UP, history) == f"{DUMA} {FOLLOW_UP}"


def test_standalone_question_leaves_questions_alone_when_it_should() -> None:
    assert standalone_question(FOLLOW_UP, None) == FOLLOW_UP
    assert standalone_question(FOLLOW_UP, []) == FOLLOW_UP
    assert standalone_question(FOLLOW_UP, [Turn("assistant", "Hello.")]) == FOLLOW_UP
    assert standalone_question(DUMA, [Turn("user", "What did the forum say about terrorism?")]) == DUMA


def test_standalone_question_bounds_the_history_it_borrows() -> None:
    long_question = "What did the Duma approve " + "and why " * 500 + "?"
    query = standalone_question(FOLLOW_UP, [Turn("user", long_question)])
    assert query.endswith(FOLLOW_UP)
    assert len(query) <= MAX_HISTORY_CHARS + 1 + len(FOLLOW_UP)


# ------------------------------------------------------------------------------------------ end to end


def commence_sentence(qa: ForumQA) -> tuple[int, int, str]:
    """The report's sentence about work on the project commencing, located by searching the text."""
    text = qa.index.documents["third-korea-russia-forum"].text
    start, end = sentence_around(text, "commence")
    return start, end, text[start:end]


def test_follow_up_cites_when_work_commences(qa: ForumQA) -> None:
    start, end, sentence = commence_sentence(qa)
    assert sentence.startswith("The Russian side announced") and sentence.endswith("2002.")
    answer = qa.answer(FOLLOW_UP, [Turn("user", DUMA)])
    highlighted = [(c.highlight_start, c.highlight_end) for c in answer.citations[:3]]
    assert (start, end) in highlighted, [c.text[:60] for c in answer.citations]


def test_follow_up_answer_says_when_work_commences(qa: ForumQA) -> None:
    """The answer text itself (not only a citation further down) gives the start of work."""
    _, _, sentence = commence_sentence(qa)
    answer = qa.answer(FOLLOW_UP, [Turn("user", DUMA)])
    assert answer.answerable, answer.confidence
    assert sentence in answer.answer


@pytest.mark.xfail(strict=True, reason="the right sentence is shown, but as uncertain (issue 24, open)")
def test_follow_up_answer_is_given_as_answered(qa: ForumQA) -> None:
    answer = qa.answer(FOLLOW_UP, [Turn("user", DUMA)])
    assert answer.verdict == "answered", answer.confidence


@pytest.mark.parametrize("record", FOLLOW_UPS, ids=[r["id"] for r in FOLLOW_UPS])
def test_dev_follow_ups_find_their_evidence(qa: ForumQA, record: dict[str, Any]) -> None:
    history = [Turn(t["role"], t["content"]) for t in record["history"]]
    answer = qa.answer(record["question"], history)
    ranks = [c.n for c in answer.citations if has_evidence(c.text, record["evidence"])]
    assert ranks and ranks[0] <= 3


@pytest.mark.parametrize("item_id", ["d15", "d19", "d23"])
def test_non_referring_question_ignores_history(qa: ForumQA, item_id: str) -> None:
    record = next(r for r in STANDALONE if r["id"] == item_id)
    history = [
        Turn("user", "What did the forum say about terrorism?"),
        Turn("assistant", "A global unity. [1]"),
    ]
    alone = qa.answer(record["question"])
    after = qa.answer(record["question"], history)
    assert after.answer == alone.answer
    assert [c.to_dict() | {"score": 0} for c in after.citations] == [
        c.to_dict() | {"score": 0} for c in alone.citations
    ]
    assert any(has_evidence(c.text, record["evidence"]) for c in after.citations[:3])
