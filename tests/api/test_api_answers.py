"""POST /api/answer and /api/search over the real report: shapes, follow-ups, and offsets that hold."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient

ANSWER_KEYS = {
    "question", "answer", "answerable", "confidence", "citations", "took_ms", "cached", "verdict", "kind",
    "mode", "model", "grounded", "dropped", "notice", "usage", "generated_ms", "answer_id",
}
CITATION_KEYS = {
    "n",
    "doc_id",
    "title",
    "section",
    "start",
    "end",
    "text",
    "highlight",
    "score",
    "short_answer",
    "page",  # the printed page of a PDF's citation; null for the text report
}


def fold(text: str) -> str:
    return " ".join(text.split()).casefold()


def ask(client: TestClient, question: str, **body: Any) -> dict[str, Any]:
    response = client.post("/api/answer", json={"question": question, **body})
    assert response.status_code == 200, response.text
    return dict(response.json())


def test_answer_has_the_documented_shape(client: TestClient) -> None:
    answer = ask(client, "When did the Third Korea-Russia Forum take place?")
    assert set(answer) == ANSWER_KEYS
    assert answer["question"] == "When did the Third Korea-Russia Forum take place?"
    assert answer["answerable"] is True
    assert 0 <= answer["confidence"] <= 1
    assert "[1]" in answer["answer"]
    assert answer["citations"], "an answerable question has citations"
    for i, citation in enumerate(answer["citations"], start=1):
        assert set(citation) == CITATION_KEYS
        assert citation["n"] == i
        assert set(citation["highlight"]) == {"start", "end"}
        assert citation["page"] is None
    # A date was asked for: the first citation marks it inside its highlighted sentence.
    first = answer["citations"][0]
    short, highlight = first["short_answer"], first["highlight"]
    assert set(short) == {"start", "end", "text"}
    assert highlight["start"] <= short["start"] < short["end"] <= highlight["end"]
    document = client.get(f"/api/documents/{first['doc_id']}").json()["text"]
    assert document[short["start"] : short["end"]] == short["text"]
    assert "September 27-28" in short["text"]


@pytest.mark.parametrize("question", ["When did the Third Korea-Russia Forum take place?",
                                      "What is the boiling point of mercury at sea level?"])
def test_every_route_returns_the_same_answer_object(client: TestClient, question: str) -> None:
    """/api/answer, the stream's last line and the chat completion's forum_qa: one schema, one object
    (the time each took aside)."""
    body = {"question": question, "mode": "extractive"}
    plain = ask(client, question, mode="extractive")
    streamed = json.loads(client.post("/api/answer/stream", json=body).text.splitlines()[-1])
    chat = client.post("/v1/chat/completions", json={
        "model": "forum-qa", "mode": "extractive", "messages": [{"role": "user", "content": question}]
    }).json()["forum_qa"]
    assert streamed["type"] == "answer"
    assert streamed["answer"]["cached"] is chat["cached"] is True  # the same question again: the cache
    untimed = [{**answer, "took_ms": 0, "cached": True} for answer in (plain, streamed["answer"], chat)]
    assert untimed[0] == untimed[1] == untimed[2]


def test_a_repeat_says_it_came_from_the_cache(client: TestClient) -> None:
    """took_ms of a cached answer is the look-up alone; ``cached`` says so, so a client need not print
    "answered in 0.02 ms" as if it had answered that fast."""
    question = "What did the participants say about the Tumen River project?"
    first = ask(client, question, top_k=4)  # a top_k no other test uses: a key not cached yet
    again = ask(client, question, top_k=4)
    assert first["cached"] is False and again["cached"] is True
    assert {**first, "took_ms": 0, "cached": True} == {**again, "took_ms": 0}


def test_the_question_is_trimmed(client: TestClient) -> None:
    assert ask(client, "  Who led the Russian delegation?\n")["question"] == "Who led the Russian delegation?"


@pytest.mark.parametrize("top_k", [1, 3, 20])
def test_top_k_bounds_the_citations(client: TestClient, top_k: int) -> None:
    answer = ask(client, "What did the Russians regret about Pyongyang?", top_k=top_k)
    assert 1 <= len(answer["citations"]) <= top_k


def test_every_dev_answer_cites_offsets_that_index_the_document(
    client: TestClient, dev_items: list[dict[str, Any]]
) -> None:
    """document text[start:end] is the passage, and the highlight is a sentence inside it."""
    listed = client.get("/api/documents").json()["documents"]
    texts = {d["id"]: client.get(f"/api/documents/{d['id']}").json()["text"] for d in listed}
    checked = 0
    for item in dev_items:
        answer = ask(client, item["question"], history=item.get("history", []))
        for c in answer["citations"]:
            text = texts[c["doc_id"]]
            assert text[c["start"] : c["end"]] == c["text"], (item["id"], c["n"])
            h = c["highlight"]
            assert c["start"] <= h["start"] < h["end"] <= c["end"], (item["id"], c["n"])
            checked += 1
        if answer["answerable"]:
            # The answer quotes the report: its first sentence is the highlight of citation 1.
            first = answer["citations"][0]["highlight"]
            assert text_of(texts, answer["citations"][0]["doc_id"], first) in answer["answer"]
    assert checked >= len(dev_items)


def text_of(texts: dict[str, str], doc_id: str, span: dict[str, int]) -> str:
    return texts[doc_id][span["start"] : span["end"]]


def test_follow_up_uses_the_history(client: TestClient, dev_items: list[dict[str, Any]]) -> None:
    item = next(i for i in dev_items if i.get("history"))
    with_history = ask(client, item["question"], history=item["history"])
    passages = " ".join(c["text"] for c in with_history["citations"][:3])
    assert any(fold(e) in fold(passages) for e in item["evidence"]), with_history["answer"]


def test_uncovered_question_is_not_answerable_but_lists_nearest_passages(client: TestClient) -> None:
    answer = ask(client, "What is the population of Vladivostok?")
    assert answer["answerable"] is False
    assert answer["answer"]  # says so in words
    assert answer["citations"]


def test_search_returns_ranked_passages(client: TestClient) -> None:
    body = {"query": "terrorist attacks in the United States", "top_k": 3}
    response = client.post("/api/search", json=body)
    assert response.status_code == 200, response.text
    results = response.json()["results"]
    assert 1 <= len(results) <= 3
    assert [r["n"] for r in results] == list(range(1, len(results) + 1))
    assert set(results[0]) == CITATION_KEYS
    assert "terrorist" in " ".join(r["text"] for r in results)


def test_search_top_k_defaults_to_five(client: TestClient) -> None:
    response = client.post("/api/search", json={"query": "cultural exchanges"})
    assert response.status_code == 200, response.text
    assert 1 <= len(response.json()["results"]) <= 5


def test_fresh_answers_past_the_cache(client: TestClient) -> None:
    """``fresh`` (the page's Regenerate) skips the answer cache; an extractive answer comes out the same,
    under the same answer_id. It is a strict boolean, documented in the schema."""
    question = "What did the participants say about the Tumen River project?"
    first = ask(client, question)
    repeat = ask(client, question)
    fresh = ask(client, question, fresh=True)
    assert repeat["cached"] is True and fresh["cached"] is False
    assert fresh["answer"] == first["answer"] and fresh["answer_id"] == first["answer_id"]
    assert ask(client, question)["cached"] is True  # the fresh answer is the one cached now
    for bad in ("yes", 1, None):
        response = client.post("/api/answer", json={"question": question, "fresh": bad})
        assert response.status_code == 422, response.text
        assert "fresh" in response.text
    schema = client.get("/openapi.json").json()["components"]["schemas"]["AnswerRequest"]
    assert schema["properties"]["fresh"]["type"] == "boolean"
    assert "cache" in schema["properties"]["fresh"]["description"]
