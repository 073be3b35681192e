"""The sentence that answers, not the sentence that names the topic (issue 24).

A short meeting report of our own (tests/data/port-logistics-meeting.txt), written in the shape reports
take: the meeting named in one sentence and its chair in the next; the terminal in one sentence and its
budget two sentences later. Expectations come from that text, never from the code.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from core_support import fold

from rag.config import Settings
from rag.qa import ForumQA
from rag.types import Answer

MEETING = Path(__file__).resolve().parents[1] / "data" / "port-logistics-meeting.txt"
TEXT = MEETING.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def meeting_qa(tmp_path_factory: pytest.TempPathFactory) -> ForumQA:
    """The meeting report alone, in an index of the models English questions use."""
    root = tmp_path_factory.mktemp("port-meeting")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copyfile(MEETING, corpus / MEETING.name)
    settings = Settings(corpus_dir=corpus, index_dir=root / "index", embedders=["minilm", "e5"])
    return ForumQA.open(settings, progress=False)


def _short(answer: Answer) -> str | None:
    return next((c.short_answer[2] for c in answer.citations if c.short_answer is not None), None)


def test_the_chair_is_named_from_the_sentence_after_the_meeting(meeting_qa: ForumQA) -> None:
    answer = meeting_qa.answer("Who chaired the Vladivostok Port Logistics Meeting?")
    assert answer.verdict == "answered", answer
    assert "Igor Belov" in answer.answer
    short = _short(answer)
    assert short is not None and "Igor Belov" in short


def test_the_budget_two_sentences_after_the_terminal(meeting_qa: ForumQA) -> None:
    answer = meeting_qa.answer("What is the budget of the Cape Churkin terminal?")
    assert answer.verdict == "answered", answer
    assert "12 billion roubles" in answer.answer
    short = _short(answer)
    assert short is not None and "12 billion roubles" in short


def test_an_approximate_attendance_is_marked(meeting_qa: ForumQA) -> None:
    answer = meeting_qa.answer("How many people attended the meeting?")
    assert answer.verdict == "answered", answer
    assert "about 40 participants" in answer.answer
    short = _short(answer)
    assert short is not None and "about 40" in short


def test_who_led_a_delegation_is_marked(meeting_qa: ForumQA) -> None:
    answer = meeting_qa.answer("Who led the Busan delegation?")
    assert answer.verdict == "answered", answer
    assert "Park Ji-hoon" in answer.answer
    short = _short(answer)
    assert short is not None and "Park Ji-hoon" in short


def test_a_who_question_no_sentence_answers_is_never_answered(meeting_qa: ForumQA) -> None:
    """The report names no mayor: whatever it quotes, holding no such name, is not an answer."""
    answer = meeting_qa.answer("Who is the mayor of Vladivostok?")
    assert answer.verdict != "answered", answer


def test_every_quoted_span_is_the_documents_own_text(meeting_qa: ForumQA) -> None:
    answer = meeting_qa.answer("Who chaired the Vladivostok Port Logistics Meeting?")
    for citation in answer.citations:
        assert fold(TEXT[citation.highlight_start : citation.highlight_end]) in fold(TEXT)
        assert citation.text == TEXT[citation.start : citation.end]


@pytest.mark.parametrize(
    "question",
    [
        "Give me a summary of this meeting report",
        "What kind of document is this?",
        "What was the meeting about?",
    ],
)
def test_overview_questions_in_a_readers_words_get_the_lead(meeting_qa: ForumQA, question: str) -> None:
    answer = meeting_qa.answer(question)
    assert answer.kind == "overview", answer
    assert "took place on March 14 in Vladivostok" in answer.answer


def test_an_agreed_step_settles_a_yes_no_question(meeting_qa: ForumQA) -> None:
    answer = meeting_qa.answer("Did the participants agree to open a terminal at Cape Churkin?")
    assert answer.kind == "yes_no"
    assert answer.answer.startswith("Yes."), answer.answer


# ------------------------------------------------------------------------------------ held-out reports

REPORTS = Path(__file__).resolve().parents[2] / "eval" / "reports"
# Two documents of eval/reports' held-out split (never fitted on): minutes with motions and votes, and a
# project status report.
HELD_OUT = ("mlima-coffee-board-minutes", "malaya-bridge-status-report")


def test_held_out_report_like_floor(tmp_path_factory: pytest.TempPathFactory, artifacts: Path) -> None:
    """A guard well under what was measured on these two documents (make eval-reports: hit@1 0.783 and
    0.783, answer 0.565 and 0.739, answered but wrong 6 and 3 of 23 each)."""
    from rag.evaluation import evaluate_per_article, lead_word, load_questions, metrics

    items = [i for i in load_questions(REPORTS / "questions.jsonl") if i.article in HELD_OUT]
    settings = Settings(index_dir=tmp_path_factory.mktemp("reports-held-out"), embedders=["minilm", "e5"])
    results = evaluate_per_article(settings, items, REPORTS / "corpus", progress=False)
    m = metrics(results)
    (artifacts / "reports-held-out.txt").write_text(repr(m) + "\n", encoding="utf-8")
    assert m["hit@1"] >= 0.65
    assert m["answer_acc"] >= 0.5
    answerable = [r for r in results if r.item.answerable]
    wrong = [r for r in answerable if r.answer.verdict == "answered" and not r.answer_has_evidence]
    assert len(wrong) <= 0.25 * len(answerable)
    # A wrong "Yes." or "No." is the worst answer: none on these minutes and this status report.
    led_wrong = [
        r for r in answerable if r.item.yesno and lead_word(r.answer) and lead_word(r.answer) != r.item.yesno
    ]
    assert not led_wrong, [(r.item.question, r.answer.answer[:80]) for r in led_wrong]
