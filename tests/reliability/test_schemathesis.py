"""Property-based fuzzing of every operation of the app's own OpenAPI schema (schemathesis).

Schemathesis generates valid and invalid requests from the OpenAPI schema; each must leave the server
without a 5xx, with a response that matches the documented schema (status, content type, body,
headers), and invalid data must be rejected with a 4xx. Examples are bounded per operation so the
whole run stays around a minute on two cores.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest
import schemathesis
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.config import SchemathesisConfig

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA

MAX_EXAMPLES = 50  # per operation and generation phase

# pytest parametrizes at import time, before fixtures exist, so the schema is read from an app that is
# never started (schemathesis' fixture-based loader fails on pytest 9: it sets Node._nodeid). The
# cases are sent to the app under test, over the session's ForumQA (fixture ``app_under_test``).
_schema_app = create_app(Settings())
CONFIG = SchemathesisConfig.from_dict({
    "checks": {
        # 413 (body over FORUMQA_MAX_BODY_BYTES) is a rejection too; the rest are schemathesis' defaults.
        "negative_data_rejection": {"expected-statuses": [
            400, 401, 403, 404, 405, 406, 409, 413, 415, 422, 428, 429, "5xx"]},
        # Off: the schema cannot say that a question must not be blank or longer than the configured
        # FORUMQA_MAX_QUESTION_CHARS, so schema-valid "" or "   " rightly get a 422.
        "positive_data_acceptance": {"enabled": False},
    },
})
schema = schemathesis.openapi.from_dict(_schema_app.openapi(), config=CONFIG)
schema.app = _schema_app  # selects the in-process ASGI transport; every call names its app

cases: Counter[str] = Counter()


@pytest.fixture(scope="module")
def app_under_test(
    settings: Settings, qa: ForumQA, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[FastAPI]:
    # Its own folder for the pid file (the app's lifespan lists the test process there) and for the
    # feedback the fuzzer posts: feedback is on, so its route is fuzzed past the 403 of a server without it.
    fuzz = {"index_dir": tmp_path_factory.mktemp("fuzz"), "feedback": True, "feedback_per_minute": 10_000}
    app = create_app(settings.model_copy(update=fuzz), qa)
    with TestClient(app) as client:
        assert client.get("/openapi.json").json() == schema.raw_schema  # the schema it serves
    yield app
    total = sum(cases.values())
    per_operation = ", ".join(f"{label}: {n}" for label, n in sorted(cases.items()))
    print(f"\nschemathesis: {total} cases over {len(cases)} operations ({per_operation})")


@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
def test_api_conforms_to_its_schema(case: schemathesis.Case, app_under_test: FastAPI) -> None:
    cases[case.operation.label] += 1
    case.call_and_validate(app=app_under_test)
