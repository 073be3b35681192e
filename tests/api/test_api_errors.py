"""Every client mistake is a 4xx with a JSON body ``{"error": {"type", "message"}}``, never a 500."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA, valid_text

LIMIT = 1000  # Settings.max_question_chars, the default the session settings use


def assert_error(response: Any, status: int, kind: str, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["type"] == kind
    assert isinstance(error["message"], str) and error["message"]
    for word in words:
        assert word in error["message"], error["message"]
    return dict(error)


@pytest.mark.parametrize(
    ("body", "kind", "words"),
    [
        ({"question": ""}, "invalid_request", ["empty"]),
        ({"question": "   \n\t "}, "invalid_request", ["empty"]),
        ({"question": "x" * (LIMIT + 1)}, "invalid_request", ["1001", str(LIMIT)]),
        ({"question": "When?", "top_k": 0}, "invalid_request", ["top_k"]),
        ({"question": "When?", "top_k": 21}, "invalid_request", ["top_k"]),
        ({"question": "When?", "top_k": "many"}, "invalid_request", ["top_k"]),
        ({"question": 42}, "invalid_request", ["question"]),
        ({}, "invalid_request", ["question", "required"]),
        ({"question": "When?", "history": [{"role": "system", "content": "x"}]}, "invalid_request",
         ["history[0].role"]),
        ({"question": "When?", "history": "not a list"}, "invalid_request", ["history"]),
        ({"question": "When?", "history": [{"role": "user", "content": "q"}] * 51}, "invalid_request",
         ["history"]),
        ({"question": "When?", "colour": "blue"}, "invalid_request", ["colour"]),
    ],
)
def test_bad_answer_requests_are_422(
    client: TestClient, body: dict[str, Any], kind: str, words: list[str]
) -> None:
    assert_error(client.post("/api/answer", json=body), 422, kind, *words)


def test_a_question_of_exactly_the_limit_is_accepted(client: TestClient) -> None:
    question = ("What did the forum say about terrorism? " * 30)[:LIMIT]
    assert client.post("/api/answer", json={"question": question}).status_code == 200


@pytest.mark.parametrize(
    "body", [b'{"question": ', b"{'question': 'single quotes'}", b'{"question": "a"} trailing', b"\xff\xfe"]
)
def test_malformed_json_is_400(client: TestClient, body: bytes) -> None:
    response = client.post("/api/answer", content=body, headers={"content-type": "application/json"})
    assert_error(response, 400, "malformed_json", "JSON")


@pytest.mark.parametrize("body", [b"[]", b'"a question"', b"null"])
def test_a_body_that_is_not_an_object_is_422(client: TestClient, body: bytes) -> None:
    response = client.post("/api/answer", content=body, headers={"content-type": "application/json"})
    assert_error(response, 422, "invalid_request", "JSON object")


def test_a_body_not_sent_as_json_is_422(client: TestClient) -> None:
    response = client.post("/api/answer", content=b"question=When", headers={"content-type": "text/plain"})
    assert_error(response, 422, "invalid_request", "application/json")


@pytest.mark.parametrize(
    ("body", "words"),
    [({"query": " "}, ["empty"]), ({"query": "y" * (LIMIT + 1)}, [str(LIMIT)]),
     ({"query": "a", "top_k": 99}, ["top_k"])],
)
def test_bad_search_requests_are_422(client: TestClient, body: dict[str, Any], words: list[str]) -> None:
    assert_error(client.post("/api/search", json=body), 422, "invalid_request", *words)


def refusal(check: Callable[[], object]) -> str:
    """The message ForumQA's own rule gives for the input ``check`` passes it."""
    with pytest.raises(ValueError) as refused:
        check()
    return str(refused.value)


@pytest.mark.parametrize(("route", "field"), [("/api/answer", "question"), ("/api/search", "query")])
@pytest.mark.parametrize("text", ["\ud800 when was the forum?", "  \t "])
def test_the_api_refuses_text_by_forumqas_rule(client: TestClient, route: str, field: str, text: str) -> None:
    # json.dumps escapes the surrogate as \ud800, as a client would send it
    body = json.dumps({field: text})
    response = client.post(route, content=body, headers={"content-type": "application/json"})
    message = assert_error(response, 422, "invalid_request")["message"]
    assert message == refusal(lambda: valid_text(text, field))


def test_the_api_refuses_doc_ids_by_forumqas_rule(client: TestClient, qa: ForumQA) -> None:
    doc_ids = [*qa.index.documents, "no-such-report"]
    response = client.post("/api/answer", json={"question": "When?", "doc_ids": doc_ids})
    message = assert_error(response, 422, "invalid_request")["message"]
    assert refusal(lambda: qa.documents_filter(doc_ids)) in message


def test_unknown_document_is_404(client: TestClient) -> None:
    assert_error(client.get("/api/documents/no-such-report"), 404, "not_found", "no-such-report")


def test_unknown_route_is_404_json(client: TestClient) -> None:
    assert_error(client.get("/api/nothing-here"), 404, "not_found", "/api/nothing-here")


def test_wrong_method_is_405_json(client: TestClient) -> None:
    assert_error(client.get("/api/answer"), 405, "method_not_allowed", "GET")


def test_validation_errors_list_each_field(client: TestClient) -> None:
    response = client.post("/api/answer", json={"question": 1, "top_k": 0})
    error = assert_error(response, 422, "invalid_request")
    assert {d["loc"] for d in error["details"]} == {"question", "top_k"}


def test_an_unexpected_failure_is_a_logged_json_500(
    settings: Settings, qa: ForumQA, caplog: pytest.LogCaptureFixture
) -> None:
    app = create_app(settings, qa)

    def broken() -> None:
        raise RuntimeError("secret internal detail")

    app.add_api_route("/api/broken", broken)
    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/api/broken")
    error = assert_error(response, 500, "internal_error")
    assert "secret" not in error["message"]  # nothing internal leaks to the client
    assert any("secret internal detail" in str(r.exc_info) for r in caplog.records if r.exc_info)
