"""Staged builds seen through the real API of a real ``forumqa serve`` process (issue 17).

A document uploaded to a private copy of the session's corpus and index is answerable once its fast
stages (text, chunks, BM25, MiniLM) are built, while its e5 stage still runs; the status endpoint shows
each stage with done/total moving. A server killed with SIGKILL in the middle of the e5 stage loses
nothing: the next server serves the answerable build, resumes e5 from the vectors already written to
the cache (embedding fewer texts than the document has), and answers.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import copy_workspace
from server_support import ServeProcess

from rag.config import Settings
from rag.index.build import current_build_dir, read_manifest
from rag.qa import ForumQA

STAGES = ["text", "chunks", "bm25", "minilm", "e5", "use"]
DOC_ID = "orchard-island-almanac"
QUESTION = "How many lighthouses stand on Orchard Island?"
KOREAN_QUESTION = "오처드 섬에는 등대가 몇 개 있습니까?"


def almanac(n: int = 120) -> bytes:
    """A made-up document long enough that its e5 stage takes several seconds: ``n`` distinct sentences
    and one that answers QUESTION."""
    crops = ["apples", "pears", "plums", "quinces", "cherries", "apricots", "medlars", "figs"]
    lines = ["Orchard Island Almanac", "", "Lighthouses",
             "Orchard Island has exactly seventeen lighthouses along its rocky northern coast.", ""]
    for i in range(n):
        if i % 20 == 0:
            lines += ["", f"Harvest Year {1900 + i}"]
        crop = crops[i % len(crops)]
        lines.append(
            f"In the season of {1900 + i} the growers of parish {i % 13 + 1} picked {40 + 7 * i} crates "
            f"of {crop} before the storm number {i // 3 + 1} reached the western harbour."
        )
    return ("\n".join(lines) + "\n").encode()


def status_of(server: ServeProcess) -> dict[str, Any]:
    return dict(httpx.get(server.url + "/api/index/status", timeout=30).json())


def stage(status: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in status["stages"] if s["name"] == name)


def wait_for(server: ServeProcess, predicate: Any, timeout: float, what: str) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        status = status_of(server)
        if predicate(status):
            return status
        assert server.process.poll() is None, "the server died"
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}: {status_of(server)}")


def ask(server: ServeProcess, question: str) -> dict[str, Any]:
    response = httpx.post(server.url + "/api/answer", json={"question": question}, timeout=120)
    assert response.status_code == 200, response.text
    return dict(response.json())


@pytest.fixture
def workspace(settings: Settings, qa: ForumQA, tmp_path: Path) -> Settings:
    return copy_workspace(settings, tmp_path)


@pytest.fixture
def servers() -> Iterator[list[ServeProcess]]:
    started: list[ServeProcess] = []
    yield started
    for server in started:
        server.kill()


def test_answerable_before_the_e5_stage_ends_and_progress_moves(
    workspace: Settings, servers: list[ServeProcess], tmp_path: Path
) -> None:
    server = ServeProcess(workspace, tmp_path / "server.log")
    servers.append(server)
    server.wait_ready()
    idle = status_of(server)
    assert [s["name"] for s in idle["stages"]] == STAGES
    assert all(s["state"] == "done" for s in idle["stages"])  # the copied index is complete

    files = {"file": ("almanac.txt", almanac())}
    response = httpx.post(server.url + "/api/documents", files=files, timeout=60)
    assert response.status_code == 202, response.text

    # The e5 stage running: the fast stages are done and published, with their counts.
    status = wait_for(server, lambda s: stage(s, "e5")["state"] == "running", 300, "the e5 stage")
    for name in ("text", "chunks", "bm25", "minilm"):
        done = stage(status, name)
        assert done["state"] == "done", done
        assert done["total"] and done["done"] == done["total"] and done["seconds"] is not None, done
    assert stage(status, "minilm")["rate"] > 0
    assert stage(status, "use")["state"] == "waiting"
    served = read_manifest(current_build_dir(workspace.index_dir))
    assert served is not None and list(served["embedders"]) == ["minilm"]
    assert served["pending"] == ["e5", "use"]

    # Answerable now, from the new document, while e5 still runs.
    answer = ask(server, QUESTION)
    assert answer["citations"][0]["doc_id"] == DOC_ID, answer
    assert "seventeen" in answer["answer"]
    # A Korean question cannot be read before the multilingual models exist: said so, not "not covered".
    korean = ask(server, KOREAN_QUESTION)
    assert korean["verdict"] == "uncertain" and "multilingual" in korean["answer"], korean
    during = status_of(server)
    assert stage(during, "e5")["state"] == "running", "e5 ended before the answer: make the document longer"

    # done/total of the running stage are the top-level ones, and done moves.
    seen = {during["done"]}
    assert during["total"] == stage(during, "e5")["total"] > 0
    deadline = time.monotonic() + 120
    while len(seen) < 3 and time.monotonic() < deadline:
        current = status_of(server)
        if stage(current, "e5")["state"] != "running":
            break
        seen.add(current["done"])
        time.sleep(0.2)
    assert len(seen) >= 2, seen

    final = wait_for(server, lambda s: s["state"] == "idle", 600, "every stage")
    assert [s["state"] for s in final["stages"]] == ["done"] * len(STAGES), final["stages"]
    assert final["done"] is None and final["total"] is None  # nothing runs
    e5 = stage(final, "e5")
    assert e5["done"] == e5["total"] > 0 and e5["rate"] > 0
    served = read_manifest(current_build_dir(workspace.index_dir))
    assert served is not None and list(served["embedders"]) == STAGES[3:] and served["pending"] == []
    assert ask(server, QUESTION)["citations"][0]["doc_id"] == DOC_ID


def test_a_kill_in_the_e5_stage_then_a_restart_resumes_and_answers(
    workspace: Settings, servers: list[ServeProcess], tmp_path: Path
) -> None:
    first = ServeProcess(workspace, tmp_path / "server.log")
    servers.append(first)
    first.wait_ready()
    document = almanac()
    response = httpx.post(first.url + "/api/documents", files={"file": ("almanac.txt", document)}, timeout=60)
    assert response.status_code == 202, response.text
    status = wait_for(first, lambda s: stage(s, "e5")["state"] == "running", 300, "the e5 stage")
    to_embed = stage(status, "e5")["total"]
    e5_cache = next((workspace.index_dir / "vectors").glob("e5-*"))
    shards_before = set(e5_cache.glob("*.npz"))
    # Kill once e5 has written at least one shard of the new document's vectors (and before it ends).
    deadline = time.monotonic() + 300
    while not set(e5_cache.glob("*.npz")) - shards_before:
        assert time.monotonic() < deadline, "no e5 shard was written"
        assert stage(status_of(first), "e5")["state"] == "running", "e5 ended before a kill"
        time.sleep(0.05)
    first.kill()
    answerable = current_build_dir(workspace.index_dir)
    manifest = read_manifest(answerable)
    assert manifest is not None and manifest["pending"] == ["e5", "use"]  # the fast stages' build serves

    second = ServeProcess(workspace, tmp_path / "server.log")
    servers.append(second)
    second.wait_ready()
    # Serving at once (the build is answerable), while e5 resumes in the background.
    assert ask(second, QUESTION)["citations"][0]["doc_id"] == DOC_ID
    final = wait_for(second, lambda s: s["state"] == "idle", 600, "the resumed stages")
    assert [s["state"] for s in final["stages"]] == ["done"] * len(STAGES), final["stages"]
    resumed = stage(final, "e5")
    assert 0 <= resumed["total"] < to_embed, (resumed, to_embed)  # what the first server embedded stayed
    assert stage(final, "minilm")["total"] == 0  # nothing of the fast stages was redone
    served = read_manifest(current_build_dir(workspace.index_dir))
    assert served is not None and served["pending"] == []
    assert not list((workspace.index_dir / "builds").glob(".tmp-*"))
    assert ask(second, QUESTION)["citations"][0]["doc_id"] == DOC_ID
