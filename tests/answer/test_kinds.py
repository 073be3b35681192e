"""Question kinds by form (rag/text.py): overviews, yes/no questions and facts; and the yes/no lead
(rag/answer/compose.py)."""

from __future__ import annotations

import pytest

from rag.answer.question import Kind, kind_of, named_documents
from rag.answer.yes_no import Settled, settle

TITLES = [
    "Third Korea-Russia Forum",
    "The Legend of Zelda: Twilight Princess",
    "Spectre (2015 film)",
    "Beyoncé",
]


@pytest.mark.parametrize(
    "question",
    [
        "What is this report about?",
        "what's the document about",
        "Summarize the main points.",
        "Give me an overview",
        "Can you sum it up for me?",
        "What are the key takeaways of these documents?",
        "What is it about?",
        "What is the Third Korea-Russia Forum?",
        "Who is Beyonce?",  # accents folded
        "Tell me about Twilight Princess",  # a part of the title names the document
        "What is Spectre?",
    ],
)
def test_overview_questions(question: str) -> None:
    assert kind_of(question, TITLES) is Kind.OVERVIEW


@pytest.mark.parametrize(
    "question",
    [
        "Was the Trans-Siberian railway discussed?",
        "Did the Russian side agree?",
        "Is Moscow the capital?",
        "Won't there be a fourth forum?",
    ],
)
def test_yes_no_questions(question: str) -> None:
    assert kind_of(question, TITLES) is Kind.YES_NO


@pytest.mark.parametrize(
    "question",
    [
        "Where was the forum held?",
        "When was the main theme of the film released?",  # summary words inside a fact question
        "What is it about the rail link that worries them?",
        "Is the forum held in Moscow or in Seoul?",  # a choice, not a yes or a no
        "What is the population of Vladivostok?",  # names no document
        "포럼은 어디에서 열렸습니까?",
    ],
)
def test_fact_questions(question: str) -> None:
    assert kind_of(question, TITLES) is Kind.FACT


def test_named_documents_names_each_title_asked_for() -> None:
    assert named_documents("Who was Beyoncé?", TITLES) == [3]
    assert named_documents("What is Twilight Princess?", TITLES) == [1]
    assert named_documents("What is the forum?", TITLES) == []


def test_was_it_discussed_is_settled_by_a_sentence_about_it() -> None:
    weights = {"trans-siberian": 3.0, "railway": 2.0, "discuss": 1.0}
    asked = "Was the Trans-Siberian railway discussed?"
    sentence = "The railway link along the Trans-Siberian was not approved."
    # Asked whether it was discussed: a sentence about it says yes, even one that says "not".
    assert settle(asked, weights, [sentence]) == (Settled.YES, 0)
    # A sentence that holds too little of what is asked settles nothing: no lead.
    assert settle(asked, weights, ["The railway was busy."]) == (None, 0)


def test_a_negative_question_gets_no_lead() -> None:
    facts = {"railway": 2.0, "approv": 1.0}
    assert settle("Wasn't the railway approved?", facts, ["The railway was approved."]) == (None, 0)


@pytest.mark.parametrize(
    ("sentences", "expected"),
    [
        # The outcome recorded one or two sentences after the motion: that sentence settles it.
        (["Cllr Byrne moved that the plan be approved.", "Cllr Hale seconded.", "The motion was carried."],
         (Settled.YES, 2)),
        (["Cllr Byrne moved that the plan be approved.", "The motion was defeated by 4 votes to 7."],
         (Settled.NO, 1)),
        (["Cllr Byrne moved that the plan be approved.", "The motion was deferred to the May meeting."],
         (Settled.NO, 1)),
        (["Cllr Byrne moved that the plan be approved.", "Cllr Dunne then withdrew the motion."],
         (Settled.NO, 1)),
        (["The council approved the plan unanimously."], (Settled.YES, 0)),
        (["The plan has not yet been approved by the ministry."], (Settled.NO, 0)),
        # A motion moved, approval sought, a plan announced: no outcome, the documents do not settle it.
        (["Cllr Byrne moved that the plan be approved.", "Several members spoke in favour of it."],
         (Settled.UNSETTLED, 0)),
        (["The board was asked to approve the plan at its next meeting."], (Settled.UNSETTLED, 0)),
        (["The plan is expected to be approved in May."], (Settled.UNSETTLED, 0)),
        (["Cllr Byrne gave notice that he will move that the plan be approved."], (Settled.UNSETTLED, 0)),
    ],
)
def test_an_outcome_is_settled_only_by_a_sentence_that_records_it(
    sentences: list[str], expected: tuple[Settled | None, int]
) -> None:
    weights = {"council": 1.0, "approv": 1.0, "plan": 2.0}
    assert settle("Did the council approve the plan?", weights, sentences) == expected


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    [
        ("Did library visits go up in 2023?", "Library visits rose by 9 percent in 2023.", Settled.YES),
        ("Did library visits go up in 2023?", "Library visits fell by 2 percent in 2023.", Settled.NO),
        ("Did library visits go up in 2023?", "Library visits in 2023 were 410,000.", None),
    ],
)
def test_a_change_asked_one_way_is_settled_by_a_change_recorded(
    question: str, sentence: str, expected: Settled | None
) -> None:
    weights = {"librari": 2.0, "visit": 2.0, "2023": 1.0}
    assert settle(question, weights, [sentence])[0] is expected
