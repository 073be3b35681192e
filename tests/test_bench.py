"""Smoke tests of the benchmark code (bench/) on tiny sizes: its arithmetic and tables, not speed."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest

from bench import answer_latency, loadgen, scale
from bench.__main__ import parse_args
from bench.common import (
    Check,
    Context,
    Latency,
    Question,
    Report,
    dev_questions,
    format_table,
    percentile,
    unique_variants,
)
from rag.config import Settings
from rag.qa import ForumQA


@pytest.fixture
def ctx(tmp_path: Path) -> Context:
    return Context(quick=True, workdir=tmp_path)


def test_percentile_matches_numpy_and_latency_is_ordered() -> None:
    values = list(np.random.default_rng(0).exponential(size=101))
    for q in (0, 5, 50, 95, 100):
        assert percentile(values, q) == pytest.approx(float(np.percentile(values, q)))
    assert percentile([3.0], 95) == 3.0
    latency = Latency.of(values)
    assert latency.p50 <= latency.p95 and latency.n == 101
    assert latency.mean == pytest.approx(float(np.mean(values)))
    runs = [Latency(1.0, 2.0, 10, 1.5), Latency(3.0, 9.0, 10, 4.0), Latency(2.0, 4.0, 10, 2.5)]
    assert Latency.median_of(runs) == Latency(2.0, 4.0, 30, 2.5)
    with pytest.raises(ValueError):
        percentile([], 50)


def test_recall_counts_shared_ids_and_ignores_missing() -> None:
    truth = np.array([[0, 1, 3], [5, 6, 7]])
    found = np.array([[0, 1, 2], [7, 6, 5]])
    assert scale.recall_at_k(found, truth, 3) == pytest.approx(5 / 6)
    assert scale.recall_at_k(np.array([[-1, -1, 0], [5, 6, 7]]), truth, 3) == pytest.approx(4 / 6)
    assert scale.recall_at_k(truth, truth, 2) == 1.0


def test_tables_and_verdicts(capsys: pytest.CaptureFixture[str]) -> None:
    text = format_table("t", ["name", "value"], [["a", 1.23456], ["longer", 10]])
    lines = text.splitlines()
    assert lines[0] == "== t" and lines[1].startswith("name") and set(lines[2]) <= {"-", " "}
    assert lines[3].split() == ["a", "1.235"] and len(lines) == 5
    assert Check("latency", 4.0, 5.0).verdict == "PASS"
    assert Check("latency", 6.0, 5.0).verdict == "MISS"
    assert Check("recall", 0.96, 0.95, higher_is_better=True).passed
    report = Report("demo")
    report.table("demo table", ["x"], [[1]])
    report.check(Check("x", 1.0, 0.5))
    report.print_checks()
    out = capsys.readouterr().out
    assert "== demo table" in out and "== demo: targets" in out and "MISS" in out


def test_unique_variants_are_distinct_and_reproducible() -> None:
    base = [Question("When was it?"), Question("Who came?", (("user", "x"),), "en")]
    variants = unique_variants(base, 20)
    assert len({(q.text, q.history) for q in variants}) == 20
    assert variants[:2] == base
    assert unique_variants(base, 20, shuffle=True) == unique_variants(base, 20, shuffle=True)
    with pytest.raises(ValueError):
        unique_variants(base, 10_000)
    assert dev_questions(limit=5) and len(dev_questions(limit=5)) == 5


def test_parse_args_rejects_unknown_sections() -> None:
    assert parse_args(["--quick", "scale"]).sections == ["scale"]
    with pytest.raises(SystemExit):
        parse_args(["nonsense"])


def test_synthetic_vectors_are_unit_and_seeded() -> None:
    a, qa = scale.synthetic_vectors(500, queries=5)
    b, qb = scale.synthetic_vectors(500, queries=5)
    assert a.shape == (500, scale.DIM) and qa.shape == (5, scale.DIM)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert np.array_equal(a, b) and np.array_equal(qa, qb)
    assert not np.array_equal(a, scale.synthetic_vectors(500, seed=1)[0])


def test_scale_section_on_2k_vectors(ctx: Context, capsys: pytest.CaptureFixture[str]) -> None:
    report = scale.run(ctx, sizes=[2000], n_queries=20)
    checks = {c.name: c for c in report.checks}
    assert checks["recall@10 at 2,000"].value == 1.0  # exact index: recall must be perfect
    assert checks["build reproducible at 2,000"].passed
    assert 0 < checks["search p50 at 2,000 (best thread setting)"].value < 1000
    out = capsys.readouterr().out
    assert "vector index by corpus size" in out and "IndexFlatIP" in out and "two processes holding" in out


def test_ivf_path_is_reproducible_with_sane_recall(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import rag.index.vectors

    monkeypatch.setattr(rag.index.vectors, "EXACT_SEARCH_MAX", 1000)
    same_bytes, same_results, _ = scale.reproducibility(3000, tmp_path)
    assert same_bytes and same_results
    result = scale.measure_size(3000, 20, 1, tmp_path)
    assert result.index_type == "IndexIVFScalarQuantizer"
    assert 0.5 < result.recall <= 1.0
    assert result.file_bytes / result.n < 1536  # quantised: smaller than float32 rows


def test_answer_latency_on_five_questions(
    qa: ForumQA, settings: Settings, ctx: Context, capsys: pytest.CaptureFixture[str]
) -> None:
    uncached = ForumQA(settings.model_copy(update={"cache_size": 0}), qa.index)
    report = answer_latency.run(ctx, dev_questions(limit=5), qa=uncached)
    (check,) = report.checks
    assert check.value > 0
    assert "answer latency in process" in capsys.readouterr().out
    with pytest.raises(ValueError):
        answer_latency.run(ctx, dev_questions(limit=2), qa=qa)  # the cache would hide the work


class _Answers(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        status, body = (200, {"answer": "ok"}) if self.path == "/api/answer" else (404, {"error": "no"})
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Answers)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_load_generator_counts_requests_and_errors(fake_server: str) -> None:
    bodies = [{"question": f"q{i}", "top_k": 5, "history": []} for i in range(12)]
    ok = loadgen.fire(fake_server + "/api/answer", bodies, 4, timeout=10, deadline_s=30)
    assert ok["requests"] == 12 and ok["errors"] == 0 and len(ok["latencies"]) == 12
    assert all(0 < t < 10 for t in ok["latencies"]) and ok["wall"] > 0
    bad = loadgen.fire(fake_server + "/elsewhere", bodies[:3], 2, timeout=10, deadline_s=30)
    assert bad["errors"] == 3 and not bad["latencies"] and "HTTP 404" in bad["error_samples"][0]
    with pytest.raises(ValueError, match="loopback"):
        loadgen.fire("http://192.0.2.1/api/answer", bodies, 1, timeout=1, deadline_s=1)


def test_article_corpora_copy_under_distinct_ids_and_leave_one_out(tmp_path: Path) -> None:
    from bench import articles

    source = tmp_path / "corpus"
    source.mkdir()
    for name in ("alpha", "beta"):
        (source / f"{name}.txt").write_text(f"{name.title()}\n\nA sentence about {name}.\n", encoding="utf-8")
    tenfold = articles.copies(source, tmp_path / "10x", 10)
    names = sorted(p.name for p in tenfold.iterdir())
    assert len(names) == 20 and len(set(names)) == 20 and "beta-9.txt" in names
    assert (tenfold / "alpha-3.txt").read_bytes() == (source / "alpha.txt").read_bytes()
    rest = articles.without(source, tmp_path / "nine", "alpha")
    assert [p.name for p in rest.iterdir()] == ["beta.txt"]


def test_article_build_child_reports_time_memory_and_the_added_document(tmp_path: Path) -> None:
    """The child process builds a real index, then adds a document (only its texts are embedded), then
    removes it (nothing embedded), recording each stage and when the build first answered."""
    from bench import articles

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.txt").write_text("Tiny\n\nThe forum opened in Moscow. Delegates spoke about trade.\n")
    extra = tmp_path / "b.txt"
    extra.write_text("Other\n\nGas was discussed. A pipeline is planned.\n")
    result = articles.measure_build(corpus, tmp_path / "index", ["minilm"], add=extra)
    assert (result["chunks"], result["sentences"]) == (1, 2)
    assert result["embedded"] == {"minilm": 3} and result["add_embedded"] == {"minilm": 3}
    assert result["build_s"] > 0 and result["add_s"] > 0 and result["embed_s"]["minilm"] > 0
    assert 0 < result["answerable_s"] <= result["build_s"]
    assert 0 < result["add_answerable_s"] <= result["add_s"]
    assert result["remove_embedded"] == {"minilm": 0} and result["remove_s"] > 0
    assert list(result["stages"]) == ["text", "chunks", "bm25", "minilm"]
    assert result["stages"]["minilm"]["done"] == 3 and result["add_stages"]["text"]["done"] == 2
    assert 50 * 2**20 < result["stages"]["minilm"]["peak_rss_bytes"] <= result["peak_rss_bytes"] < 2**30


def test_pgvector_scale_section_on_a_tiny_corpus(
    ctx: Context, postgres: tuple[str, object], monkeypatch: pytest.MonkeyPatch
) -> None:
    """bench/pgvector.py's scale part against the session's real PostgreSQL: pgvector and FAISS rows,
    recall against exact search, and the targets it checks (500 passages: its arithmetic, not speed)."""
    from pg_support import with_database

    from bench import pgvector

    monkeypatch.setenv("BENCH_PGVECTOR_SIZES", "500")
    report = Report("pgvector")
    pgvector.scale(ctx, report, lambda name: with_database(postgres[0], name))
    table = report.tables[-1]
    assert "pgvector HNSW ef_search=40" in table and "FAISS IndexFlatIP" in table
    recalls = [float(line.split()[-1]) for line in table.splitlines() if line.startswith("500")]
    assert len(recalls) == len(pgvector.EF_SEARCH) + 1 and all(0.9 <= r <= 1.0 for r in recalls)
    assert [c.name for c in report.checks] == [
        "pgvector search p50 at 500 (ef_search=40)", "pgvector recall@10 at 500 (ef_search=40)"]


def test_the_page_bench_takes_the_other_revision_s_page_from_git(tmp_path: Path) -> None:
    """``python -m bench.page`` serves the base revision's api/static beside this tree's (the timing
    itself needs Chromium and a server: run by hand, figures in the README)."""
    import subprocess

    from bench.page import STATIC, base_bundle

    base_bundle("HEAD", tmp_path)
    names = subprocess.run(["git", "ls-tree", "--name-only", "HEAD:api/static"], cwd=STATIC.parents[1],
                           check=True, capture_output=True, text=True).stdout.split()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(names) and "app.js" in names
    head = subprocess.run(["git", "show", "HEAD:api/static/index.html"], cwd=STATIC.parents[1], check=True,
                          capture_output=True).stdout
    assert (tmp_path / "index.html").read_bytes() == head
