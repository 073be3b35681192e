"""A fuzz of 1,000 mixed requests from three users with different grants (by session and by token): no
response ever names or quotes a document of a collection its user may not read."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from accounts_support import ALPHA, ALPHA_ID, BETA, BETA_ID, PASSWORDS, REPORT_ID, Site, make_users
from fastapi.testclient import TestClient

from api.main import create_app
from rag.accounts import Accounts
from rag.accounts.sqlite import SqliteRecords
from rag.config import Settings
from rag.qa import ForumQA

REQUESTS = 1000
REPORT_TEXT = "The Korea Foundation cosponsored the Third Korea-Russia Forum on September 27-28"
COLLECTION_OF = {ALPHA_ID: "alpha", BETA_ID: "beta", REPORT_ID: "default"}
# Words each document alone holds.
MARKS = {
    ALPHA_ID: ("alpha-harbor-memo", "Alpha Harbor Memo", "Mira Kovac", "912 containers", "northern quay"),
    BETA_ID: ("beta-reactor-log", "Beta Reactor Log", "Rendl", "QX-77", "secondary loop valves"),
    REPORT_ID: ("third-korea-russia-forum", "Korea Foundation", "Diplomatic Academy", "Nakhodka"),
}
QUESTIONS = [
    "How many containers did the crane lift?", "Who was the crane operator?", "What failed in the reactor?",
    "Who replaced the seal?", "When did the forum take place?", "Who led the Russian delegation?",
    "What did participants agree about terrorism?", "Tell me about the documents", "What part was used?",
    "When did the pump fail?", "What does the harbor handle?", "포럼은 언제 열렸습니까?",
    *[s.strip() + "." for text in (ALPHA, BETA) for s in text.split("\n\n")[1].split(". ") if s.strip()],
    REPORT_TEXT,
]


@pytest.fixture(scope="module")
def fuzz_site(collections_settings: Settings, collections_qa: ForumQA,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    path = tmp_path_factory.mktemp("fuzz-accounts") / "accounts.sqlite3"
    accounts = Accounts(SqliteRecords(path))
    make_users(accounts)
    accounts.add_user("dan", "reader", "dan-pass-123")
    accounts.grant("dan", "default", "read")
    accounts.grant("dan", "beta", "read")
    settings = collections_settings.model_copy(update={"accounts_file": path})
    with TestClient(create_app(settings, collections_qa)) as client:
        yield Site(settings, accounts, client)


def leaks(text: str, readable: set[str], echoed: list[str]) -> list[str]:
    """Marks (and ids) of documents outside ``readable`` in ``text``, but for the text the request itself
    sent (echoed back as the question)."""
    for said in sorted(echoed, key=len, reverse=True):
        text = text.replace(json.dumps(said, ensure_ascii=False)[1:-1], "").replace(said, "")
    found = []
    for doc_id, marks in MARKS.items():
        if COLLECTION_OF[doc_id] in readable:
            continue
        found += [m for m in marks if m.lower() in text.lower()]
    return found


def ids_in(value: Any) -> set[str]:
    """Every document id a JSON value names (doc_id and id fields, lists of ids)."""
    found: set[str] = set()
    if isinstance(value, dict):
        for key, item in value.items():
            if key in ("doc_id", "id") and isinstance(item, str):
                found.add(item)
            found |= ids_in(item)
    elif isinstance(value, list):
        for item in value:
            found |= {item} if isinstance(item, str) and item in COLLECTION_OF else ids_in(item)
    return found & set(COLLECTION_OF)


def test_a_thousand_mixed_requests_never_show_an_unreadable_document(fuzz_site: Site) -> None:
    rng = random.Random(27)
    def by_token(user: str) -> TestClient:
        return TestClient(fuzz_site.client.app, headers=fuzz_site.token(user))

    # Each user by session (the page's way; the cookie covers /api only) and by token (programs, /v1 too).
    users = {
        "alice": ({"alpha"}, fuzz_site.signed_in("alice"), by_token("alice")),
        "bea": ({"beta"}, fuzz_site.signed_in("bea"), by_token("bea")),
        "dan": ({"default", "beta"}, None, by_token("dan")),
    }
    seen: Counter[str] = Counter()
    statuses: Counter[int] = Counter()
    for n in range(REQUESTS):
        name = rng.choice(list(users))
        readable, session, token = users[name]
        history = [{"role": "user", "content": rng.choice(QUESTIONS)},
                   {"role": "assistant", "content": rng.choice(QUESTIONS)}] if rng.random() < 0.3 else []
        doc_ids = rng.sample(sorted(COLLECTION_OF), rng.randint(1, 3)) if rng.random() < 0.25 else None
        kind = rng.choice(["answer", "answer", "stream", "search", "list", "get", "status", "v1", "v1-stream",
                           "feedback", "config", "session"])
        client = token if session is None or kind.startswith("v1") or rng.random() < 0.3 else session
        question = rng.choice(QUESTIONS)
        body: dict[str, Any] = {"question": question, "history": history, "top_k": rng.randint(1, 8)}
        if doc_ids:
            body["doc_ids"] = doc_ids
        if kind == "answer":
            response = client.post("/api/answer", json=body)
        elif kind == "stream":
            response = client.post("/api/answer/stream", json=body)
        elif kind == "search":
            query = {"query": question, "top_k": rng.randint(1, 20)}
            if doc_ids:
                query["doc_ids"] = doc_ids
            response = client.post("/api/search", json=query)
        elif kind == "list":
            response = client.get("/api/documents")
        elif kind == "get":
            wanted = rng.choice(sorted(COLLECTION_OF))
            response = client.get(f"/api/documents/{wanted}")
        elif kind == "status":
            response = client.get("/api/index/status")
        elif kind in ("v1", "v1-stream"):
            messages = [*history, {"role": "user", "content": question}]
            response = client.post("/v1/chat/completions", json={"model": "forum-qa", "messages": messages,
                                                                 "stream": kind == "v1-stream"})
        elif kind == "feedback":
            rating = {"question": question, "answer_id": "0" * 16, "answer": "a", "verdict": "answered",
                      "rating": "up"}
            response = client.post("/api/feedback", json=rating)
        elif kind == "config":
            response = client.get("/api/config")
        else:
            response = client.get("/api/session")
        seen[kind] += 1
        statuses[response.status_code] += 1
        assert response.status_code < 500, (n, kind, response.text[:300])
        echoed = [question, *(t["content"] for t in history)] if kind in ("answer", "stream", "v1",
                                                                            "v1-stream", "feedback") else []
        if response.status_code == 422 and doc_ids:
            echoed += doc_ids  # "unknown document id(s): ..." repeats the ids the request named
        if kind == "get" and response.status_code == 404:
            echoed.append(wanted)  # "no document with id ...": the same as for an id that does not exist
        found = leaks(response.text, readable, echoed)
        assert not found, (n, name, kind, found, response.text[:400])
        if response.headers.get("content-type", "").startswith("application/json") and kind != "feedback":
            named = ids_in(response.json())
            if response.status_code == 422:
                named -= set(doc_ids or ())
            assert all(COLLECTION_OF[d] in readable for d in named), (n, name, kind, named)
        if kind in ("stream", "v1-stream") and response.status_code == 200:
            for line in re.findall(r"\{.*\}", response.text):
                assert all(COLLECTION_OF[d] in readable for d in ids_in(json.loads(line))), (n, name, kind)
    print(f"\nfuzz: {REQUESTS} requests {dict(seen)}; statuses {dict(statuses)}")
    assert sum(seen.values()) == REQUESTS and statuses[200] > REQUESTS / 2 and not statuses[401]
    assert PASSWORDS  # the users of make_users took part (alice, bea) with dan's token
