"""The answer object has one schema (rag.types' pydantic models), filled from the domain dataclasses:
no field of theirs can drop out of the JSON unnoticed, and the JSON is what the API documents."""

from __future__ import annotations

from dataclasses import fields

import pytest

from rag.generate.llm import Usage
from rag.types import (
    Answer,
    AnswerResponse,
    Citation,
    Dropped,
    DroppedOut,
    Passage,
    UsageOut,
)

# The only fields the JSON nests differently from the dataclasses: Citation.highlight_start/_end
# become Passage.highlight {start, end}.
NESTED = {"highlight_start": "highlight", "highlight_end": "highlight"}


def names(dataclass: type) -> set[str]:
    return {NESTED.get(f.name, f.name) for f in fields(dataclass)}


@pytest.mark.parametrize(
    ("domain", "schema"),
    [(Answer, AnswerResponse), (Citation, Passage), (Dropped, DroppedOut), (Usage, UsageOut)],
)
def test_every_domain_field_is_in_the_json_and_nothing_else(domain: type, schema: type) -> None:
    assert names(domain) == set(schema.model_fields)


def citation(**changes: object) -> Citation:
    values: dict[str, object] = dict(
        n=2, doc_id="d", title="T", section="S", start=10, end=90, text="x" * 80,
        highlight_start=20, highlight_end=60, score=1.23456789,
    )
    return Citation(**{**values, **changes})  # type: ignore[arg-type]


def test_a_citation_nests_its_highlight_and_short_answer() -> None:
    plain = citation().to_dict()
    assert plain["highlight"] == {"start": 20, "end": 60}
    assert plain["short_answer"] is None and plain["page"] is None  # present, as the schema documents
    assert plain["score"] == round(1.23456789, 6)
    marked = citation(short_answer=(30, 42, "September 27"), page=3).to_dict()
    assert marked["short_answer"] == {"start": 30, "end": 42, "text": "September 27"}
    assert marked["page"] == 3
    assert {k: v for k, v in marked.items() if k not in ("short_answer", "page")} == {
        k: v for k, v in plain.items() if k not in ("short_answer", "page")
    }


def test_an_answer_carries_every_field_rounded_as_documented() -> None:
    answer = Answer(
        question="Q?", answer="A. [1]", answerable=True, confidence=0.123456, citations=[citation()],
        took_ms=12.34567, mode="generative", model="m", grounded=False,
        dropped=[Dropped("B.", "not supported by [1]")], notice=None,
        usage={"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}, generated_ms=9.87654,
    )
    payload = answer.to_dict()
    assert list(payload) == list(AnswerResponse.model_fields)  # in the schema's order
    assert payload["confidence"] == round(0.123456, 4)
    assert payload["took_ms"] == round(12.34567, 3) and payload["generated_ms"] == round(9.87654, 3)
    assert payload["citations"] == [citation().to_dict()]
    assert payload["dropped"] == [{"text": "B.", "reason": "not supported by [1]"}]
    assert payload["usage"] == {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}
    # Rounding again (FastAPI validates a returned model once more) changes nothing.
    assert AnswerResponse.model_validate(payload).model_dump(mode="json") == payload


def test_an_extractive_answer_has_nulls_where_no_llm_was_asked() -> None:
    payload = Answer("Q?", "", False, 0.2, [], 1.0).to_dict()
    assert payload["mode"] == "extractive" and payload["dropped"] == []
    assert payload["model"] is payload["grounded"] is payload["usage"] is payload["generated_ms"] is None


def test_the_schema_documents_every_field() -> None:
    for model in (AnswerResponse, Passage, DroppedOut):
        properties = model.model_json_schema(mode="serialization")["properties"]
        assert set(properties) == set(model.model_fields)
    described = {name for name, f in AnswerResponse.model_fields.items() if f.description}
    assert described >= {"answer", "answerable", "citations", "mode", "model", "grounded", "dropped",
                         "notice", "usage", "generated_ms", "answer_id"}
    assert AnswerResponse.model_json_schema()["examples"][0]["citations"]
    assert Passage.model_json_schema()["examples"][0]["highlight"]
