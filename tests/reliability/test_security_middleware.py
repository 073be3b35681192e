"""The security middleware on a tiny FastAPI app: headers, body cap, API key, rate limit, CORS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator, Mapping

import httpx
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel
from server_support import LiveServer
from starlette.testclient import TestClient

from api.limits import TokenBucket
from api.routes.docs import install_docs
from api.security import CSP, DOCS_CSP, install_security
from rag.config import Settings

KEY = "s3cret-key"


class Echo(BaseModel):
    text: str


def tiny_app(**overrides: object) -> FastAPI:
    """A FastAPI app shaped like the service (API under /api and /v1, open health, page and docs)."""
    app = FastAPI(docs_url=None, redoc_url=None)
    install_docs(app)

    @app.get("/healthz")
    def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/")
    def page() -> dict[str, str]:
        return {"page": "chat"}

    @app.post("/api/echo")
    def echo(body: Echo) -> dict[str, int]:
        return {"chars": len(body.text)}

    @app.post("/api/raw")
    async def raw(request: Request) -> dict[str, int]:
        return {"bytes": len(await request.body())}

    @app.get("/v1/models")
    def models() -> dict[str, list[str]]:
        return {"data": []}

    @app.get("/api/boom")
    def boom() -> None:
        raise RuntimeError("boom")

    settings = Settings(**overrides)  # type: ignore[arg-type]
    install_security(app, settings)
    return app


def client(**overrides: object) -> TestClient:
    return TestClient(tiny_app(**overrides), raise_server_exceptions=False)


def assert_security_headers(headers: Mapping[str, str], csp: str = CSP) -> None:
    assert headers["content-security-policy"] == csp
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["referrer-policy"] == "no-referrer"
    assert headers["x-frame-options"] == "DENY"


# ---------------------------------------------------------------------------------------- headers


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [("GET", "/healthz", 200), ("GET", "/", 200), ("GET", "/nowhere", 404), ("DELETE", "/healthz", 405),
     ("GET", "/api/boom", 500), ("GET", "/openapi.json", 200)],
)
def test_every_response_carries_the_security_headers(method: str, path: str, status: int) -> None:
    response = client().request(method, path)
    assert response.status_code == status
    assert_security_headers(response.headers)


def test_docs_pages_get_the_docs_policy_only() -> None:
    c = client()
    for path in ("/docs", "/redoc", "/docs/oauth2-redirect"):
        response = c.get(path)
        assert response.status_code == 200, path
        assert_security_headers(response.headers, DOCS_CSP)
    for path in ("/docsx", "/static-docs/swagger-ui-bundle.js", "/openapi.json", "/"):
        assert c.get(path).headers["content-security-policy"] == CSP, path


def test_the_docs_policy_names_no_other_host_and_allows_inline_script_only_by_hash() -> None:
    directives = {name: sources.split() for name, sources in
                  (d.strip().split(" ", 1) for d in DOCS_CSP.split(";"))}
    for sources in directives.values():  # keywords and hashes ('...') and two schemes, never a host
        assert all(s.startswith("'") or s in ("data:", "blob:") for s in sources), sources
    scripts = directives["script-src"]
    assert scripts[0] == "'self'" and len(scripts) > 1
    assert all(s.startswith("'sha256-") for s in scripts[1:])  # no 'unsafe-inline', no 'unsafe-eval'
    assert directives["default-src"] == ["'self'"]
    assert directives["frame-ancestors"] == ["'none'"]


def test_installing_after_the_first_request_is_refused() -> None:
    app = FastAPI()
    TestClient(app).get("/")
    with pytest.raises(RuntimeError):
        install_security(app, Settings())


# ---------------------------------------------------------------------------------------- body cap


def test_declared_length_over_the_cap_is_refused_before_the_app_runs() -> None:
    response = client(max_body_bytes=2048).post("/api/raw", content=b"x" * 2049)
    assert response.status_code == 413
    assert response.json()["error"]["type"] == "payload_too_large"
    assert_security_headers(response.headers)


def test_a_body_at_the_cap_is_accepted() -> None:
    response = client(max_body_bytes=2048).post("/api/raw", content=b"x" * 2048)
    assert response.status_code == 200
    assert response.json() == {"bytes": 2048}


def test_chunked_upload_without_length_is_cut_off_at_the_cap() -> None:
    sent: list[int] = []

    async def chunks() -> AsyncIterator[bytes]:
        for i in range(1000):  # 1000 KiB offered, the cap is 4 KiB
            sent.append(i)
            yield b"y" * 1024

    async def upload() -> httpx.Response:
        transport = httpx.ASGITransport(app=tiny_app(max_body_bytes=4096))  # streams the body lazily
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as c:
            return await c.post("/api/raw", content=chunks())

    response = asyncio.run(upload())
    assert response.status_code == 413  # rendered by the app's HTTP error handler (FastAPI's, here)
    assert "larger than 4096 bytes" in response.text
    assert "content-length" not in response.request.headers
    assert len(sent) <= 6, "the body was read past the cap"


def test_chunked_json_body_over_the_cap_is_413_not_400() -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"text": "'
        for _ in range(10):
            yield b"z" * 1024
        yield b'"}'

    response = client(max_body_bytes=4096).post(
        "/api/echo", content=chunks(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413


# ---------------------------------------------------------------------------------------- API key


def test_without_a_configured_key_the_api_is_open() -> None:
    assert client().post("/api/echo", json={"text": "hi"}).status_code == 200


@pytest.mark.parametrize(
    "authorization",
    [None, "", "Bearer", "Bearer ", "Bearer wrong", f"Basic {KEY}", f"Bearer {KEY}x", f"Bearer {KEY[:-1]}"],
)
def test_missing_or_wrong_key_is_401(authorization: str | None) -> None:
    headers = {} if authorization is None else {"Authorization": authorization}
    c = client(api_key=KEY)
    for method, path in (("POST", "/api/echo"), ("GET", "/v1/models"), ("GET", "/api/nowhere"),
                         ("GET", "/api"), ("GET", "/api/echo/")):
        response = c.request(method, path, headers=headers, json={"text": "hi"})
        assert response.status_code == 401, (method, path)
        assert response.json()["error"]["type"] == "unauthorized"
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert_security_headers(response.headers)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER"])
def test_the_right_key_opens_the_api(scheme: str) -> None:
    c = client(api_key=KEY)
    headers = {"Authorization": f"{scheme} {KEY}"}
    assert c.post("/api/echo", json={"text": "hi"}, headers=headers).json() == {"chars": 2}
    assert c.get("/v1/models", headers=headers).status_code == 200


def test_health_page_and_schema_stay_open_with_a_key() -> None:
    c = client(api_key=KEY)
    for path in ("/healthz", "/", "/openapi.json", "/docs"):
        assert c.get(path).status_code == 200, path


def test_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FORUMQA_API_KEY", KEY)
    app = FastAPI()

    @app.get("/api/ping")
    def ping() -> dict[str, bool]:
        return {"pong": True}

    install_security(app, Settings())
    c = TestClient(app)
    assert c.get("/api/ping").status_code == 401
    assert c.get("/api/ping", headers={"Authorization": f"Bearer {KEY}"}).status_code == 200


# ---------------------------------------------------------------------------------------- rate limit


def test_token_bucket_refills_at_the_configured_rate() -> None:
    now = [1000.0]
    bucket = TokenBucket(6, clock=lambda: now[0])  # 6 a minute: one token every 10 s
    assert [bucket.take("a") for _ in range(6)] == [0.0] * 6
    assert bucket.take("a") == pytest.approx(10.0)
    assert bucket.take("b") == 0.0  # clients are independent
    now[0] += 10.0
    assert bucket.take("a") == 0.0
    assert bucket.take("a") > 0


def test_token_bucket_memory_is_bounded() -> None:
    bucket = TokenBucket(60, max_keys=100)
    for i in range(1000):
        bucket.take(f"10.0.{i // 256}.{i % 256}")
    assert len(bucket) == 100


def test_rate_limit_answers_429_with_retry_after() -> None:
    c = client(rate_limit_per_minute=3)
    statuses = [c.post("/api/echo", json={"text": "hi"}).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    response = c.get("/v1/models")
    assert response.status_code == 429
    assert response.json()["error"]["type"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 20
    assert_security_headers(response.headers)
    assert c.get("/healthz").status_code == 200  # health checks are never limited


def test_rate_limit_is_per_client_ip() -> None:
    app = tiny_app(rate_limit_per_minute=1)
    first = TestClient(app, client=("10.0.0.1", 1000))
    second = TestClient(app, client=("10.0.0.2", 1000))
    assert first.get("/v1/models").status_code == 200
    assert first.get("/v1/models").status_code == 429
    assert second.get("/v1/models").status_code == 200


def test_rate_limit_counts_requests_with_a_wrong_key() -> None:
    c = client(rate_limit_per_minute=2, api_key=KEY)
    bad = {"Authorization": "Bearer guess"}
    assert [c.get("/v1/models", headers=bad).status_code for _ in range(3)] == [401, 401, 429]


# ---------------------------------------------------------------------------------------- CORS


def test_cors_is_off_by_default() -> None:
    c = client()
    response = c.get("/v1/models", headers={"Origin": "https://evil.example"})
    assert "access-control-allow-origin" not in response.headers
    preflight = c.options("/api/echo", headers={"Origin": "https://evil.example",
                                                 "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_cors_allow_list() -> None:
    c = client(cors_origins=["https://chat.example"], api_key=KEY)
    preflight = c.options("/api/echo", headers={
        "Origin": "https://chat.example", "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization, content-type"})
    assert preflight.status_code == 200  # answered before the key check
    assert preflight.headers["access-control-allow-origin"] == "https://chat.example"
    denied = c.get("/v1/models", headers={"Origin": "https://evil.example",
                                          "Authorization": f"Bearer {KEY}"})
    assert "access-control-allow-origin" not in denied.headers
    allowed = c.get("/v1/models", headers={"Origin": "https://chat.example"})
    assert allowed.status_code == 401  # the browser can read the 401 ...
    assert allowed.headers["access-control-allow-origin"] == "https://chat.example"
    assert "access-control-allow-credentials" not in allowed.headers


# ---------------------------------------------------------------------------------------- OpenAPI


def test_openapi_documents_the_middleware_answers() -> None:
    plain = client().get("/openapi.json").json()
    echo = plain["paths"]["/api/echo"]["post"]
    assert "413" in echo["responses"]
    assert "401" not in echo["responses"] and "429" not in echo["responses"]
    assert "securitySchemes" not in plain.get("components", {})
    assert "413" not in plain["paths"]["/v1/models"]["get"]["responses"]  # no body, no 413

    guarded = client(api_key=KEY, rate_limit_per_minute=10).get("/openapi.json").json()
    models = guarded["paths"]["/v1/models"]["get"]
    assert {"401", "429"} <= set(models["responses"])
    assert models["security"] == [{"apiKey": []}]
    assert guarded["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"
    assert "security" not in guarded["paths"]["/healthz"]["get"]
    assert "401" not in guarded["paths"]["/healthz"]["get"]["responses"]


# ---------------------------------------------------------------------------------------- behind a proxy


def test_rate_limit_counts_the_client_a_trusted_proxy_forwards() -> None:
    """Under uvicorn's defaults (loopback is a trusted proxy) the bucket is the forwarded client's,
    taken as the rightmost untrusted X-Forwarded-For entry: entries a client adds itself do not help."""
    with LiveServer(tiny_app(rate_limit_per_minute=1)) as server, httpx.Client(base_url=server.url) as c:

        def status(forwarded_for: str) -> int:
            return c.get("/v1/models", headers={"X-Forwarded-For": forwarded_for}).status_code

        assert status("203.0.113.7") == 200
        assert status("203.0.113.7") == 429
        assert status("198.51.100.9") == 200  # another client behind the same proxy
        assert status("192.0.2.1, 198.51.100.9") == 429  # a spoofed entry on the left changes nothing
