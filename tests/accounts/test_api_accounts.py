"""Accounts over HTTP: sign-in and its cookie, CSRF, wrong passwords, tokens, roles, uploads into
collections, the audit log, and a reader of collection alpha never seeing collection beta anywhere."""

from __future__ import annotations

import json
import os
import time

import pytest
from accounts_support import (
    ALPHA_ID,
    ALPHA_MARKS,
    BETA_ID,
    BETA_MARKS,
    BETA_VERBATIM,
    PASSWORDS,
    REPORT_ID,
    Site,
)
from fastapi.testclient import TestClient

from api.main import create_app
from rag.accounts import Accounts
from rag.accounts.sqlite import SqliteRecords
from rag.config import Settings
from rag.qa import ForumQA


def assert_hidden(text: str, marks: tuple[str, ...] = BETA_MARKS, asked: str = "") -> None:
    """No mark of the hidden collection in ``text``, but for the question ``asked`` echoed back."""
    if asked:
        text = text.replace(json.dumps(asked)[1:-1], "").replace(asked, "")
    for mark in marks:
        assert mark.lower() not in text.lower(), f"{mark!r} leaked: {text[:300]}"


def sign_in(client: TestClient, user: str, password: str):  # type: ignore[no-untyped-def]
    return client.post("/api/session", json={"username": user, "password": password})


# ---------------------------------------------------------------------------------------- modes


def test_without_accounts_the_api_stays_open(collections_settings: Settings, collections_qa: ForumQA,
                                              tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = collections_settings.model_copy(update={"accounts_file": tmp_path / "none.sqlite3"})
    with TestClient(create_app(settings, collections_qa)) as client:
        assert client.get("/api/config").json()["accounts"] is False
        ids = {d["id"] for d in client.get("/api/documents").json()["documents"]}
        assert {ALPHA_ID, BETA_ID, REPORT_ID} <= ids
        assert client.get("/api/session").json() == {**client.get("/api/session").json(), "accounts": False,
                                                     "signed_in": False, "via": "open"}
        # The first account switches the running server to accounts within the cache's time.
        Accounts(SqliteRecords(settings.accounts_file)).add_user("root", "admin", "root-pass-1")  # type: ignore[arg-type]
        time.sleep(2 * settings.auth_cache_seconds + 0.3)
        assert client.get("/api/documents").status_code == 401
        assert client.get("/api/config").json()["accounts"] is True


def test_anonymous_requests_get_401_once_accounts_exist(site: Site) -> None:
    client = TestClient(site.client.app)
    chat = {"model": "forum-qa", "messages": [{"role": "user", "content": "When was the forum?"}]}
    for method, path, body in [("POST", "/api/answer", {"question": "When was the forum?"}),
                               ("POST", "/api/search", {"query": "crane"}), ("GET", "/api/documents", None),
                               ("GET", f"/api/documents/{ALPHA_ID}", None),
                               ("GET", "/api/index/status", None),
                               ("GET", "/v1/models", None), ("POST", "/v1/chat/completions", chat),
                               ("GET", "/api/audit", None)]:
        response = client.request(method, path, json=body)
        assert response.status_code == 401, (path, response.text)
        assert "sign in" in response.json()["error"]["message"]
    assert client.get("/api/config").json()["accounts"] is True
    assert client.get("/api/session").json()["signed_in"] is False
    for path in ("/", "/healthz", "/static/app.js"):
        assert client.get(path).status_code == 200


def test_a_collection_granted_to_everyone_is_read_anonymously(
    collections_settings: Settings, collections_qa: ForumQA, tmp_path  # type: ignore[no-untyped-def]
) -> None:
    path = tmp_path / "accounts.sqlite3"
    accounts = Accounts(SqliteRecords(path))
    accounts.add_user("root", "admin", "root-pass-1")
    accounts.add_collection("alpha")
    accounts.grant("*", "alpha", "read")
    with TestClient(create_app(collections_settings.model_copy(update={"accounts_file": path}),
                               collections_qa)) as client:
        docs = client.get("/api/documents").json()["documents"]
        assert [d["id"] for d in docs] == [ALPHA_ID]
        answer = client.post("/api/answer", json={"question": BETA_VERBATIM}).json()
        assert {c["doc_id"] for c in answer["citations"]} <= {ALPHA_ID}
        assert_hidden(json.dumps(answer), asked=BETA_VERBATIM)
        crane = client.post("/api/answer", json={"question": "How many containers did the crane lift?"})
        crane = crane.json()
        assert "912" in crane["answer"]
        assert client.get(f"/api/documents/{REPORT_ID}").status_code == 404
        upload = client.post("/api/documents", files={"file": ("n.txt", b"N\n\nText.\n", "text/plain")})
        assert upload.status_code == 401


# ---------------------------------------------------------------------------------------- sign-in


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_ends_it(site: Site) -> None:
    client = TestClient(site.client.app)
    response = client.post("/api/session", json={"username": "Alice", "password": PASSWORDS["alice"]})
    assert response.status_code == 200, response.text
    cookie = response.headers["set-cookie"]
    assert "forumqa_session=" in cookie and "HttpOnly" in cookie and "SameSite=strict" in cookie.replace(
        "Strict", "strict")
    assert "Path=/api" in cookie and "Max-Age=" in cookie and "Secure" not in cookie  # plain http here
    body = response.json()
    assert body["user"] == "alice" and body["role"] == "reader" and body["read"] == ["alpha"]
    assert body["write"] == [] and body["csrf"] and body["expires"] > time.time()
    assert PASSWORDS["alice"] not in response.text
    who = client.get("/api/session").json()
    assert who["user"] == "alice" and who["csrf"] == body["csrf"]
    assert client.get("/api/documents").status_code == 200
    out = client.delete("/api/session", headers={"X-CSRF-Token": body["csrf"]})
    assert out.status_code == 200 and out.json()["signed_in"] is False
    assert client.get("/api/documents").status_code == 401


def test_https_makes_the_cookie_secure(site: Site) -> None:
    client = TestClient(site.client.app, base_url="https://testserver")
    response = client.post("/api/session", json={"username": "alice", "password": PASSWORDS["alice"]})
    assert "Secure" in response.headers["set-cookie"]


def test_sessions_expire(site: Site) -> None:
    client = site.signed_in("alice")
    key = client.cookies.get("forumqa_session")
    assert key
    with site.accounts.records._tx(write=True) as run:
        run("UPDATE forumqa_sessions SET expires = ? WHERE user_name = 'alice'", time.time() - 1)
    time.sleep(2 * site.settings.auth_cache_seconds + 0.3)
    assert client.get("/api/documents").status_code == 401


def test_a_state_changing_request_without_the_csrf_proof_is_refused(site: Site) -> None:
    client = site.signed_in("ed")
    proof = client.headers.pop("X-CSRF-Token")
    for method, path, kwargs in [
        ("POST", "/api/answer", {"json": {"question": "crane"}}),
        ("POST", "/api/documents", {"files": {"file": ("x.txt", b"X Note\n\nSome text.\n", "text/plain")}}),
        ("DELETE", f"/api/documents/{ALPHA_ID}", {}),
        ("DELETE", "/api/session", {}),
    ]:
        refused = client.request(method, path, **kwargs)
        assert refused.status_code == 403, (path, refused.text)
        assert refused.json()["error"]["type"] == "csrf"
        wrong = client.request(method, path, headers={"X-CSRF-Token": proof[:-1] + "0"}, **kwargs)
        assert wrong.status_code == 403
    assert client.get("/api/documents").status_code == 200  # reading needs no proof
    proven = client.post("/api/answer", json={"question": "crane"}, headers={"X-CSRF-Token": proof})
    assert proven.status_code == 200
    assert ALPHA_ID in {d["id"] for d in client.get("/api/documents").json()["documents"]}  # nothing removed


def test_wrong_passwords_meet_a_growing_wait_that_says_so(site: Site) -> None:
    site.accounts.add_user("carl", "reader", "carl-pass-1")
    client = TestClient(site.client.app)
    answers = [client.post("/api/session", json={"username": "carl", "password": f"wrong-{i}"})
               for i in range(5)]
    assert [a.status_code for a in answers] == [401] * 5
    assert "locked for 15 seconds" in answers[-1].json()["error"]["message"]
    # Locked now: even the right password waits, and the answer says how long.
    locked = client.post("/api/session", json={"username": "carl", "password": "carl-pass-1"})
    assert locked.status_code == 429
    assert "locked" in locked.json()["error"]["message"] and int(locked.headers["retry-after"]) >= 10
    # An unknown name gets the same answers (no telling which names exist).
    unknown = client.post("/api/session", json={"username": "nobody-here", "password": "whatever1"})
    assert unknown.status_code == 401 and unknown.json()["error"]["message"] == "wrong user name or password"
    assert [e.action for e in site.accounts.audit_log() if e.target == "carl"][-1] == "signin.locked"
    # After the wait the next wrong password doubles it.
    with site.accounts.records._tx(write=True) as run:
        run("UPDATE forumqa_signin_failures SET last_failure = ? WHERE name = 'carl'", time.time() - 16)
    again = client.post("/api/session", json={"username": "carl", "password": "wrong-again"})
    assert "locked for 30 seconds" in again.json()["error"]["message"]
    with site.accounts.records._tx(write=True) as run:
        run("UPDATE forumqa_signin_failures SET last_failure = ? WHERE name = 'carl'", time.time() - 31)
    assert sign_in(client, "carl", "carl-pass-1").status_code == 200


def test_sign_in_takes_json_only(site: Site) -> None:
    client = TestClient(site.client.app)
    form = client.post("/api/session", data={"username": "alice", "password": PASSWORDS["alice"]})
    assert form.status_code in (415, 422)


def test_disabled_users_and_changed_passwords_end_sessions_and_tokens(site: Site) -> None:
    site.accounts.add_user("dora", "reader", "dora-pass-1")
    site.accounts.grant("dora", "alpha", "read")
    client = TestClient(site.client.app)
    assert sign_in(client, "dora", "dora-pass-1").status_code == 200
    token = site.token("dora")
    assert client.get("/api/documents").status_code == 200
    assert TestClient(site.client.app).get("/api/documents", headers=token).status_code == 200
    site.accounts.set_disabled("dora", True)
    time.sleep(2 * site.settings.auth_cache_seconds + 0.3)
    assert client.get("/api/documents").status_code == 401
    assert TestClient(site.client.app).get("/api/documents", headers=token).status_code == 401
    refused = client.post("/api/session", json={"username": "dora", "password": "dora-pass-1"})
    assert refused.status_code == 403 and "disabled" in refused.text
    site.accounts.set_disabled("dora", False)
    assert sign_in(client, "dora", "dora-pass-1").status_code == 200
    site.accounts.set_password("dora", "dora-pass-2")
    time.sleep(2 * site.settings.auth_cache_seconds + 0.3)
    assert client.get("/api/documents").status_code == 401


# ---------------------------------------------------------------------------------------- tokens


def test_tokens_work_as_bearer_and_as_an_openai_api_key_until_revoked(site: Site) -> None:
    import openai
    from server_support import LiveServer

    name, token = site.accounts.create_token("alice", "alice-script")
    headers = {"Authorization": f"Bearer {token}"}
    client = TestClient(site.client.app)
    assert [d["id"] for d in client.get("/api/documents", headers=headers).json()["documents"]] == [ALPHA_ID]
    no_csrf = client.post("/api/answer", json={"question": "crane"}, headers=headers)  # no CSRF needed
    assert no_csrf.status_code == 200
    with LiveServer(site.client.app) as server, openai.OpenAI(base_url=f"{server.url}/v1", api_key=token,
                                                             max_retries=0, timeout=60) as oai:
        reply = oai.chat.completions.create(model="forum-qa",
                                            messages=[{"role": "user", "content": BETA_VERBATIM}])
        assert_hidden(reply.model_dump_json(), asked=BETA_VERBATIM)
        site.accounts.revoke_token(name)
        time.sleep(2 * site.settings.auth_cache_seconds + 0.3)
        with pytest.raises(openai.AuthenticationError):
            oai.models.list()
    assert client.get("/api/documents", headers=headers).status_code == 401
    with site.accounts.records._tx() as run:  # only the token's sha256 was ever kept
        assert token not in json.dumps(run("SELECT * FROM forumqa_tokens").fetchall())


def test_a_wrong_token_is_401_and_never_falls_back_to_the_cookie(site: Site) -> None:
    client = site.signed_in("alice")
    assert client.get("/api/documents", headers={"Authorization": "Bearer fqa_nothing"}).status_code == 401


# ---------------------------------------------------------------------------------------- roles and uploads


NOTE = b"Gamma Dock Notice\n\nThe gamma dock reopens on 3 April 2032 after repairs to its lock gates.\n"


def test_editors_upload_into_their_collections_and_everything_is_audited(site: Site) -> None:
    ed = site.signed_in("ed")
    session = ed.get("/api/session").json()
    assert session["role"] == "editor" and session["write"] == ["alpha"]
    assert ed.get("/api/config").json()["uploads"] is True
    refused = ed.post("/api/documents", data={"collection": "beta"},
                      files={"file": ("g.txt", NOTE, "text/plain")})
    assert refused.status_code == 403
    stored = ed.post("/api/documents", data={"collection": "alpha"},
                     files={"file": ("g.txt", NOTE, "text/plain")})
    assert stored.status_code == 202, stored.text
    doc = stored.json()["document"]
    assert doc["collection"] == "alpha" and doc["id"] == "gamma-dock-notice"
    meta = json.loads((site.settings.corpus_dir / "gamma-dock-notice.meta.json").read_text())
    assert meta["collection"] == "alpha"
    alice = site.signed_in("alice")
    assert alice.get("/api/config").json()["uploads"] is False
    assert alice.post("/api/documents", files={"file": ("h.txt", NOTE, "text/plain")}).status_code == 403
    assert alice.delete(f"/api/documents/{ALPHA_ID}").status_code == 403
    assert ed.delete(f"/api/documents/{REPORT_ID}").status_code == 404  # default: ed may not even read it
    assert ed.delete(f"/api/documents/{BETA_ID}").status_code == 404
    removed = site.client.app.state.service.store.remove("gamma-dock-notice")  # not served yet: by the store
    assert removed.collection == "alpha"
    admin = site.signed_in("admin")
    log = admin.get("/api/audit").json()["entries"]
    added = [e for e in log if e["action"] == "document.add" and e["target"] == "gamma-dock-notice"]
    assert added and added[-1]["actor"] == "ed" and "alpha" in added[-1]["detail"]
    assert alice.get("/api/audit").status_code == 403
    assert all(PASSWORDS[u] not in json.dumps(log) for u in PASSWORDS)


# ---------------------------------------------------------------------------------------- isolation


QUESTIONS = [
    BETA_VERBATIM,
    "When did the Beta reactor coolant pump fail?",
    "Who replaced the seal with part QX-77?",
    "What did the inspection find in the secondary loop valves?",
    "Tell me about the Beta Reactor Log",
]


@pytest.mark.parametrize("via", ["session", "token"])
def test_a_reader_of_alpha_never_sees_beta(site: Site, via: str) -> None:
    """In answers (fresh and cached), citations, follow-ups, search, the list, the viewer, the status,
    /v1 (streamed or not) and the answer stream: nothing of beta, even for a question quoting it."""
    admin = site.signed_in("admin")
    for question in QUESTIONS:  # the admin asks first: beta's answers are cached now
        seen = admin.post("/api/answer", json={"question": question}).json()
        assert BETA_ID in {c["doc_id"] for c in seen["citations"]}, question
    if via == "session":
        alice = site.signed_in("alice")
    else:
        alice = TestClient(site.client.app, headers=site.token("alice"))
    for question in QUESTIONS:
        for _ in range(2):  # the second is served from the cache
            answer = alice.post("/api/answer", json={"question": question})
            assert answer.status_code == 200
            assert {c["doc_id"] for c in answer.json()["citations"]} <= {ALPHA_ID}
            assert_hidden(answer.text, asked=question)
        follow = alice.post("/api/answer", json={"question": "Who fixed it?", "history": [
            {"role": "user", "content": question}, {"role": "assistant", "content": "I do not know."}]})
        assert_hidden(follow.text)
        search = alice.post("/api/search", json={"query": question, "top_k": 20})
        assert_hidden(search.text)
        stream = alice.post("/api/answer/stream", json={"question": question})
        assert_hidden(stream.text, asked=question)
        chat = {"model": "forum-qa", "messages": [{"role": "user", "content": question}]}
        assert_hidden(alice.post("/v1/chat/completions", json=chat).text, asked=question)
        streamed = alice.post("/v1/chat/completions", json={**chat, "stream": True}).text
        assert_hidden(streamed, asked=question)
    assert alice.post("/api/answer", json={"question": "x?", "doc_ids": [BETA_ID]}).status_code == 422
    def refusal(doc_id: str) -> str:
        body = {"question": "x?", "doc_ids": [doc_id]}
        return str(alice.post("/api/answer", json=body).json()["error"]["message"])

    assert refusal(BETA_ID) == refusal("no-such").replace("no-such", BETA_ID)
    docs = alice.get("/api/documents").json()["documents"]
    assert [d["id"] for d in docs] == [ALPHA_ID] and docs[0]["collection"] == "alpha"
    missing = alice.get(f"/api/documents/{BETA_ID}")
    assert missing.status_code == 404
    assert missing.json() == alice.get("/api/documents/no-such-doc").json() | {
        "error": {**missing.json()["error"], "message": missing.json()["error"]["message"]}}
    status = alice.get("/api/index/status")
    assert status.status_code == 200 and status.json()["documents"] == 1
    assert_hidden(status.text)
    # And the other way round: bea reads beta only.
    bea = site.signed_in("bea")
    asked = "How many containers did the Alpha crane lift?"
    answer = bea.post("/api/answer", json={"question": asked})
    assert_hidden(answer.text, ALPHA_MARKS, asked=asked)
    assert BETA_VERBATIM.split()[1] in bea.post("/api/answer", json={"question": BETA_VERBATIM}).text


def test_feedback_carries_the_user_and_its_export_keeps_to_what_one_may_read(site: Site, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from rag.cli import main

    bea = site.signed_in("bea")
    answer = bea.post("/api/answer", json={"question": BETA_VERBATIM}).json()
    posted = bea.post("/api/feedback", json={"question": BETA_VERBATIM, "answer_id": answer["answer_id"],
                                             "answer": answer["answer"], "verdict": answer["verdict"],
                                             "rating": "up"})
    assert posted.status_code == 201, posted.text
    env = {"corpus_dir": str(site.settings.corpus_dir), "index_dir": str(site.settings.index_dir)}
    os.environ["FORUMQA_ACCOUNTS_FILE"] = str(site.settings.accounts_file)
    try:
        out = tmp_path / "all.jsonl"
        assert main(["feedback", "export", "--index-dir", env["index_dir"], "--out", str(out)]) == 0
        records = [json.loads(line) for line in out.read_text().splitlines()]
        mine = [r for r in records if r["question"] == BETA_VERBATIM]
        assert mine and mine[-1]["user"] == "bea"
        assert main(["feedback", "export", "--index-dir", env["index_dir"], "--as", "alice", "--out",
                     str(out)]) == 0
        assert BETA_VERBATIM not in out.read_text()
    finally:
        del os.environ["FORUMQA_ACCOUNTS_FILE"]


def test_no_password_session_key_or_token_reaches_a_log(site: Site, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    caplog.set_level(logging.DEBUG)
    client = TestClient(site.client.app)
    sign_in(client, "alice", "a-wrong-password-77")
    sign_in(client, "a-password-typed-as-a-name", "x" * 8)
    signed = sign_in(client, "alice", PASSWORDS["alice"])
    key = signed.cookies["forumqa_session"]
    headers = site.token("alice")
    client.post("/api/answer", json={"question": "crane"}, headers={"X-CSRF-Token": signed.json()["csrf"]})
    TestClient(site.client.app).get("/api/documents", headers=headers)
    TestClient(site.client.app).get("/api/documents", headers={"Authorization": "Bearer fqa_wrong-token-55"})
    logged = caplog.text
    assert "signed in" in logged  # the log says what happened...
    for secret in ("a-wrong-password-77", "a-password-typed-as-a-name", PASSWORDS["alice"], key,
                   headers["Authorization"].split()[1], "fqa_wrong-token-55", signed.json()["csrf"]):
        assert secret not in logged  # ...never with what proves who one is
