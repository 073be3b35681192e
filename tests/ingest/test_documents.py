"""The document store (rag/ingest/store.py) and the background rebuilder (rag/serving/rebuild.py), on real
files, real loads and real index builds over a private copy of the session's corpus and index."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from core_support import copy_workspace

from rag.config import Settings
from rag.index.build import build_index
from rag.index.publish import current_build_dir
from rag.index.publish import load_build as load_index
from rag.ingest import store
from rag.qa import ForumQA
from rag.serving.rebuild import Rebuilder

REPORT = "third-korea-russia-forum"
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
