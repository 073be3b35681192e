"""The document store (rag/ingest/store.py) and the background rebuilder (rag/serving/rebuild.py), on real
files, real loads and real index builds over a private copy of the session's corpus and index."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from core_support import copy_workspace

from rag.config import Settings
from rag.index.build import build_index
from rag.index.publish import current_build_dir
from rag.index.publish import load_build as load_index
from rag.ingest import store
from rag.ingest.loading import load_document
from rag.qa import ForumQA
from rag.serving.rebuild import Rebuilder

REPORT = "third-korea-russia-forum"
DATA = Path(__file__).resolve().parents[1] / "data"
NOTE = b"Jeju Peace Forum\n\nThe Jeju Forum for Peace and Prosperity has met on Jeju Island since 2001.\n"


@pytest.fixture
def workspace(settings: Settings, qa: ForumQA, tmp_path: Path) -> Settings:
    return copy_workspace(settings, tmp_path)


def visible(corpus: Path) -> list[str]:
    return sorted(p.name for p in corpus.iterdir() if not p.name.startswith("."))


def test_add_stores_the_file_and_its_metadata_under_the_title_slug(workspace: Settings) -> None:
    stored = store.add(workspace.corpus_dir, NOTE, "C:\\Users\\me\\jeju notes.TXT", 10_000)
    assert (stored.id, stored.file, stored.original_filename) == ("jeju-peace-forum", "jeju-peace-forum.txt",
                                                                  "jeju notes.TXT")
    assert (workspace.corpus_dir / stored.file).read_bytes() == NOTE
    meta = json.loads((workspace.corpus_dir / "jeju-peace-forum.meta.json").read_text(encoding="utf-8"))
    assert meta["id"] == stored.id and meta["title"] == "Jeju Peace Forum" and meta["size"] == len(NOTE)
    assert meta["stored_by"] == store.STORED_BY
    assert not list(workspace.corpus_dir.glob(".upload-*"))  # no temporary file is left behind
    assert store.corpus_ids(workspace.corpus_dir) == {
        REPORT: workspace.corpus_dir / f"{REPORT}.txt", stored.id: workspace.corpus_dir / stored.file,
    }


def test_markdown_is_told_from_text_by_the_name_only(workspace: Settings) -> None:
    stored = store.add(workspace.corpus_dir, b"# Jeju\n\nAn island.\n", "notes.md", 10_000)
    assert (stored.kind, stored.file) == ("md", "jeju.md")
    # The same bytes named .txt would be plain text, but they are a duplicate now.
    with pytest.raises(store.Duplicate, match="already in the corpus as document 'jeju'"):
        store.add(workspace.corpus_dir, b"# Jeju\n\nAn island.\n", "notes.txt", 10_000)


def test_a_title_without_usable_letters_gets_a_hash_id(workspace: Settings) -> None:
    greek = "???\n\nΈνα κείμενο στα ελληνικά.\n".encode()
    stored = store.add(workspace.corpus_dir, greek, "x.txt", 10_000)
    assert stored.id.startswith("document-") and len(stored.id) == len("document-") + 12


def with_title(pdf: bytes, title: str, author: str = "") -> bytes:
    """``pdf`` with another title field (and author: other bytes, the same text)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    writer.add_metadata({"/Title": title, "/Author": author})
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def test_a_junk_pdf_title_gives_way_and_a_taken_id_is_numbered(workspace: Settings) -> None:
    """Two different PDFs whose title field says "about:blank": named by their first heading, not
    "about:blank"; the second, whose heading is the same, is stored under a numbered id, never refused.
    The same bytes again are still a duplicate."""
    pdf = (DATA / "report.pdf").read_bytes()
    blank = with_title(pdf, "about:blank")
    first = store.add(workspace.corpus_dir, blank, "print.pdf", 10_000_000)
    assert (first.id, first.title) == ("third-korea-russia-forum-2", "Third Korea-Russia Forum")
    second = store.add(workspace.corpus_dir, with_title(pdf, "about:blank", "someone"), "print.pdf",
                       10_000_000)
    assert (second.id, second.file) == ("third-korea-russia-forum-3", "third-korea-russia-forum-3.pdf")
    word = store.add(workspace.corpus_dir, with_title(pdf, "Microsoft Word - Port Notes.docx", "x"),
                     "x.pdf", 10_000_000)
    assert (word.id, word.title) == ("port-notes", "Port Notes")
    with pytest.raises(store.Duplicate, match=f"already in the corpus as document '{first.id}'"):
        store.add(workspace.corpus_dir, blank, "again.pdf", 10_000_000)
    ids = store.corpus_ids(workspace.corpus_dir)
    assert set(ids) == {REPORT, first.id, second.id, word.id}
    text = b"Ulsan\n\nShips are built in Ulsan.\n"
    assert store.add(workspace.corpus_dir, text, "u.txt", 10_000).id == "ulsan"
    other = text.replace(b"built", b"made")
    assert store.add(workspace.corpus_dir, other, "u2.txt", 10_000).id == "ulsan-2"


def test_ids_spell_other_letters_in_ascii(workspace: Settings) -> None:
    cases = {"beyoncé.txt": ("Beyoncé\n\nA singer.\n", "beyonce"),
             "форум.txt": ("Форум во Владивостоке\n\nТекст.\n", "forum-vo-vladivostoke"),
             "포럼.txt": ("한러 포럼\n\n본문입니다.\n", "hanreo-poreom")}
    for name, (text, doc_id) in cases.items():
        assert store.add(workspace.corpus_dir, text.encode(), name, 10_000).id == doc_id


def test_a_name_that_says_another_kind_is_refused(workspace: Settings) -> None:
    before = visible(workspace.corpus_dir)
    with pytest.raises(store.UnsupportedKind, match=r"the name says \.pdf but the content is plain text"):
        store.add(workspace.corpus_dir, b"this is not a pdf at all\n", "fake.pdf", 10_000)
    with pytest.raises(store.UnsupportedKind, match=r"the name says \.txt but the content is a PDF"):
        store.add(workspace.corpus_dir, (DATA / "report.pdf").read_bytes(), "notes.txt", 10_000_000)
    assert visible(workspace.corpus_dir) == before


def test_rename_writes_the_title_and_keeps_the_id(workspace: Settings) -> None:
    stored = store.add(workspace.corpus_dir, NOTE, "jeju.txt", 10_000)
    renamed = store.rename(workspace.corpus_dir, stored.id, "  Jeju   Forum ")
    assert (renamed.id, renamed.title, renamed.file) == (stored.id, "Jeju Forum", stored.file)
    meta = json.loads((workspace.corpus_dir / "jeju-peace-forum.meta.json").read_text(encoding="utf-8"))
    assert meta["title"] == "Jeju Forum" and meta["original_filename"] == "jeju.txt"
    # A file placed by hand, without metadata, gets some; its id stays the one its name gave it.
    (workspace.corpus_dir / "ulsan shipyards.txt").write_text("Ulsan\n\nShips.\n", encoding="utf-8")
    assert store.rename(workspace.corpus_dir, "ulsan-shipyards", "Ulsan Shipyards").id == "ulsan-shipyards"
    assert store.corpus_ids(workspace.corpus_dir)["ulsan-shipyards"].name == "ulsan shipyards.txt"
    loaded = load_document(workspace.corpus_dir / "ulsan shipyards.txt")
    assert (loaded.id, loaded.title, loaded.sections[0].title) == ("ulsan-shipyards", "Ulsan Shipyards",
                                                                  "Ulsan Shipyards")
    with pytest.raises(store.NotFound):
        store.rename(workspace.corpus_dir, "no-such-document", "A title")
    with pytest.raises(store.Unreadable):
        store.rename(workspace.corpus_dir, stored.id, " ")


def test_remove_is_refused_for_unknown_and_last_documents(workspace: Settings) -> None:
    before = visible(workspace.corpus_dir)
    with pytest.raises(store.NotFound):
        store.remove(workspace.corpus_dir, "../third-korea-russia-forum")
    with pytest.raises(store.LastDocument):
        store.remove(workspace.corpus_dir, REPORT)
    assert visible(workspace.corpus_dir) == before


def test_sweep_deletes_what_an_interrupted_change_left(workspace: Settings) -> None:
    corpus = workspace.corpus_dir
    (corpus / ".upload-0123456789ab.tmp").write_bytes(b"half a file")
    (corpus / ".removed-0123456789ab.tmp").write_bytes(NOTE)
    (corpus / "gone.meta.json").write_text(json.dumps({"id": "gone", "stored_by": store.STORED_BY}))
    (corpus / "notes.meta.json").write_text(json.dumps({"id": "notes"}))  # someone else's: kept
    assert sorted(store.sweep(corpus)) == [".removed-0123456789ab.tmp", ".upload-0123456789ab.tmp",
                                               "gone.meta.json"]
    assert (corpus / "notes.meta.json").exists() and (corpus / f"{REPORT}.meta.json").exists()


def test_the_rebuilder_coalesces_requests_and_swaps(workspace: Settings) -> None:
    qa = ForumQA.open(workspace, progress=False)
    swaps: list[bool] = []
    rebuilder = Rebuilder(workspace, lambda: swaps.append(qa.reload()))
    store.add(workspace.corpus_dir, NOTE, "jeju.txt", 10_000)
    first = rebuilder.request()
    assert first.state == "building"
    for _ in range(5):  # while the first build runs: these share the one build after it
        rebuilder.request()
    assert rebuilder.wait(600)
    status = rebuilder.status()
    assert status.state == "idle" and status.queued == 0 and status.last_error is None
    assert 1 <= status.builds <= 2
    assert swaps[0] is True and "jeju-peace-forum" in qa.index.documents
    assert status.last_build_id == qa.index.version


def test_a_failed_build_is_reported_and_the_old_index_keeps_serving(workspace: Settings) -> None:
    build_index(workspace, progress=False)
    serving = current_build_dir(workspace.index_dir)
    broken = workspace.corpus_dir / "broken.txt"
    broken.write_bytes(NOTE)
    broken.with_name("broken.meta.json").write_text("{not json")
    rebuilder = Rebuilder(workspace, lambda: None)
    rebuilder.request()
    assert rebuilder.wait(600)
    status = rebuilder.status()
    assert status.state == "failed" and "broken.meta.json" in (status.last_error or "")
    assert current_build_dir(workspace.index_dir) == serving
    assert REPORT in load_index(workspace.index_dir).documents

    broken.with_name("broken.meta.json").unlink()
    rebuilder.request()
    assert rebuilder.wait(600)
    status = rebuilder.status()
    assert status.state == "idle" and status.last_error is None
    assert "broken" in load_index(workspace.index_dir).documents
