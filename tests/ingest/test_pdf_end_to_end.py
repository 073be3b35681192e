"""End to end: the report as a PDF in a corpus folder -> a real index build -> /api/answer cites it
with the page the supporting sentence is printed on (read here from PDFium, not from the loader).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pypdfium2 as pdfium
import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from rag.config import Settings
from rag.qa import ForumQA
from tests.core_support import DEV_SET

DATA = Path(__file__).resolve().parents[1] / "data"


def fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def printed_pages() -> list[str]:
    pdf = pdfium.PdfDocument(DATA / "report.pdf")
    try:
        return [fold(pdf[i].get_textpage().get_text_range().replace("\ufffe", "-")) for i in range(len(pdf))]
    finally:
        pdf.close()


def page_printing(phrase: str, pages: list[str]) -> int | None:
    """The 1-based page whose printed text holds ``phrase`` (None if it spans two pages)."""
    found = [n for n, text in enumerate(pages, start=1) if fold(phrase) in text]
    return found[0] if len(found) == 1 else None


@pytest.fixture(scope="module")
def pdf_client(pdf_settings: Settings, pdf_qa: ForumQA) -> Iterator[TestClient]:
    with TestClient(create_app(pdf_settings, pdf_qa)) as client:
        yield client


def test_answers_cite_the_pdf_with_the_printed_page(pdf_client: TestClient) -> None:
    pages = printed_pages()
    records = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    # Questions whose evidence is printed on a page after the first, so a wrong page cannot pass.
    asked = [
        (r, page_printing(r["evidence"][0], pages))
        for r in records
        if r.get("answerable") and r.get("lang") == "en" and r.get("evidence")
    ]
    asked = [(r, p) for r, p in asked if p is not None and p >= 2][:6]
    assert len(asked) >= 4
    cited_right = 0
    for record, page in asked:
        response = pdf_client.post("/api/answer", json={"question": record["question"]})
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        for citation in body["citations"]:
            assert citation["doc_id"] == "forum-report"
            # Every citation's page is the page its highlighted sentence begins on in print.
            document = pdf_client.get(f"/api/documents/{citation['doc_id']}").json()
            sentence = document["text"][citation["highlight"]["start"] : citation["highlight"]["end"]]
            opening = " ".join(sentence.split()[:8])
            assert opening.casefold() in pages[citation["page"] - 1], (citation["page"], opening)
        top = body["citations"][0]
        lead = top["highlight"]["start"] - top["start"]
        top_sentence = top["text"][lead : lead + top["highlight"]["end"] - top["highlight"]["start"]]
        if body["answerable"] and fold(record["evidence"][0]) in fold(top_sentence):
            assert top["page"] == page
            cited_right += 1
    assert cited_right >= len(asked) // 2  # the answers themselves are the reader's business


def test_pages_survive_the_index_build(pdf_client: TestClient, pdf_settings: Settings) -> None:
    document = pdf_client.get("/api/documents/forum-report").json()
    assert document["title"] == "Third Korea-Russia Forum"
    assert len(document["pages"]) == 4 and document["pages"][0] == 0
    # A second process opening the same build reads the page starts back from documents.json.
    reopened = ForumQA.open(pdf_settings, progress=False)
    doc = reopened.document("forum-report")
    assert doc is not None and list(doc.pages) == document["pages"]
    hit = reopened.search("economic cooperation between Korea and Russia", 1)[0]
    assert hit.page == doc.page_at(hit.highlight_start) and hit.to_dict()["page"] == hit.page


def test_text_documents_carry_no_page(settings: Settings, qa: ForumQA) -> None:
    # The repository's text report (the session's index): no page in citations or in the document.
    with TestClient(create_app(settings, qa)) as client:
        body = client.post("/api/answer", json={"question": "Where was the forum held?"}).json()
        assert body["citations"] and all(c.get("page") is None for c in body["citations"])
        assert all(c.to_dict()["page"] is None for c in qa.search("Moscow", 3))
        assert client.get("/api/documents/third-korea-russia-forum").json().get("pages") is None
