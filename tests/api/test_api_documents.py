"""GET /api/documents (summaries, no text) and /api/documents/{doc_id}: the full text that citation offsets
index."""

from __future__ import annotations

import itertools
from pathlib import Path

from fastapi.testclient import TestClient

from rag.qa import ForumQA

# The list's summaries; "embedding" names the models still embedding a document just added.
SUMMARY_KEYS = {"id", "title", "source", "metadata", "kind", "size", "page_count", "embedding", "collection"}
# One document: "pages" holds each page's start offset for a PDF, null for the text report.
DOCUMENT_KEYS = SUMMARY_KEYS | {"text", "sections", "pages"}


def test_list_has_every_document_as_a_summary_without_its_text(client: TestClient, qa: ForumQA) -> None:
    response = client.get("/api/documents")
    assert response.status_code == 200
    documents = response.json()["documents"]
    assert [d["id"] for d in documents] == [d.id for d in qa.documents]
    for doc in documents:
        assert set(doc) == SUMMARY_KEYS
        assert doc["embedding"] == []
        one = client.get(f"/api/documents/{doc['id']}").json()
        assert set(one) == DOCUMENT_KEYS and one["text"] and one["sections"] and one["pages"] is None
        assert {k: one[k] for k in SUMMARY_KEYS} == doc
    report = next(d for d in qa.documents if d.id == "third-korea-russia-forum")
    listed = next(d for d in documents if d["id"] == report.id)
    # Kind and size of its file on disk (not given in its metadata, so read from the file).
    expected = ("txt", Path(report.path).stat().st_size, None)
    assert (listed["kind"], listed["size"], listed["page_count"]) == expected


def test_one_document_matches_the_library(client: TestClient, qa: ForumQA) -> None:
    expected = qa.documents[0]
    doc = client.get(f"/api/documents/{expected.id}").json()
    assert doc["id"] == expected.id
    assert doc["title"] == expected.title
    assert doc["source"] == expected.source
    assert doc["text"] == expected.text
    assert [(s["title"], s["start"], s["end"]) for s in doc["sections"]] == [
        (s.title, s.start, s.end) for s in expected.sections
    ]


def test_sections_tile_the_text_and_start_with_their_heading(client: TestClient, qa: ForumQA) -> None:
    doc = client.get(f"/api/documents/{qa.documents[0].id}").json()
    sections, text = doc["sections"], doc["text"]
    assert sections[0]["start"] == 0 and sections[-1]["end"] <= len(text)
    for before, after in itertools.pairwise(sections):
        assert before["end"] == after["start"]
    # The chat page shows each section's first line as its heading.
    assert all(text.startswith(s["title"], s["start"]) for s in sections)


def test_citations_of_an_answer_index_the_document_served(client: TestClient) -> None:
    question = "Who approved the plans for the Nakhodka industrial complex?"
    answer = client.post("/api/answer", json={"question": question}).json()
    for c in answer["citations"]:
        text = client.get(f"/api/documents/{c['doc_id']}").json()["text"]
        assert text[c["start"] : c["end"]] == c["text"]
        assert text[c["highlight"]["start"] : c["highlight"]["end"]] in c["text"]
