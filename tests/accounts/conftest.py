"""Fixtures of the accounts tests: a corpus of three collections (the report in 'default', a memo in
'alpha', a log in 'beta'), its index (MiniLM only, to stay quick), and apps over it with users."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from rag.accounts import Accounts
from rag.accounts.sqlite import SqliteRecords
from rag.config import Settings
from rag.qa import ForumQA

ROOT = Path(__file__).resolve().parents[2]

ALPHA = (
    "Alpha Harbor Memo\n\n"
    "The Alpha harbor crane lifted 912 containers on 4 May 2030. The crane operator was Mira Kovac. "
    "The harbor master approved a second crane for the northern quay. Alpha harbor handles grain and timber "
    "shipments from the inland railway.\n"
)
BETA = (
    "Beta Reactor Log\n\n"
    "The Beta reactor coolant pump failed on 17 June 2031 after 4200 hours of service. Engineer Tomas Rendl "
    "replaced the seal with part QX-77 from the spare stock. The reactor returned to full power two days "
    "later. The inspection found corrosion in the secondary loop valves.\n"
)
#: A question that quotes beta's document word for word.
BETA_VERBATIM = "Engineer Tomas Rendl replaced the seal with part QX-77 from the spare stock."
ALPHA_ID, BETA_ID, REPORT_ID = "alpha-harbor-memo", "beta-reactor-log", "third-korea-russia-forum"
PASSWORDS = {"admin": "admin-pass-1", "alice": "alice-pass-1", "bea": "bea-pass-12", "ed": "ed-pass-123"}
# Words only beta's document holds: none may reach a user who cannot read beta.
BETA_MARKS = ("Beta Reactor", "beta-reactor-log", "Rendl", "QX-77", "coolant", "4200 hours")
ALPHA_MARKS = ("Alpha Harbor", "alpha-harbor-memo", "Mira Kovac", "912 containers")


@pytest.fixture(scope="session")
def collections_corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = tmp_path_factory.mktemp("collections") / "corpus"
    corpus.mkdir()
    for path in (ROOT / "corpus").iterdir():
        shutil.copy(path, corpus / path.name)
        (corpus / path.name).chmod(0o644)
    for name, text, collection in ((ALPHA_ID, ALPHA, "alpha"), (BETA_ID, BETA, "beta")):
        (corpus / f"{name}.txt").write_text(text, encoding="utf-8")
        (corpus / f"{name}.meta.json").write_text(json.dumps({"collection": collection}), encoding="utf-8")
    return corpus


@pytest.fixture(scope="session")
def collections_settings(collections_corpus: Path) -> Settings:
    return Settings(corpus_dir=collections_corpus, index_dir=collections_corpus.parent / "index",
                    embedders=["minilm"], feedback=True, feedback_per_minute=10_000)


@pytest.fixture(scope="session")
def collections_qa(collections_settings: Settings) -> ForumQA:
    qa = ForumQA.open(collections_settings, progress=False)
    assert {ALPHA_ID, BETA_ID, REPORT_ID} <= set(qa.index.documents)
    return qa


def make_users(accounts: Accounts) -> None:
    accounts.add_user("admin", "admin", PASSWORDS["admin"])
    accounts.add_user("alice", "reader", PASSWORDS["alice"])
    accounts.add_user("bea", "reader", PASSWORDS["bea"])
    accounts.add_user("ed", "editor", PASSWORDS["ed"])
    accounts.add_collection("alpha")
    accounts.add_collection("beta")
    accounts.grant("alice", "alpha", "read")
    accounts.grant("bea", "beta", "read")
    accounts.grant("ed", "alpha", "write")


@dataclass
class Site:
    settings: Settings
    accounts: Accounts
    client: TestClient

    def signed_in(self, user: str) -> TestClient:
        """A client of its own, signed in as ``user``, sending the CSRF proof as the page does."""
        client = TestClient(self.client.app)
        response = client.post("/api/session", json={"username": user, "password": PASSWORDS[user]})
        assert response.status_code == 200, response.text
        client.headers["X-CSRF-Token"] = response.json()["csrf"]
        return client

    def token(self, user: str) -> dict[str, str]:
        _, token = self.accounts.create_token(user)
        return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def site(collections_settings: Settings, collections_qa: ForumQA,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """An app over the three collections with four users (accounts in a file of this module's own)."""
    path = tmp_path_factory.mktemp("accounts") / "accounts.sqlite3"
    settings = collections_settings.model_copy(update={"accounts_file": path, "auth_cache_seconds": 0.5})
    accounts = Accounts(SqliteRecords(path))
    make_users(accounts)
    app = create_app(settings, collections_qa)
    with TestClient(app) as client:
        yield Site(settings, accounts, client)


@dataclass
class LiveSite:
    url: str
    accounts: Accounts


@pytest.fixture(scope="module")
def live_site(collections_settings: Settings, collections_qa: ForumQA,
              tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveSite]:
    """The same, served by a real uvicorn on a loopback port (for the browser and the fuzz)."""
    from server_support import LiveServer

    path = tmp_path_factory.mktemp("live-accounts") / "accounts.sqlite3"
    accounts = Accounts(SqliteRecords(path))
    make_users(accounts)
    settings = collections_settings.model_copy(update={"accounts_file": path})
    with LiveServer(create_app(settings, collections_qa)) as server:
        yield LiveSite(server.url, accounts)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from browser_support import chromium

    with chromium() as browser:
        yield browser
