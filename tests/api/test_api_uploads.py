"""POST and DELETE /api/documents, GET /api/index/status and /api/config, and doc_ids: every status code.

The uploads go to a private copy of the session's corpus and index (``copy_workspace``), served by a
real app over the real models; the rebuilds are real background builds, and the tests wait for them
through the status endpoint as a client would.
"""

from __future__ import annotations

import io
import json
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from core_support import copy_workspace
from fastapi.testclient import TestClient
from httpx import Response

from api.main import create_app
from api.security import MULTIPART_SLACK
from rag.config import Settings
from rag.ingest.store import accepted_kinds
from rag.qa import ForumQA

CAP = 512 * 1024
DATA = Path(__file__).resolve().parents[1] / "data"
REPORT = "third-korea-russia-forum"
# A document about something the report never mentions, so a citation of it can only come from it.
PANGYO = (
    b"Pangyo Techno Valley\n\n"
    b"Pangyo Techno Valley is a technology cluster in Seongnam, south of Seoul. It opened in 2011 and "
    b"now hosts about 1,700 companies that employ some 70,000 people.\n\n"
    b"Gyeonggi Province planned the cluster to attract software, biotechnology and game companies.\n"
)
PANGYO_ID = "pangyo-techno-valley"
PANGYO_QUESTION = "How many companies does Pangyo Techno Valley host?"
BUILD_TIMEOUT = 600  # seconds; builds share two cores with the rest of the machine


def error_of(response: Response, status: int) -> dict[str, Any]:
    """The JSON error of ``response``, after checking its status and shape."""
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return dict(body["error"])


def upload(client: TestClient, name: str, data: bytes, **kwargs: Any) -> Response:
    return client.post("/api/documents", files={"file": (name, data, "application/octet-stream")}, **kwargs)


def wait_until_built(client: TestClient) -> dict[str, Any]:
    """Poll the status endpoint until no build runs or waits; the final status."""
    deadline = time.monotonic() + BUILD_TIMEOUT
    while time.monotonic() < deadline:
        status = client.get("/api/index/status").json()
        if status["state"] != "building" and not status["queued"]:
            return dict(status)
        time.sleep(0.5)
    raise AssertionError(f"the background build did not finish in {BUILD_TIMEOUT} s")


@pytest.fixture(scope="module")
def workspace(settings: Settings, qa: ForumQA, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """A writable copy of the session's corpus and built index, with uploads on and a small cap."""
    copy = copy_workspace(settings, tmp_path_factory.mktemp("uploads"))
    return copy.model_copy(update={"allow_uploads": True, "max_upload_bytes": CAP})


@pytest.fixture(scope="module")
def upload_client(workspace: Settings) -> Iterator[TestClient]:
    qa = ForumQA.open(workspace, progress=False)  # the models are the session's; only the index loads
    with TestClient(create_app(workspace, qa)) as client:
        yield client


@pytest.fixture(scope="module")
def uploaded(upload_client: TestClient) -> dict[str, Any]:
    """The Pangyo document uploaded, and the index rebuilt with it: the upload's 202 body."""
    response = upload(upload_client, "pangyo notes.txt", PANGYO)
    assert response.status_code == 202, response.text
    body = dict(response.json())
    assert body["build"]["state"] == "building"
    assert PANGYO_ID in body["build"]["pending"]["added"]  # stored, not served yet
    wait_until_built(upload_client)
    return body


# ---------------------------------------------------------------------------------------- off by default


def test_uploads_are_off_without_a_key_or_the_setting(client: TestClient) -> None:
    assert client.get("/api/config").json()["uploads"] is False
    error = error_of(upload(client, "notes.txt", PANGYO), 403)
    assert "FORUMQA_ALLOW_UPLOADS" in error["message"] and "FORUMQA_API_KEY" in error["message"]
    error_of(client.delete(f"/api/documents/{REPORT}"), 403)
    assert client.get(f"/api/documents/{REPORT}").status_code == 200  # nothing was removed
    error_of(client.patch(f"/api/documents/{REPORT}", json={"title": "Another"}), 403)
    error_of(client.patch(f"/api/documents/{REPORT}", json={"nonsense": 1}), 403)  # before the body
    assert client.get(f"/api/documents/{REPORT}").json()["title"] == "Third Korea-Russia Forum"


def test_with_an_api_key_uploads_need_it(workspace: Settings, qa: ForumQA) -> None:
    keyed = workspace.model_copy(update={"allow_uploads": False, "api_key": "s3cret-key"})
    with TestClient(create_app(keyed, qa)) as client:
        error = error_of(upload(client, "a.txt", PANGYO), 401)
        assert "API key" in error["message"]
        error_of(client.delete(f"/api/documents/{REPORT}"), 401)
        error_of(client.patch(f"/api/documents/{REPORT}", json={"title": "Another"}), 401)
        # With the key the upload reaches the store, which refuses this zip on its own grounds.
        headers = {"Authorization": "Bearer s3cret-key"}
        assert client.get("/api/config", headers=headers).json()["uploads"] is True
        error_of(upload(client, "a.txt", b"PK\x03\x04 not a zip", headers=headers), 415)


# ---------------------------------------------------------------------------------------- refusals


def test_a_file_over_the_cap_is_413(upload_client: TestClient) -> None:
    error = error_of(upload(upload_client, "big.txt", b"Big\n\n" + b"word " * (CAP // 5)), 413)
    assert str(CAP) in error["message"] and "FORUMQA_MAX_UPLOAD_BYTES" in error["message"]
    # A body past the cap and the multipart framing is cut off by the middleware, unread.
    error = error_of(upload(upload_client, "huge.txt", b"x" * (CAP + MULTIPART_SLACK + 1)), 413)
    assert "FORUMQA_MAX_UPLOAD_BYTES" in error["message"]


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("report.txt", b"\x00\x01\x02binary" * 10, "neither PDF nor DOCX"),
        ("report.doc", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 100, "old Word"),
        ("report.docx", b"PK\x03\x04 this is not a zip archive", "damaged zip"),
        ("report.html", b"\x89PNG\r\n\x1a\n" + b"\x00" * 50, "neither PDF nor DOCX"),  # an image, named .html
    ],
)
def test_what_is_not_a_document_is_415(upload_client: TestClient, name: str, data: bytes, says: str) -> None:
    assert says in error_of(upload(upload_client, name, data), 415)["message"]


@pytest.mark.parametrize(("name", "data", "says"), [
    ("fake.pdf", b"this is not a pdf at all\n", "the name says .pdf but the content is plain text"),
    ("fake.docx", b"Notes\n\nplain words\n", "the name says .docx but the content is plain text"),
    ("notes.txt", (DATA / "report.pdf").read_bytes(), "the name says .txt but the content is a PDF"),
])
def test_a_name_that_says_another_kind_than_the_content_is_415(
    upload_client: TestClient, name: str, data: bytes, says: str
) -> None:
    error = error_of(upload(upload_client, name, data), 415)
    assert error["type"] == "unsupported_media_type" and error["message"].startswith(says), error


def test_a_zip_that_is_not_a_word_document_is_415(upload_client: TestClient) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("readme.txt", "hello")
    response = upload(upload_client, "x.docx", buffer.getvalue())
    assert "not a Word document" in error_of(response, 415)["message"]


def test_a_pdf_the_server_cannot_read_is_a_clear_4xx(upload_client: TestClient) -> None:
    """A truncated PDF: 415 while this installation reads no PDF, 422 (unreadable) once it does."""
    response = upload(upload_client, "scan.pdf", b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog >>\n")
    if "pdf" in accepted_kinds():
        assert "cannot be read" in error_of(response, 422)["message"]
    else:
        assert "PDF" in error_of(response, 415)["message"]


@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("empty.txt", b"", "empty"),
        ("blank.md", b"   \n\n\t\n", "no text"),
        ("page.html", b"<!doctype html><html><head><title>x</title></head><body><script>1</script></body>",
         "no text"),
    ],
)
def test_a_document_with_nothing_to_read_is_422(upload_client: TestClient, name: str, data: bytes,
                                                 says: str) -> None:
    assert says in error_of(upload(upload_client, name, data), 422)["message"]


def docx_bomb(expanded_mb: int) -> bytes:
    """A small zip whose word/document.xml expands to ``expanded_mb`` MB."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("word/document.xml", "<w:document>" + "A" * (expanded_mb << 20) + "</w:document>")
    return buffer.getvalue()


@pytest.mark.skipif("pdf" not in accepted_kinds() or "docx" not in accepted_kinds(),
                    reason="this installation reads no PDF or DOCX")
@pytest.mark.parametrize(
    ("name", "data", "says"),
    [
        ("scan.pdf", (DATA / "scan.pdf").read_bytes(), "no text layer"),
        ("cut.pdf", (DATA / "report.pdf").read_bytes()[:3000], "damaged, cut short"),
        ("bomb.docx", docx_bomb(200), "zip bomb"),
    ],
)
def test_hostile_or_unreadable_pdf_and_docx_are_422(upload_client: TestClient, name: str, data: bytes,
                                                    says: str) -> None:
    assert len(data) <= CAP
    assert says in error_of(upload(upload_client, name, data), 422)["message"]


def test_a_request_that_is_not_an_upload_is_refused_clearly(upload_client: TestClient) -> None:
    error = error_of(upload_client.post("/api/documents", json={"file": "Pangyo"}), 415)
    assert "multipart/form-data" in error["message"]
    response = upload_client.post("/api/documents", files={"document": ("a.txt", PANGYO, "text/plain")})
    assert "'file'" in error_of(response, 422)["message"]


def test_refused_uploads_leave_the_corpus_alone(upload_client: TestClient, workspace: Settings) -> None:
    before = sorted(p.name for p in workspace.corpus_dir.iterdir() if not p.name.startswith("."))
    for name, data in [("a.docx", b"PK\x03\x04x"), ("b.txt", b""), ("c.txt", b"x" * (CAP + 1))]:
        assert upload(upload_client, name, data).status_code in (413, 415, 422)
    assert sorted(p.name for p in workspace.corpus_dir.iterdir() if not p.name.startswith(".")) == before
    assert not list(workspace.corpus_dir.glob(".upload-*"))


def test_removing_an_unknown_document_is_404(upload_client: TestClient) -> None:
    response = upload_client.delete("/api/documents/no-such-document")
    assert "'no-such-document'" in error_of(response, 404)["message"]


def test_unknown_doc_ids_are_422_and_named(upload_client: TestClient) -> None:
    body = {"question": "Who led the Russian delegation?", "doc_ids": [REPORT, "fourth-forum"]}
    error = error_of(upload_client.post("/api/answer", json=body), 422)
    assert "'fourth-forum'" in error["message"] and REPORT not in error["message"]
    error = error_of(upload_client.post("/api/search", json={"query": "trade", "doc_ids": ["nope"]}), 422)
    assert "'nope'" in error["message"]
    error_of(upload_client.post("/api/search", json={"query": "trade", "doc_ids": []}), 422)


# ---------------------------------------------------------------------------------------- the round trip


def test_an_upload_is_stored_under_a_safe_name_with_its_metadata(
    uploaded: dict[str, Any], workspace: Settings
) -> None:
    document = uploaded["document"]
    assert document == {
        "id": PANGYO_ID, "title": "Pangyo Techno Valley", "kind": "txt", "size": len(PANGYO),
        "file": f"{PANGYO_ID}.txt", "original_filename": "pangyo notes.txt", "page_count": None,
        "collection": None,
    }
    assert (workspace.corpus_dir / f"{PANGYO_ID}.txt").read_bytes() == PANGYO
    assert not (workspace.corpus_dir / "pangyo notes.txt").exists()


def test_the_client_file_name_is_never_a_path(upload_client: TestClient, workspace: Settings,
                                              uploaded: dict[str, Any]) -> None:
    data = b"Ulsan Shipyards\n\nThe shipyards of Ulsan build a tenth of the world's ships.\n"
    response = upload(upload_client, "../../../../tmp/evil.txt", data)
    assert response.status_code == 202, response.text
    assert response.json()["document"]["file"] == "ulsan-shipyards.txt"
    assert response.json()["document"]["original_filename"] == "evil.txt"
    assert (workspace.corpus_dir / "ulsan-shipyards.txt").read_bytes() == data
    assert upload_client.delete("/api/documents/ulsan-shipyards").status_code == 202
    wait_until_built(upload_client)


def test_after_the_build_the_upload_is_listed_and_cited(
    upload_client: TestClient, uploaded: dict[str, Any]
) -> None:
    status = wait_until_built(upload_client)
    assert status["state"] == "idle" and status["last_error"] is None
    assert status["pending"] == {"added": [], "removed": []}
    assert status["serving_build_id"] == status["last_build_id"]
    listed = {d["id"]: d for d in upload_client.get("/api/documents").json()["documents"]}
    assert listed[PANGYO_ID]["kind"] == "txt" and listed[PANGYO_ID]["size"] == len(PANGYO)
    assert listed[PANGYO_ID]["metadata"]["original_filename"] == "pangyo notes.txt"
    answer = upload_client.post("/api/answer", json={"question": PANGYO_QUESTION}).json()
    assert answer["answerable"], answer
    assert answer["citations"][0]["doc_id"] == PANGYO_ID
    assert "1,700 companies" in answer["answer"]


def test_doc_ids_restrict_answers_and_search(upload_client: TestClient, uploaded: dict[str, Any]) -> None:
    body = {"question": PANGYO_QUESTION, "doc_ids": [REPORT]}
    only_report = upload_client.post("/api/answer", json=body).json()
    assert {c["doc_id"] for c in only_report["citations"]} == {REPORT}
    assert not only_report["answerable"]
    body = {"query": "Russian delegation", "doc_ids": [PANGYO_ID]}
    results = upload_client.post("/api/search", json=body).json()
    assert results["results"] and {r["doc_id"] for r in results["results"]} == {PANGYO_ID}


def test_the_same_file_again_is_409_and_another_with_its_title_is_numbered(
    upload_client: TestClient, uploaded: dict[str, Any], workspace: Settings
) -> None:
    error = error_of(upload(upload_client, "copy.txt", PANGYO), 409)
    assert f"'{PANGYO_ID}'" in error["message"] and "already" in error["message"]
    other = PANGYO.replace(b"1,700", b"1,800")
    response = upload(upload_client, "newer.txt", other)
    assert response.status_code == 202, response.text
    assert response.json()["document"]["id"] == f"{PANGYO_ID}-2"
    assert (workspace.corpus_dir / f"{PANGYO_ID}-2.txt").read_bytes() == other
    assert upload_client.delete(f"/api/documents/{PANGYO_ID}-2").status_code == 202
    wait_until_built(upload_client)


def test_junk_titles_give_way_and_ids_are_ascii(upload_client: TestClient) -> None:
    """A PDF titled "about:blank" is named by its first heading; non-ASCII titles give readable ids."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(DATA / "report.pdf"))
    writer.add_metadata({"/Title": "about:blank"})
    pdf = io.BytesIO()
    writer.write(pdf)
    response = upload(upload_client, "print.pdf", pdf.getvalue())
    assert response.status_code == 202, response.text
    stored = response.json()["document"]
    assert (stored["id"], stored["title"]) == (f"{REPORT}-2", "Third Korea-Russia Forum")
    response = upload(upload_client, "beyoncé.txt", "Beyoncé\n\nShe sang in Seoul in 2024.\n".encode())
    assert response.json()["document"]["id"] == "beyonce", response.text
    response = upload(upload_client, "x.txt", "Форум в Москве\n\nТекст о форуме.\n".encode())
    assert response.json()["document"]["id"] == "forum-v-moskve", response.text
    for doc_id in (stored["id"], "beyonce", "forum-v-moskve"):
        assert upload_client.delete(f"/api/documents/{doc_id}").status_code == 202
    wait_until_built(upload_client)


@pytest.mark.parametrize(("body", "named"), [
    ({"title": ""}, "title"),
    ({"title": "   "}, "title must not be empty"),
    ({"title": "x" * 201}, "title"),
    ({"title": "evil\u202etitle"}, "control"),
    ({"title": 5}, "title"),
    ({"title": None}, "title"),
    ({}, "title"),
    ({"title": "Fine", "id": "other"}, "id"),
])
def test_a_bad_rename_is_a_clear_422(upload_client: TestClient, body: dict[str, Any], named: str) -> None:
    error = error_of(upload_client.patch(f"/api/documents/{REPORT}", json=body), 422)
    assert error["type"] == "invalid_request" and named in json.dumps(error), error


def test_renaming_an_unknown_document_is_404_and_malformed_json_400(upload_client: TestClient) -> None:
    error_of(upload_client.patch("/api/documents/no-such-document", json={"title": "A title"}), 404)
    error_of(upload_client.patch("/api/documents/..%2F..%2Fetc%2Fpasswd", json={"title": "A title"}), 404)
    bad = upload_client.patch(f"/api/documents/{REPORT}", content=b'{"title": ',
                              headers={"content-type": "application/json"})
    assert bad.status_code == 400, bad.text


def test_a_renamed_document_is_listed_and_cited_under_its_new_title(
    upload_client: TestClient, uploaded: dict[str, Any], workspace: Settings
) -> None:
    wait_until_built(upload_client)
    response = upload_client.patch(f"/api/documents/{PANGYO_ID}", json={"title": "  Pangyo   Valley "})
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["document"]["id"] == PANGYO_ID and body["document"]["title"] == "Pangyo Valley"
    assert body["build"]["state"] in ("building", "idle")
    wait_until_built(upload_client)
    doc = upload_client.get(f"/api/documents/{PANGYO_ID}").json()
    assert doc["title"] == "Pangyo Valley" and doc["sections"][0]["title"] == "Pangyo Valley"
    answer = upload_client.post("/api/answer", json={"question": PANGYO_QUESTION}).json()
    assert answer["citations"][0]["doc_id"] == PANGYO_ID
    assert answer["citations"][0]["title"] == "Pangyo Valley"
    meta = json.loads((workspace.corpus_dir / f"{PANGYO_ID}.meta.json").read_text(encoding="utf-8"))
    assert meta["title"] == "Pangyo Valley" and meta["original_filename"] == "pangyo notes.txt"


def test_removal_drops_the_document_from_answers(upload_client: TestClient, workspace: Settings,
                                                 uploaded: dict[str, Any]) -> None:
    response = upload_client.delete(f"/api/documents/{PANGYO_ID}")
    assert response.status_code == 202, response.text
    body = response.json()
    assert body["removed"]["id"] == PANGYO_ID
    assert PANGYO_ID in body["build"]["pending"]["removed"]
    assert not (workspace.corpus_dir / f"{PANGYO_ID}.txt").exists()
    assert not (workspace.corpus_dir / f"{PANGYO_ID}.meta.json").exists()
    wait_until_built(upload_client)
    assert PANGYO_ID not in [d["id"] for d in upload_client.get("/api/documents").json()["documents"]]
    answer = upload_client.post("/api/answer", json={"question": PANGYO_QUESTION}).json()
    assert PANGYO_ID not in {c["doc_id"] for c in answer["citations"]}
    assert not answer["answerable"]
    error_of(upload_client.delete(f"/api/documents/{PANGYO_ID}"), 404)


def test_the_last_document_cannot_be_removed(upload_client: TestClient, workspace: Settings) -> None:
    wait_until_built(upload_client)
    error = error_of(upload_client.delete(f"/api/documents/{REPORT}"), 409)
    assert "only document" in error["message"]
    assert (workspace.corpus_dir / f"{REPORT}.txt").exists()


def test_the_status_and_config_are_documented(upload_client: TestClient) -> None:
    schema = upload_client.get("/openapi.json").json()
    post = schema["paths"]["/api/documents"]["post"]
    assert "multipart/form-data" in post["requestBody"]["content"]
    assert {"202", "403", "409", "413", "415", "422"} <= set(post["responses"])
    delete = schema["paths"]["/api/documents/{doc_id}"]["delete"]
    assert {"202", "403", "404", "409"} <= set(delete["responses"])
    patch = schema["paths"]["/api/documents/{doc_id}"]["patch"]
    assert {"202", "403", "404", "422"} <= set(patch["responses"])
    assert patch["requestBody"]["content"]["application/json"]["schema"]["$ref"].endswith("/RenameRequest")
    rename = schema["components"]["schemas"]["RenameRequest"]
    assert rename["required"] == ["title"] and rename["properties"]["title"]["maxLength"] == 200
    assert "/api/index/status" in schema["paths"] and "/api/config" in schema["paths"]
    config = upload_client.get("/api/config").json()
    assert config == {"uploads": True, "max_upload_bytes": CAP, "accepted_kinds": accepted_kinds(),
                      "max_question_chars": 1000, "feedback": False,
                      "accounts": False}
