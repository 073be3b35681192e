"""Bad input against the real app: always a clear 4xx JSON error, never a 500, never a file from disk."""

from __future__ import annotations

import base64
import hashlib
import json
import re
import socket
from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from server_support import LiveServer

from api.main import create_app
from api.routes.docs import inline_scripts
from api.security import CSP, DOCS_CSP
from rag.config import Settings
from rag.qa import ForumQA

JSON = {"content-type": "application/json"}
QUESTION_ROUTES = {
    "/api/answer": lambda text: {"question": text},
    "/api/search": lambda text: {"query": text},
    "/v1/chat/completions": lambda text: {"model": "forum-qa",
                                          "messages": [{"role": "user", "content": text}]},
}


def as_json(body: Any) -> bytes:
    """``body`` as UTF-8 JSON; lone surrogates, which UTF-8 cannot hold, go as ``\\udXXX`` escapes."""
    return json.dumps(body, ensure_ascii=False).encode("utf-8", "backslashreplace")


@pytest.fixture(scope="module")
def app(settings: Settings, qa: ForumQA) -> FastAPI:
    return create_app(settings, qa)


@pytest.fixture(scope="module")
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_json_error(response: Any, status: int | tuple[int, ...]) -> dict[str, Any]:
    """``response`` is the API's JSON error with ``status``: ``{"error": {"type", "message"}}``."""
    statuses = status if isinstance(status, tuple) else (status,)
    assert response.status_code in statuses, (response.status_code, response.text[:300])
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert isinstance(error["type"], str) and error["type"]
    assert isinstance(error["message"], str) and error["message"]
    return dict(error)


# ---------------------------------------------------------------------------------------- bodies

RAW_BODIES: dict[str, bytes] = {
    "not UTF-8": b'{"question": "\xff\xfe\xfd forum"}',
    "Latin-1 text": '{"question": "caf\u00e9 in Moscow?"}'.encode("latin-1"),
    "truncated JSON": b'{"question": "when',
    "empty body": b"",
    "JSON null": b"null",
    "JSON array": b'[{"question": "when?"}]',
    "JSON string": b'"when did the forum take place?"',
    "nesting 10000 deep": b'{"question": ' + b"[" * 10_000 + b"]" * 10_000 + b"}",
    "NaN": b'{"question": NaN}',
    "huge number": b'{"question": 1e999999}',
}


@pytest.mark.parametrize("route", list(QUESTION_ROUTES))
@pytest.mark.parametrize("name", list(RAW_BODIES))
def test_malformed_bodies_are_4xx_json(client: TestClient, route: str, name: str) -> None:
    response = client.post(route, content=RAW_BODIES[name], headers=JSON)
    assert_json_error(response, (400, 422))


TEXTS: dict[str, Any] = {
    "lone high surrogate": "\ud800 when was the forum?",
    "lone low surrogate": "who spoke \udfff first?",
    "10,000 characters": "ы" * 10_000,
    "10,000 emoji": "\U0001f600" * 10_000,
    "only white space": " \t\n\u3000\u00a0 ",
    "empty": "",
    "a number": 42,
    "a list": ["when?"],
    "an object": {"q": "when?"},
    "null": None,
    "true": True,
}


@pytest.mark.parametrize("route", list(QUESTION_ROUTES))
@pytest.mark.parametrize("name", list(TEXTS))
def test_bad_questions_are_4xx_json(client: TestClient, route: str, name: str) -> None:
    response = client.post(route, content=as_json(QUESTION_ROUTES[route](TEXTS[name])), headers=JSON)
    assert_json_error(response, 422)


CONTROL = "".join(chr(c) for c in range(32)) + "\x7f\u200b\u202e\ufeff"


@pytest.mark.parametrize("route", list(QUESTION_ROUTES))
@pytest.mark.parametrize(
    "text",
    [f"When did the forum {CONTROL} take place?", "When\x00 did the forum take place?",
     "<script>alert(1)</script> when was the forum?", "'; DROP TABLE chunks; --", "%s%n%x {0} ${x}",
     "ы" * 1000, "\U0001f600" * 1000],
    ids=["controls", "NUL", "markup", "sql", "format strings", "1000 Cyrillic", "1000 emoji"],
)
def test_odd_but_valid_questions_are_answered(client: TestClient, route: str, text: str) -> None:
    response = client.post(route, content=as_json(QUESTION_ROUTES[route](text)), headers=JSON)
    assert response.status_code == 200, response.text[:300]
    response.json()  # well-formed JSON, whatever the question held


@pytest.mark.parametrize(
    "body",
    [{}, {"top_k": 3}, {"question": "when?", "top_k": 0}, {"question": "when?", "top_k": 21},
     {"question": "when?", "top_k": "many"}, {"question": "when?", "top_k": 2.5},
     {"question": "when?", "history": "none"}, {"question": "when?", "history": [{"role": "system"}]},
     {"question": "when?", "history": [{"role": "user", "content": "\udc80"}]},
     {"question": "when?", "history": [{"role": "user", "content": "x"}] * 1000},
     {"question": "when?", "admin": True}],
    ids=["missing", "missing question", "top_k 0", "top_k 21", "top_k text", "top_k float", "history text",
         "history role", "history surrogate", "history 1000 turns", "unknown field"],
)
def test_wrong_fields_are_422_and_say_which(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/api/answer", content=as_json(body), headers=JSON)
    assert_json_error(response, 422)


@pytest.mark.parametrize(
    "body",
    [{"model": "forum-qa"}, {"model": "forum-qa", "messages": []}, {"model": "forum-qa", "messages": "hi"},
     {"model": "gpt-4", "messages": [{"role": "user", "content": "when?"}]},
     {"model": "forum-qa", "messages": [{"role": "assistant", "content": "when?"}]},
     {"model": "forum-qa", "messages": [{"role": "wizard", "content": "when?"}]},
     {"model": "forum-qa", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
     {"model": "forum-qa",
      "messages": [{"role": "user", "content": "\udc80"}, {"role": "user", "content": "ok?"}]},
     {"messages": [{"role": "user", "content": "when?"}]}],
    ids=["no messages", "empty messages", "messages text", "other model", "last not user", "bad role",
         "no text part", "surrogate in history", "no model"],
)
def test_bad_chat_completions_are_4xx_json(client: TestClient, body: dict[str, Any]) -> None:
    response = client.post("/v1/chat/completions", content=as_json(body), headers=JSON)
    assert_json_error(response, (404, 422))


def test_body_over_the_cap_is_413_json(client: TestClient, settings: Settings) -> None:
    body = json.dumps({"question": "x" * (settings.max_body_bytes + 10)})
    error = assert_json_error(client.post("/api/answer", content=body, headers=JSON), 413)
    assert error["type"] == "payload_too_large"


def test_chunked_body_over_the_cap_is_413_json(client: TestClient, settings: Settings) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"question": "'
        for _ in range(settings.max_body_bytes // 1024 + 2):
            yield b"x" * 1024
        yield b'"}'

    response = client.post("/api/answer", content=chunks(), headers=JSON)
    assert "content-length" not in response.request.headers
    error = assert_json_error(response, 413)
    assert error["type"] == "payload_too_large"


def test_wrong_content_type_is_4xx_json(client: TestClient) -> None:
    response = client.post("/api/answer", content=b"question=when", headers={"content-type": "text/plain"})
    assert_json_error(response, (400, 415, 422))


# ---------------------------------------------------------------------------------------- routes


@pytest.mark.parametrize("path", ["/nowhere", "/api", "/api/", "/api/answers", "/v1", "/v2/chat/completions",
                                  "/static/nope.js", "/index.html", "/.env", "/api/documents/x/y"])
def test_unknown_routes_are_404_json(client: TestClient, path: str) -> None:
    assert_json_error(client.get(path), 404)


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/api/answer"), ("PUT", "/api/answer"), ("DELETE", "/api/search"),
     ("PATCH", "/v1/chat/completions"), ("PUT", "/api/documents"),
     ("PUT", "/api/documents/third-korea-russia-forum"), ("POST", "/healthz"), ("PUT", "/")],
)
def test_wrong_methods_are_405_json(client: TestClient, method: str, path: str) -> None:
    assert_json_error(client.request(method, path), 405)


# ---------------------------------------------------------------------------------------- documents on disk


@pytest.fixture(scope="module")
def live(app: FastAPI) -> Iterator[str]:
    with LiveServer(app) as server:
        yield server.url


def raw_get(url: str, path: str) -> tuple[int, bytes]:
    """GET ``path`` byte for byte over a socket (HTTP clients would normalise the dots away)."""
    host, port = url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode("latin-1"))
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


TRAVERSALS = [
    "/api/documents/../../etc/passwd", "/api/documents/..%2F..%2F..%2Fetc%2Fpasswd",
    "/api/documents/%2e%2e%2f%2e%2e%2fetc%2fpasswd", "/api/documents/%2e%2e", "/api/documents/..",
    "/api/documents/%2Fetc%2Fpasswd", "/api/documents//etc/passwd",
    "/api/documents/%252e%252e%252fetc%252fpasswd", "/api/documents/..%5c..%5cetc%5cpasswd",
    "/api/documents/%00", "/api/documents/third-korea-russia-forum%00.txt",
    "/api/documents/" + "%2e%2e%2f" * 20 + "etc%2fpasswd", "/api/documents/~root",
    "/static/../../../../etc/passwd", "/static/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/static/..%2fmain.py", "/static/%2e%2e/main.py",
    "/static/..%2f..%2fcorpus%2fthird-korea-russia-forum.txt",
    "/static//etc/passwd", "/static/%2Fetc%2Fpasswd",
    "/../../../etc/passwd", "/%2e%2e/%2e%2e/etc/passwd",
]


@pytest.mark.parametrize("path", TRAVERSALS)
def test_path_traversal_reaches_no_file(live: str, path: str) -> None:
    status, body = raw_get(live, path)
    assert status in (400, 404), (status, body[:200])
    assert b"root:" not in body
    assert b"import" not in body  # no Python source
    assert b"Korea Foundation cosponsored" not in body  # no corpus file
    if status == 404:
        assert json.loads(body)["error"]["type"] == "not_found"


def test_documents_are_served_from_the_index_only(client: TestClient, qa: ForumQA) -> None:
    ids = [d["id"] for d in client.get("/api/documents").json()["documents"]]
    assert ids == [d.id for d in qa.documents]
    for doc_id in ids:
        assert client.get(f"/api/documents/{doc_id}").status_code == 200
    assert_json_error(client.get(f"/api/documents/{ids[0]}.txt"), 404)


# ---------------------------------------------------------------------------------------- headers


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css", "/healthz", "/readyz",
                                  "/api/documents", "/openapi.json", "/nowhere"])
def test_real_pages_carry_the_security_headers(client: TestClient, path: str) -> None:
    headers = client.get(path).headers
    assert headers["content-security-policy"] == CSP
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


JS = ("text/javascript", "application/javascript")  # the name depends on the system's mime.types
DOCS_ASSETS = {  # what the docs pages load, all from this server
    "/docs": {"/static-docs/swagger-ui-bundle.js": JS, "/static-docs/swagger-ui.css": ("text/css",),
              "/static-docs/favicon.png": ("image/png",)},
    "/redoc": {"/static-docs/redoc.standalone.js": JS, "/static-docs/favicon.png": ("image/png",)},
}


@pytest.mark.parametrize("page", list(DOCS_ASSETS))
def test_docs_page_gets_the_docs_policy(client: TestClient, page: str) -> None:
    response = client.get(page)
    assert response.status_code == 200
    assert response.headers["content-security-policy"] == DOCS_CSP
    assert "cdn.jsdelivr.net" not in response.text
    assert "fonts.googleapis.com" not in response.text
    assert not re.findall(r"""(?:src|href)=["']?(?:https?:)?//""", response.text)  # nothing from elsewhere
    for url, content_types in DOCS_ASSETS[page].items():
        assert f'"{url}"' in response.text, url
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].split(";")[0] in content_types, url
        assert asset.headers["content-security-policy"] == CSP  # files, not pages: the strict policy
        assert len(asset.content) > 1000, url


@pytest.mark.parametrize("root_path", ["", "/qa"])
def test_every_inline_script_of_the_docs_pages_is_allowed_by_hash(app: FastAPI, root_path: str) -> None:
    """The policy holds the hash of each inline script the pages really serve, under a proxy prefix too."""
    client = TestClient(app, root_path=root_path)  # no lifespan: the module's client already runs it
    for page in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = client.get(root_path + page)
        assert response.status_code == 200, page
        for script in inline_scripts(response.content):
            digest = base64.b64encode(hashlib.sha256(script.encode("utf-8")).digest()).decode()
            assert f"'sha256-{digest}'" in response.headers["content-security-policy"], (page, script)
    swagger = client.get(root_path + "/docs")
    assert inline_scripts(swagger.content)  # Swagger UI's start-up call
    assert f'"{root_path}/static-docs/swagger-ui-bundle.js"' in swagger.text


def test_cors_is_off_by_default_on_the_real_app(client: TestClient) -> None:
    response = client.get("/api/documents", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers


# ---------------------------------------------------------------------------------------- API key


def test_api_key_guards_the_real_api_and_leaves_the_page_open(settings: Settings, qa: ForumQA) -> None:
    key = "k-" + "x" * 30
    with TestClient(create_app(settings.model_copy(update={"api_key": key}), qa)) as client:
        chat = {"model": "forum-qa", "messages": [{"role": "user", "content": "When?"}]}
        for method, path, body in [("POST", "/api/answer", {"question": "When was the forum?"}),
                                   ("POST", "/api/search", {"query": "terrorism"}),
                                   ("GET", "/api/documents", None), ("GET", "/v1/models", None),
                                   ("POST", "/v1/chat/completions", chat)]:
            denied = client.request(method, path, json=body)
            assert assert_json_error(denied, 401)["type"] == "unauthorized"
            assert denied.headers["www-authenticate"].startswith("Bearer")
            allowed = client.request(method, path, json=body, headers={"Authorization": f"Bearer {key}"})
            assert allowed.status_code == 200, (path, allowed.text[:200])
        for path in ("/", "/static/app.js", "/healthz", "/readyz", "/openapi.json"):
            assert client.get(path).status_code == 200, path
