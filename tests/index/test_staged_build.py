"""Staged builds (rag/index/build.py) and the vector cache (rag/index/vector_cache.py), on the real models.

A build stopped once answerable (MiniLM's sentences in, its chunk vectors derived from them), then
completed, gives the very index a one-shot build gives: the same vectors, and the same answers and figures
on the dev set. A model stage cancelled between batches keeps what it embedded, and the next build embeds
only the rest. A damaged cache shard is skipped, not fatal.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from core_support import CORPUS, DEV_SET

from rag.config import Settings
from rag.evaluation import evaluate, load_questions, metrics
from rag.hashing import sha256_text
from rag.index.build import build_index
from rag.index.publish import current_build_dir, read_manifest
from rag.index.publish import load_build as load_index
from rag.index.search_index import chunk_embed_text, chunk_vectors_from_sentences
from rag.index.stages import Stages
from rag.index.vector_cache import VectorCache
from rag.qa import ForumQA
from rag.store.files import FileStore


def test_a_staged_build_equals_a_one_shot_build(settings: Settings, qa: ForumQA, tmp_path: Path) -> None:
    """From scratch: answerable first (MiniLM only, e5 and USE pending), then completed. Same vectors as
    the session's one-shot build, and the same answer, verdict and confidence for every dev question."""
    staged = settings.model_copy(update={"index_dir": tmp_path / "index"})
    first = build_index(staged, progress=False, until="answerable")
    assert first.rebuilt and first.pending == ["minilm", "e5", "use"]
    names = ["text", "chunks", "bm25", "minilm", "e5", "use"]
    assert [s.name for s in first.stages] == list(Stages.of(staged).names) == names
    assert [s.state for s in first.stages] == ["done"] * 3 + ["waiting"] * 3
    manifest = read_manifest(current_build_dir(staged.index_dir))
    assert manifest is not None and list(manifest["embedders"]) == ["minilm", "e5", "use"]
    report = "third-korea-russia-forum"
    assert manifest["coverage"] == {"minilm": {"missing": [], "derived": [report]},
                                    "e5": {"missing": [report], "derived": []},
                                    "use": {"missing": [report], "derived": []}}
    assert manifest["pending"] == {report: ["e5", "use"]}
    loaded = load_index(staged.index_dir)
    assert loaded.models == ("minilm",) and loaded.pending == {report: ("e5", "use")}
    partial = ForumQA(staged, loaded)
    answer = partial.answer("When did the Third Korea-Russia Forum take place?")
    assert answer.verdict == "answered" and "September" in answer.answer

    rest = build_index(staged, progress=False)
    assert rest.rebuilt and rest.pending == [] and "adding minilm, e5, use" in rest.reason
    sentence_keys = {sha256_text(s.text) for s in loaded.sentences}
    chunk_texts = {sha256_text(chunk_embed_text(c)) for c in loaded.chunks} - sentence_keys
    assert rest.embedded["minilm"] == len(chunk_texts)  # its sentences were not embedded again
    assert set(rest.embedded) == {"minilm", "e5", "use"}
    assert [s.state for s in rest.stages] == ["done"] * 6
    assert build_index(staged, progress=False).rebuilt is False  # complete now

    index, one_shot = load_index(staged.index_dir), qa.index
    assert index.embedder_names == one_shot.embedder_names == ["minilm", "e5", "use"]
    for name in index.embedder_names:
        assert np.array_equal(index.sentence_vectors[name], one_shot.sentence_vectors[name])
        n = index.chunk_vectors[name].ntotal
        assert np.array_equal(
            index.chunk_vectors[name].reconstruct_n(0, n), one_shot.chunk_vectors[name].reconstruct_n(0, n)
        )
    items = load_questions(DEV_SET)
    mine = evaluate(ForumQA(staged, index), items)
    theirs = evaluate(ForumQA(qa.settings, one_shot), items)
    for a, b in zip(mine, theirs, strict=True):
        assert (a.rank, a.answer.answer, a.answer.verdict, a.answer.confidence) == (
            b.rank,
            b.answer.answer,
            b.answer.verdict,
            b.answer.confidence,
        ), a.item.id
    for lang in ("en", "ko", "ru"):
        figures = [metrics([r for r in results if r.item.lang == lang]) for results in (mine, theirs)]
        for timing in ("p50_ms", "p95_ms"):  # latencies differ run to run; every figure else must not
            for f in figures:
                f.pop(timing, None)
        assert figures[0] == figures[1], lang


def test_a_cancelled_stage_keeps_its_vectors_and_the_next_build_resumes(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "report.txt").write_bytes((CORPUS / "third-korea-russia-forum.txt").read_bytes())
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedders=["minilm", "e5"])
    calls = 0

    def after_two_batches() -> bool:
        nonlocal calls
        calls += 1
        return calls > 2  # asked before each batch once answerable: MiniLM's chunks, one e5 batch, cancel

    stopped = build_index(settings, progress=False, should_stop=after_two_batches)
    assert stopped.pending == ["e5"]
    assert [s.state for s in stopped.stages] == ["done"] * 4 + ["waiting"]  # e5 runs again next time
    e5 = stopped.stages[-1]
    assert e5.total and e5.done == 32 < e5.total  # one batch of 32 sentences embedded...
    manifest = read_manifest(current_build_dir(settings.index_dir))
    assert manifest is not None and manifest["pending"] == {"report": ["e5"]}  # ...the answerable build
    resumed = build_index(settings, progress=False)
    index = load_index(settings.index_dir)
    sentences = {sha256_text(s.text) for s in index.sentences}
    chunks = {sha256_text(chunk_embed_text(c)) for c in index.chunks} - sentences
    assert resumed.pending == [] and resumed.embedded == {"e5": e5.total - 32 + len(chunks)}  # not redone


def test_a_damaged_shard_is_skipped_and_the_rest_is_read(tmp_path: Path) -> None:
    cache = VectorCache(tmp_path, "m", {"model_id": "x"}, 4)
    cache.put("a", np.ones(4, dtype=np.float32))
    cache.flush()
    cache.put("b", np.full(4, 2.0, dtype=np.float32))
    cache.flush()
    shards = sorted(cache.folder.glob("*.npz"))
    assert len(shards) == 2
    shards[1].write_bytes(shards[1].read_bytes()[:40])  # cut short, as a failing disk might leave it
    again = VectorCache(tmp_path, "m", {"model_id": "x"}, 4).load()
    assert "a" in again and "b" not in again
    again.compact({"a"})
    assert len(list(again.folder.glob("*.npz"))) == 1
    assert len(VectorCache(tmp_path, "m", {"model_id": "x"}, 4).load()) == 1
    other = VectorCache(tmp_path, "m", {"model_id": "y"}, 4)  # another encoder: another folder
    assert other.folder != cache.folder and len(other.load()) == 0


def test_chunk_vectors_from_sentences_are_unit_means() -> None:
    from rag.types import Chunk

    sentences = np.array([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]], dtype=np.float32)
    chunk = Chunk(id=0, doc_id="d", section="s", start=0, end=1, text="t", sentence_ids=(0, 1))
    (vector,) = chunk_vectors_from_sentences([chunk], sentences)
    assert vector == pytest.approx([2**-0.5, 2**-0.5])


def test_an_add_keeps_every_model_for_the_others_and_a_removal_embeds_nothing(tmp_path: Path) -> None:
    """Per document: a document added to a complete index is published with every model for the others
    (it alone waits for e5), and its removal publishes a complete build at once, embedding nothing."""
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "report.txt").write_bytes((CORPUS / "third-korea-russia-forum.txt").read_bytes())
    settings = Settings(corpus_dir=corpus, index_dir=tmp_path / "index", embedders=["minilm", "e5"])
    build_index(settings, progress=False)
    (corpus / "note.txt").write_text("Jeju Note\n\nThe Jeju Forum has met on Jeju Island since 2001. "
                                     "It gathers diplomats every spring.\n", encoding="utf-8")
    published: list[dict[str, object]] = []
    build_index(settings, progress=False,
                on_publish=lambda build: published.append(read_manifest(build) or {}))
    assert published[0]["pending"] == {"note": ["e5"]}  # the report kept e5 in the very first build
    assert published[-1]["pending"] == {}
    rows = {row.id: row.state for row in FileStore(settings).documents()}
    assert rows == {"report": "ready", "note": "ready"}
    (corpus / "note.txt").unlink()
    published.clear()
    removed = build_index(settings, progress=False,
                          on_publish=lambda build: published.append(read_manifest(build) or {}))
    assert removed.embedded == {"minilm": 0, "e5": 0} and removed.pending == []
    assert len(published) == 1 and published[0]["pending"] == {}  # complete at once
