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
