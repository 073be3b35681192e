"""Question kinds by form (rag/text.py): overviews, yes/no questions and facts; and the yes/no lead
(rag/answer/compose.py)."""

from __future__ import annotations

import pytest

from rag.answer.compose import yes_or_no
from rag.text import Kind, kind_of, named_documents

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


def test_yes_or_no_only_when_the_sentence_settles_it() -> None:
    weights = {"trans-siberian": 3.0, "railway": 2.0, "discuss": 1.0}
    held = frozenset({"trans-siberian", "railway", "link"})
    asked = "Was the Trans-Siberian railway discussed?"
    assert yes_or_no(weights, held, asked, "They discussed it.") == "Yes"
    sentence = "The railway link along the Trans-Siberian was not approved."
    # Asked whether it was discussed: a sentence about it says yes, even one that says "not".
    assert yes_or_no(weights, held, asked, sentence) == "Yes"
    facts = {"trans-siberian": 3.0, "railway": 2.0, "approv": 1.0}
    assert yes_or_no(facts, held | {"approv"}, "Was the Trans-Siberian railway approved?", sentence) == "No"
    assert yes_or_no(facts, held | {"approv"}, "Wasn't the railway approved?", sentence) is None
    # A sentence that holds too little of what is asked settles nothing: no lead.
    assert yes_or_no(weights, frozenset({"railway"}), asked, "x") is None
