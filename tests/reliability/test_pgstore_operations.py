"""The PostgreSQL store as an operator runs it (issue 26, F1-F6), against a real PostgreSQL 18 + pgvector
(tests/pg_support.py) and real ``forumqa serve`` / ``forumqa worker`` processes:

- F1: the postmaster frozen (SIGSTOP) for 10 s while the status route is polled: no replica stalls.
- F2: a restarted replica serves before any queued embedding job runs, and honours FORUMQA_DB_JOBS=false.
- F3: a URL with an unencoded / # ? @ in its password is refused without echoing any of it.
- F4: a job that always fails is marked failed after a few attempts, its error shown in the status, by
  ``forumqa db status``, and queued again by ``forumqa db retry``; a read-only worker says so and stops.
- F5: with the database down, writes fail fast with 503 (naming no host) and answers keep flowing.
- F6: a killed worker's job is taken over within about the lease, and ``db status`` shows its owner, age,
  attempts and progress.
- Also: feedback goes to the database; replicas show the build progress; threads stop at shutdown.

The replicas embed with MiniLM alone (FORUMQA_EMBEDDERS) to keep the suite short.
"""

from __future__ import annotations

import os
import signal
import statistics
import subprocess
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import numpy as np
import psycopg
import pytest
from pg_support import EmbeddedPostgres, wait_for
from pydantic import SecretStr

from rag.config import Settings
from rag.store.postgres import PostgresStore, jobs, read_snapshot

from .support import FORUMQA, ServerProcess, clean_env
from .test_pgstore_replicas import FAST, reader_role, run_cli, upload

QUESTION = "When did the Third Korea-Russia Forum take place?"


def ledger(kilobytes: int, name: str = "Barge Ledger") -> str:
    """A made-up document of about ``kilobytes`` KB of distinct sentences."""
    lines = [name, ""]
    i = 0
    while sum(len(line) + 1 for line in lines) < kilobytes * 1000:
        if i % 40 == 0:
            lines += ["", f"Season {1800 + i // 40}"]
        lines.append(f"Barge number {i} carried {i * 7 % 97} tonnes of timber from port {i % 13} in week "
                     f"{i % 52} of the year {1800 + i // 40}.")
        i += 1
    return "\n".join(lines) + "\n"


@pytest.fixture
def upgraded(database_url: str) -> str:
    result = run_cli("db", "upgrade", env=clean_env(FORUMQA_DATABASE_URL=database_url))
    assert result.returncode == 0, result.stderr
    return database_url


@pytest.fixture
def embedded(postgres: tuple[str, EmbeddedPostgres | None]) -> EmbeddedPostgres:
    if postgres[1] is None:
        pytest.skip("stops or freezes the embedded PostgreSQL; FORUMQA_TEST_DATABASE_URL names another")
    return postgres[1]


def postmaster_pid(server: EmbeddedPostgres) -> int:
    return int((server.pgdata / "postmaster.pid").read_text().split()[0])


def db_settings(settings: Settings, url: str, tmp_path: Path, **more: Any) -> Settings:
    return settings.model_copy(update={"database_url": SecretStr(url), "embedders": ["minilm"],
                                       "index_dir": tmp_path / "no-index", **more})


def timed_get(url: str, timeout: float = 30) -> tuple[float, int]:
    started = time.monotonic()
    try:
        status = httpx.get(url, timeout=timeout).status_code
    except httpx.HTTPError:
        status = 0
    return time.monotonic() - started, status


def timed_answer(url: str) -> tuple[float, int]:
    started = time.monotonic()
    try:
        status = httpx.post(url + "/api/answer", json={"question": QUESTION}, timeout=60).status_code
    except httpx.HTTPError:
        status = 0
    return time.monotonic() - started, status


class Traffic:
    """Threads that ask, check health and poll the status of some replicas, recording (time, seconds,
    status) per replica and kind."""

    def __init__(self, urls: list[str]) -> None:
        self.urls = urls
        self.records: dict[tuple[str, str], list[tuple[float, float, int]]] = {}
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, args=(url, kind), daemon=True)
                         for url in urls for kind in ("healthz", "answer", "status")]

    def _loop(self, url: str, kind: str) -> None:
        calls: dict[str, Callable[[], tuple[float, int]]] = {
            "healthz": lambda: timed_get(url + "/healthz"),
            "answer": lambda: timed_answer(url),
            "status": lambda: timed_get(url + "/api/index/status"),
        }
        while not self._stop.is_set():
            at = time.monotonic()
            seconds, status = calls[kind]()
            self.records.setdefault((url, kind), []).append((at, seconds, status))
            self._stop.wait(0.1 if kind != "answer" else 0.05)

    def __enter__(self) -> Traffic:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=90)

    def slowest(self, url: str, kind: str, start: float, end: float) -> float:
        """The slowest call of ``kind`` to ``url`` that was under way at some moment of [start, end]."""
        calls = [s for at, s, _ in self.records.get((url, kind), []) if at <= end and at + s >= start]
        return max(calls, default=0.0)

    def statuses(self, url: str, kind: str) -> set[int]:
        return {status for _, _, status in self.records.get((url, kind), [])}


# ---------------------------------------------------------------------------------------- F1


def test_a_frozen_database_freezes_no_replica(
    upgraded: str, embedded: EmbeddedPostgres, tmp_path: Path, settings: Settings,
    start_server: Callable[..., ServerProcess],
) -> None:
    """The postmaster stopped (SIGSTOP) for 10 s while both replicas are asked, health-checked and have
    their status polled: the status comes from memory, so no route waits on the database; /healthz stays
    fast and answers keep their pace on every replica."""
    mine = settings.model_copy(update={"index_dir": tmp_path / "no-index"})
    a = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, **FAST))
    a.wait_ready()
    b = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, FORUMQA_DB_JOBS="false", **FAST))
    b.wait_ready()
    pid = postmaster_pid(embedded)
    with Traffic([a.url, b.url]) as traffic:
        time.sleep(5)
        calm = time.monotonic()
        os.kill(pid, signal.SIGSTOP)
        frozen = time.monotonic()
        try:
            time.sleep(10)
        finally:
            os.kill(pid, signal.SIGCONT)
        thawed = time.monotonic()
        time.sleep(2)
    figures = {}
    for server in (a, b):
        figures[server.url] = {
            "healthz": traffic.slowest(server.url, "healthz", frozen, thawed),
            "answer": traffic.slowest(server.url, "answer", frozen, thawed),
            "status": traffic.slowest(server.url, "status", frozen, thawed),
            "healthz before": traffic.slowest(server.url, "healthz", calm - 5, calm),
            "answer before": traffic.slowest(server.url, "answer", calm - 5, calm),
        }
        for kind in ("healthz", "answer", "status"):
            assert traffic.statuses(server.url, kind) == {200}, (kind, traffic.statuses(server.url, kind))
    print(f"\ndatabase frozen 10 s; slowest calls during it, per replica: {figures}")
    # It stalled for up to 5 s when the status route blocked on the database. Nothing waits on it now: on a
    # loaded two-core machine the same calls' pace before the freeze is the yardstick.
    for url, f in figures.items():
        assert f["healthz"] < max(1.0, 3 * f["healthz before"]), (url, f)
        assert f["status"] < max(1.0, 3 * f["healthz before"]), (url, f)
        assert f["answer"] < max(1.5, 3 * f["answer before"]), (url, f)


# ---------------------------------------------------------------------------------------- F2


def test_a_restarted_replica_serves_before_its_queued_jobs(
    upgraded: str, tmp_path: Path, settings: Settings, start_server: Callable[..., ServerProcess]
) -> None:
    """A document's jobs queued (its replica ran none: FORUMQA_DB_JOBS=false, honoured), the replica is
    restarted with jobs on: it is ready while the job still runs, then serves the document too."""
    mine = settings.model_copy(update={"index_dir": tmp_path / "no-index"})
    store = PostgresStore(db_settings(settings, upgraded, tmp_path))
    store.build(progress=False)  # the report, imported and embedded: something to serve
    store.stop()
    a = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, FORUMQA_DB_JOBS="false", **FAST))
    a.wait_ready()
    response = upload(a.url, "ledger.txt", ledger(200))
    assert response.status_code == 202, response.text
    doc_id = response.json()["document"]["id"]
    time.sleep(3)  # jobs off: nothing claims the job
    with psycopg.connect(upgraded) as conn:
        assert conn.execute("SELECT attempts, state FROM forumqa_jobs WHERE doc_id = %s",
                            (doc_id,)).fetchone() == (0, "queued")
    a.stop()

    started = time.monotonic()
    b = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, **FAST))
    b.wait_ready()
    ready_after = time.monotonic() - started
    with psycopg.connect(upgraded) as conn:
        ready, state = conn.execute(
            "SELECT d.ready, j.state FROM forumqa_documents d JOIN forumqa_jobs j ON j.doc_id = d.id "
            "WHERE d.id = %s", (doc_id,)).fetchone()
    assert not ready and state == "queued", "the replica ran the job before serving"
    print(f"\nrestarted replica ready after {ready_after:.1f}s with a 200 KB document's job queued")
    def listed() -> bool:
        return doc_id in {d["id"] for d in httpx.get(b.url + "/api/documents").json()["documents"]}

    assert wait_for(listed, timeout=600, interval=1), b.log()[-3000:]


# ---------------------------------------------------------------------------------------- F3


@pytest.mark.parametrize("password", ["Hunter2/abc", "Secret9@x", "pa#ss9word", "que?ry9pw", "50%off9"])
def test_a_url_with_unencoded_characters_never_echoes_the_password(
    database_url: str, tmp_path: Path, settings: Settings, password: str
) -> None:
    parts = urlsplit(database_url)
    url = f"postgresql://{parts.username}:{password}@{parts.hostname}:{parts.port}{parts.path}"
    result = run_cli("serve", "--corpus-dir", str(settings.corpus_dir), "--index-dir", str(tmp_path / "i"),
                     "--port", "1", env=clean_env(FORUMQA_DATABASE_URL=url, **FAST), timeout=120)
    assert result.returncode == 1
    out = result.stdout + result.stderr
    assert "percent-encode" in out, out
    for piece in {password, *password.replace("/", " ").replace("@", " ").replace("#", " ").replace(
            "?", " ").replace("%", " ").split()}:
        if len(piece) >= 3:
            assert piece not in out, (piece, out)


# ---------------------------------------------------------------------------------------- F4


class Broken:
    """An embedder that always fails, as a model whose runtime breaks on some input would."""

    name, dim, passage_batch = "minilm", 384, 64

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        raise RuntimeError("the model's runtime crashed on this input")


def test_a_job_that_always_fails_is_given_up_shown_and_retried(
    upgraded: str, tmp_path: Path, settings: Settings
) -> None:
    mine = db_settings(settings, upgraded, tmp_path)
    store = PostgresStore(mine)
    store.prepare(progress=False)
    jobs.drain(store.db, mine, progress=False)  # the report is embedded for real
    stored = store.add(ledger(5, "Broken Ledger").encode(), "broken.txt")
    started = time.monotonic()
    embedders = jobs.Embedders(mine, {"minilm": Broken()})  # type: ignore[dict-item]
    while time.monotonic() - started < 60:
        jobs.drain(store.db, mine, progress=False, embedders=embedders)
        with store.db.connect(autocommit=True) as conn:
            state, attempts, error = conn.execute(
                "SELECT state, attempts, last_error FROM forumqa_jobs WHERE doc_id = %s", (stored.id,)
            ).fetchone()
        if state == "failed":
            break
        time.sleep(0.2)
    given_up = time.monotonic() - started
    assert state == "failed" and attempts <= 5 and given_up <= 30, (state, attempts, given_up)
    assert "runtime crashed" in error
    # Shown: in the status (read from the snapshot a replica polls), by `forumqa db status`.
    with store.db.connect(autocommit=True) as conn:
        store.snapshot = read_snapshot(conn)
    status = store.status(store.load(progress=False, until="answerable"))
    assert status.state == "failed" and [f.doc_id for f in status.failed] == [stored.id]
    assert "runtime crashed" in status.failed[0].error and "runtime crashed" in (status.last_error or "")
    env = clean_env(FORUMQA_DATABASE_URL=upgraded, **FAST)
    shown = run_cli("db", "status", env=env)
    assert shown.returncode == 0, shown.stderr
    assert f"{stored.id}  failed" in shown.stdout and "runtime crashed" in shown.stdout, shown.stdout
    assert f"attempt(s) {attempts}" in shown.stdout
    # `forumqa db retry` queues it again, and a working model finishes it.
    retried = run_cli("db", "retry", stored.id, env=env)
    assert retried.returncode == 0 and "queued 1 failed job(s) again" in retried.stdout, retried
    assert jobs.drain(store.db, mine, progress=False) == 1
    assert stored.id in store.load(progress=False, until="answerable").documents
    print(f"\na job that always fails: given up after {attempts} attempts in {given_up:.1f}s")
    store.stop()


def test_a_worker_on_a_read_only_role_says_so_once_and_stops(upgraded: str) -> None:
    reader = reader_role(upgraded)
    started = time.monotonic()
    result = run_cli("worker", "--quiet", env=clean_env(FORUMQA_DATABASE_URL=reader, **FAST), timeout=120)
    assert result.returncode == 1 and time.monotonic() - started < 60
    assert result.stderr.count("may only read") == 1, result.stderr
    assert urlsplit(reader).password not in result.stderr


# ---------------------------------------------------------------------------------------- F5


def test_writes_fail_fast_while_the_database_is_down_and_answers_flow(
    upgraded: str, embedded: EmbeddedPostgres, tmp_path: Path, settings: Settings,
    start_server: Callable[..., ServerProcess],
) -> None:
    mine = settings.model_copy(update={"index_dir": tmp_path / "no-index"})
    a = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, **FAST))
    a.wait_ready()
    host = urlsplit(upgraded)
    embedded.stop("fast")
    try:
        def delete(n: int) -> tuple[float, int, str]:
            started = time.monotonic()
            response = httpx.delete(f"{a.url}/api/documents/doc-{n}", timeout=60)
            return time.monotonic() - started, response.status_code, response.text

        with Traffic([a.url]) as traffic:
            time.sleep(1)
            began = time.monotonic()
            with ThreadPoolExecutor(max_workers=50) as pool:
                results = list(pool.map(delete, range(50)))
            ended = time.monotonic()
            time.sleep(1)
    finally:
        embedded.start()
    assert {status for _, status, _ in results} == {503}, results[:3]
    slowest = max(seconds for seconds, _, _ in results)
    for _, _, body in results:
        assert "unavailable" in body and str(host.port) not in body and "127.0.0.1" not in body, body
    answer_slowest = traffic.slowest(a.url, "answer", began, ended)
    print(f"\n50 DELETEs with the database down: slowest 503 after {slowest:.2f}s; slowest answer meanwhile "
          f"{answer_slowest:.2f}s; median {statistics.median(s for s, _, _ in results):.2f}s")
    assert slowest < 5.0  # each waited 5-10 s for a connection, and starved the thread pool
    assert traffic.statuses(a.url, "answer") == {200}
    assert answer_slowest < 3.0
    # Back: a write goes through again.
    assert wait_for(lambda: upload(a.url, "back.txt", "Back Note\n\nThe ferry sailed on time.\n").status_code
                    == 202, timeout=30, interval=1)


# ---------------------------------------------------------------------------------------- F6


def test_a_killed_workers_job_is_taken_over_within_the_lease(
    upgraded: str, tmp_path: Path, settings: Settings, start_server: Callable[..., ServerProcess]
) -> None:
    """Default lease (10 s, renewed every third of it): worker A is SIGKILLed mid-job; worker B (already
    waiting) takes the job over within about the lease; `db status` shows owner, age, attempts and
    progress meanwhile; a replica with jobs off serves the document once B is done with its sentences."""
    mine = db_settings(settings, upgraded, tmp_path)
    env = clean_env(FORUMQA_DATABASE_URL=upgraded, **FAST)
    store = PostgresStore(mine)
    store.prepare(progress=False)
    jobs.drain(store.db, mine, progress=False)
    replica = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, FORUMQA_DB_JOBS="false", **FAST))
    replica.wait_ready()
    stored = store.add(ledger(200).encode(), "ledger.txt")

    def owner_and_done() -> tuple[str | None, int]:
        with store.db.connect(autocommit=True) as conn:
            row = conn.execute("SELECT lease_owner, done FROM forumqa_jobs WHERE doc_id = %s",
                               (stored.id,)).fetchone()
        return row[0], int(row[1])

    logs = [(tmp_path / f"worker-{n}.log").open("wb") for n in "ab"]
    worker_a = subprocess.Popen([str(FORUMQA), "worker", "--quiet"], env=env, stdout=logs[0],
                                stderr=subprocess.STDOUT, start_new_session=True)
    worker_b: subprocess.Popen[bytes] | None = None
    try:
        assert wait_for(lambda: owner_and_done()[1] > 0, timeout=180, interval=0.2), "A made no progress"
        owner_a = owner_and_done()[0]
        shown = run_cli("db", "status", env=env)
        assert f"owner {owner_a}" in shown.stdout and "attempt(s) 1" in shown.stdout, shown.stdout
        assert "age " in shown.stdout and "done " in shown.stdout
        worker_b = subprocess.Popen([str(FORUMQA), "worker", "--quiet"], env=env, stdout=logs[1],
                                    stderr=subprocess.STDOUT, start_new_session=True)
        time.sleep(2)
        worker_a.send_signal(signal.SIGKILL)
        killed = time.monotonic()
        taken = wait_for(lambda: owner_and_done()[0] not in (None, owner_a), timeout=60, interval=0.2)
        taken_after = time.monotonic() - killed
        assert taken, "nobody took the job over"
        served = lambda: stored.id in {  # noqa: E731
            d["id"] for d in httpx.get(replica.url + "/api/documents", timeout=10).json()["documents"]}
        assert wait_for(served, timeout=600, interval=0.5), replica.log()[-3000:]
        answerable_after = time.monotonic() - killed
    finally:
        for worker in (worker_a, worker_b):
            if worker is not None and worker.poll() is None:
                worker.kill()
                worker.wait(10)
        for log in logs:
            log.close()
    print(f"\nworker killed mid-job (200 KB): taken over after {taken_after:.1f}s, answerable on the replica "
          f"after {answerable_after:.1f}s")
    assert taken_after <= 15.0
    store.stop()


# ---------------------------------------------------------------------------------------- also


def test_feedback_goes_to_the_database_and_replicas_show_progress(
    upgraded: str, tmp_path: Path, settings: Settings, start_server: Callable[..., ServerProcess]
) -> None:
    mine = settings.model_copy(update={"index_dir": tmp_path / "no-index"})
    a = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, FORUMQA_FEEDBACK="1", **FAST))
    a.wait_ready()
    b = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, FORUMQA_DB_JOBS="false", **FAST))
    b.wait_ready()
    answer = httpx.post(a.url + "/api/answer", json={"question": QUESTION}, timeout=60).json()
    body = {"question": QUESTION, "answer_id": answer["answer_id"], "answer": answer["answer"],
            "verdict": answer["verdict"], "rating": "up", "comment": "right"}
    assert httpx.post(a.url + "/api/feedback", json=body, timeout=30).status_code == 201
    assert not (tmp_path / "no-index" / "feedback.jsonl").exists()  # not on the replica's disk
    exported = run_cli("feedback", "export", env=clean_env(FORUMQA_DATABASE_URL=upgraded))
    assert exported.returncode == 0 and '"comment": "right"' in exported.stdout, exported.stderr
    assert "forumqa_feedback" in exported.stderr

    # B runs no jobs, yet shows A's progress on the document being embedded.
    response = upload(a.url, "ledger.txt", ledger(60))
    assert response.status_code == 202
    doc_id = response.json()["document"]["id"]

    def running_on_b() -> dict[str, Any] | None:
        status = httpx.get(b.url + "/api/index/status", timeout=10).json()
        stage = next(s for s in status["stages"] if s["name"] == "minilm")
        return status if stage["state"] == "running" and status["state"] == "building" else None

    seen = wait_for(running_on_b, timeout=120, interval=0.2)
    assert seen, "replica B never showed the build"
    assert doc_id in (seen["phase"] or "") and doc_id in seen["pending"]["added"]
    def served() -> bool:
        return doc_id in {d["id"] for d in httpx.get(b.url + "/api/documents").json()["documents"]}

    assert wait_for(served, timeout=300, interval=0.5)
    # A reload per published change, each reading only the document that changed.
    assert "(1 read again)" in b.log(), b.log()[-2000:]
