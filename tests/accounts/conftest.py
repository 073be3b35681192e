"""Fixtures of the accounts tests: the corpus of three collections (tests/accounts_support.py), its index
(MiniLM only, to stay quick), and apps over it with users."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from accounts_support import ALPHA, ALPHA_ID, BETA, BETA_ID, REPORT_ID, LiveSite, Site, make_users
from fastapi.testclient import TestClient

from api.main import create_app
from rag.accounts import Accounts
from rag.accounts.sqlite import SqliteRecords
from rag.config import Settings
from rag.qa import ForumQA

ROOT = Path(__file__).resolve().parents[2]


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
