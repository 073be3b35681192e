"""The input rules ForumQA states once and the API and CLI reuse: valid text, known document ids, and
generative answers only with an LLM. The API's side of each is in tests/api/test_api_errors.py."""

from __future__ import annotations

import pytest

from rag.config import LLMNotConfigured, Settings
from rag.qa import ForumQA, documents_filter, valid_text
from rag.types import Document, Section, Turn

QUESTION = "Who headed the Korean delegation?"


def document(doc_id: str) -> Document:
    return Document(doc_id, doc_id.title(), "Some text.", (Section(doc_id, 0, 10),))


DOCUMENTS = {d: document(d) for d in ("alpha", "beta")}


@pytest.mark.parametrize("text", ["When?", "  spaced  ", "ы" * 5, "\U0001f600", "NUL\x00inside"])
def test_valid_text_is_returned_unchanged(text: str) -> None:
    assert valid_text(text) is text


@pytest.mark.parametrize(("text", "at"), [("\ud800 when?", 0), ("who spoke \udfff first?", 10)])
def test_a_lone_surrogate_is_refused_with_its_field_and_position(text: str, at: int) -> None:
    expected = f"the query is not valid Unicode: a lone surrogate at character {at}"
    with pytest.raises(ValueError) as refused:
        valid_text(text, "the query")
    assert str(refused.value) == expected
    with pytest.raises(ValueError, match="not valid Unicode"):
        valid_text(text, allow_empty=True)  # allowing blank text does not allow broken text


@pytest.mark.parametrize("text", ["", "   ", "\t\n\u3000"])
def test_blank_text_is_refused_unless_allowed(text: str) -> None:
    with pytest.raises(ValueError, match=r"^the question must not be empty$"):
        valid_text(text)
    assert valid_text(text, allow_empty=True) == text


def test_forumqa_applies_the_text_rule_to_question_history_and_query(qa: ForumQA) -> None:
    with pytest.raises(ValueError, match=r"^the question must not be empty$"):
        qa.answer("  ")
    with pytest.raises(ValueError, match=r"^the question is not valid Unicode"):
        qa.answer("\ud800" + QUESTION)
    with pytest.raises(ValueError, match=r"^history turn 2 is not valid Unicode"):
        qa.answer(QUESTION, [Turn("user", "fine"), Turn("assistant", "\udc80")])
    with pytest.raises(ValueError, match=r"^the query must not be empty$"):
        qa.search("")
    assert qa.answer(QUESTION, [Turn("user", "")]).question == QUESTION  # an empty earlier turn is harmless


def test_documents_filter_sorts_and_deduplicates() -> None:
    assert documents_filter(DOCUMENTS, None) is None
    assert documents_filter(DOCUMENTS, ["beta", "alpha", "beta"]) == ("alpha", "beta")


def test_documents_filter_names_each_unknown_id_once() -> None:
    with pytest.raises(ValueError) as refused:
        documents_filter(DOCUMENTS, ["alpha", "gamma", "gamma", "delta"])
    message = str(refused.value)
    assert message == "unknown document id(s): 'gamma', 'delta'"
    with pytest.raises(ValueError, match="empty"):
        documents_filter(DOCUMENTS, [])


def test_forumqa_checks_doc_ids_against_the_serving_index(qa: ForumQA) -> None:
    served = sorted(qa.index.documents)
    assert qa.documents_filter(served) == tuple(served)
    with pytest.raises(ValueError, match="'no-such-report'"):
        qa.answer(QUESTION, doc_ids=["no-such-report"])
    with pytest.raises(ValueError, match="'no-such-report'"):
        qa.search("trade", doc_ids=[*served, "no-such-report"])


def test_generative_mode_needs_an_llm_and_auto_does_not() -> None:
    without = Settings(llm_base_url=None, llm_model=None)
    for mode in ("extractive", "auto"):
        without.check_mode(mode)
    with pytest.raises(LLMNotConfigured) as refused:
        without.check_mode("generative")
    assert "FORUMQA_LLM_BASE_URL" in str(refused.value) and "FORUMQA_LLM_MODEL" in str(refused.value)
    half = Settings(llm_base_url="http://127.0.0.1:9/v1", llm_model=None)  # both settings are needed
    with pytest.raises(LLMNotConfigured):
        half.check_mode("generative")
    Settings(llm_base_url="http://127.0.0.1:9/v1", llm_model="m").check_mode("generative")
