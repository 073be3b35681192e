"""Schemathesis over every operation with authentication: the app has accounts, and every generated case
is sent as a signed-in user, by token (alice) or by session cookie with its CSRF proof (bea). No 5xx,
responses as documented, invalid data refused, and (checked on every response) nothing of a collection
the user may not read."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import schemathesis
from accounts_support import BETA_ID, PASSWORDS, make_users
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api.main import create_app
from rag.accounts import Accounts
from rag.accounts.sqlite import SqliteRecords
from rag.config import Settings
from rag.qa import ForumQA

MAX_EXAMPLES = 25  # per operation and phase: signing in runs argon2 for every generated password

_schema_app = create_app(Settings())
CONFIG = SchemathesisConfig.from_dict({
    "checks": {
        "negative_data_rejection": {"expected-statuses": [
            400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]},
        "positive_data_acceptance": {"enabled": False},
    },
})
schema = schemathesis.openapi.from_dict(_schema_app.openapi(), config=CONFIG)
schema.app = _schema_app

cases: Counter[str] = Counter()


@dataclass
class Credentials:
    app: FastAPI
    headers: dict[str, dict[str, str]]  # by who: the headers each case is sent with
    cookies: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def authenticated(collections_settings: Settings, collections_qa: ForumQA,
                  tmp_path_factory: pytest.TempPathFactory) -> Iterator[Credentials]:
    path = tmp_path_factory.mktemp("schemathesis-accounts") / "accounts.sqlite3"
    accounts = Accounts(SqliteRecords(path))
    make_users(accounts)
    app = create_app(collections_settings.model_copy(update={"accounts_file": path}), collections_qa)
    _, token = accounts.create_token("alice")
    with TestClient(app) as client:
        signed = client.post("/api/session", json={"username": "bea", "password": PASSWORDS["bea"]})
        assert signed.status_code == 200
        yield Credentials(
            app,
            {"alice": {"Authorization": f"Bearer {token}"}, "bea": {"X-CSRF-Token": signed.json()["csrf"]}},
            {"alice": {}, "bea": {"forumqa_session": signed.cookies["forumqa_session"]}},
        )
    print(f"\nschemathesis with authentication: {sum(cases.values())} cases over {len(cases)} operations")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_api_conforms_to_its_schema_when_signed_in(
    case: schemathesis.Case, authenticated: Credentials
) -> None:
    who = "alice" if cases[case.operation.label] % 2 == 0 else "bea"
    cases[case.operation.label] += 1
    if case.path == "/api/session" and case.method.upper() == "DELETE":
        who = "alice"  # bea's session must outlive the run
    headers = {**(case.headers or {}), **authenticated.headers[who]}
    response = case.call_and_validate(app=authenticated.app, headers=headers,
                                      cookies=authenticated.cookies[who])
    if case.path != "/api/session":  # signing in with a generated password is a 401 (or 429) of its own
        assert response.status_code != 401, (who, case.method, case.path, response.text[:200])
    if who == "alice":
        assert BETA_ID not in response.text and "Rendl" not in response.text
