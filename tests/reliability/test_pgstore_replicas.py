"""Several real processes sharing one real PostgreSQL (tests/pg_support.py): two ``forumqa serve``
replicas (one of them with a read-only role), ``forumqa worker`` processes, a worker killed mid-job, the
database restarted under load, and the start-up errors of a wrong password or an old schema.

The replicas embed with MiniLM alone (FORUMQA_EMBEDDERS) to keep start-up and the suite short; the
database store's parity over every model is tests/index/test_pgstore.py's.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
import psycopg
import pytest
from pg_support import EmbeddedPostgres, wait_for
from pydantic import SecretStr

from rag.config import Settings
from rag.ingest import store
from rag.store.postgres import database, jobs, rows

from .support import FORUMQA, ServerProcess, clean_env

FAST = {"FORUMQA_EMBEDDERS": '["minilm"]', "FORUMQA_DB_POLL_SECONDS": "0.5", "FORUMQA_ALLOW_UPLOADS": "1"}


def with_credentials(url: str, user: str, password: str) -> str:
    parts = urlsplit(url)
    netloc = f"{quote(user, safe='')}:{quote(password, safe='')}@{parts.hostname}:{parts.port}"
    return urlunsplit(parts._replace(netloc=netloc))


def run_cli(*args: str, env: dict[str, str], timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(FORUMQA), *args], env=env, capture_output=True, text=True, timeout=timeout)


def reader_role(database_url: str) -> str:
    """A role that may only read the store's tables (README, "A read-only replica"); its URL."""
    name, password = f"reader_{secrets.token_hex(4)}", secrets.token_urlsafe(12)
    dbname = urlsplit(database_url).path.lstrip("/")
    with psycopg.connect(database_url, autocommit=True) as conn:
        conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}'")  # test set-up, names are ours
        conn.execute(f'GRANT CONNECT ON DATABASE "{dbname}" TO {name}')
        conn.execute(f"GRANT USAGE ON SCHEMA public TO {name}")
        conn.execute(f"GRANT SELECT ON ALL TABLES IN SCHEMA public TO {name}")
    return with_credentials(database_url, name, password)


def upload(url: str, name: str, text: str) -> httpx.Response:
    return httpx.post(url + "/api/documents", files={"file": (name, text.encode(), "text/plain")}, timeout=30)


def cited_docs(url: str, question: str) -> set[str]:
    response = httpx.post(url + "/api/answer", json={"question": question}, timeout=30)
    response.raise_for_status()
    return {c["doc_id"] for c in response.json()["citations"]}


TUNNEL = (
    "Zorbex Tunnel Notes\n\nThe Zorbex tunnel under the Tumen river opened on 3 March 2031. "
    "It links Khasan with Rajin for freight trains. The tunnel cost 4 billion dollars.\n"
)


@pytest.fixture
def upgraded(database_url: str) -> str:
    env = clean_env(FORUMQA_DATABASE_URL=database_url)
    result = run_cli("db", "upgrade", env=env)
    assert result.returncode == 0, result.stderr
    assert "upgraded from version 0" in result.stdout
    password = urlsplit(database_url).password or ""
    assert password not in result.stdout + result.stderr
    return database_url


def test_two_replicas_share_one_database(
    upgraded: str, tmp_path: Path, settings: Settings, start_server: Callable[..., ServerProcess]
) -> None:
    """An upload through replica A is answered by replica B (a read-only role) within 5 s; a removal
    through A is gone from B as fast; B refuses changes with a clear 403; no log holds a password."""
    mine = settings.model_copy(update={"index_dir": tmp_path / "no-index"})
    a = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, **FAST))
    a.wait_ready()
    reader = reader_role(upgraded)
    b = start_server(mine, clean_env(FORUMQA_DATABASE_URL=reader, **FAST))
    b.wait_ready()
    question = "When did the Zorbex tunnel open?"
    assert "zorbex-tunnel-notes" not in cited_docs(b.url, question)

    started = time.monotonic()
    response = upload(a.url, "tunnel.txt", TUNNEL)
    assert response.status_code == 202, response.text
    doc_id = response.json()["document"]["id"]
    assert wait_for(lambda: doc_id in cited_docs(b.url, question), timeout=5, interval=0.1), (
        f"B did not answer from {doc_id} within 5 s:\n{a.log()[-2000:]}\n{b.log()[-2000:]}"
    )
    seen_after = time.monotonic() - started
    answer = httpx.post(b.url + "/api/answer", json={"question": question}, timeout=30).json()
    assert "3 March 2031" in answer["answer"]
    # B returns the text the file store would have made of the same bytes, offsets and all.
    expected = store.load_prepared(store.prepare(TUNNEL.encode(), "tunnel.txt", 10**6))
    served = httpx.get(f"{b.url}/api/documents/{doc_id}", timeout=10).json()
    assert served["text"] == expected.text
    cite = next(c for c in answer["citations"] if c["doc_id"] == doc_id)
    assert served["text"][cite["start"] : cite["end"]] == cite["text"]

    refused = upload(b.url, "other.txt", "Another Note\n\nNothing here.\n")
    assert refused.status_code == 403 and "may only read" in refused.json()["error"]["message"]
    assert httpx.delete(f"{b.url}/api/documents/{doc_id}", timeout=10).status_code == 403

    started = time.monotonic()
    assert httpx.delete(f"{a.url}/api/documents/{doc_id}", timeout=10).status_code == 202
    gone = lambda: httpx.get(f"{b.url}/api/documents/{doc_id}", timeout=10).status_code == 404  # noqa: E731
    assert wait_for(gone, timeout=5, interval=0.1)
    gone_after = time.monotonic() - started
    print(f"upload on A answered on B after {seen_after:.2f}s; removal gone from B after {gone_after:.2f}s")
    for server in (a, b):
        log = server.log()
        for url in (upgraded, reader):
            assert urlsplit(url).password not in log and url not in log


def test_wrong_password_or_old_schema_stop_the_server_with_a_clear_message(
    database_url: str, tmp_path: Path, settings: Settings
) -> None:
    args = ("serve", "--corpus-dir", str(settings.corpus_dir), "--index-dir", str(tmp_path / "i"),
            "--port", "1")
    wrong = with_credentials(database_url, urlsplit(database_url).username or "", "not-the-password-42")
    result = run_cli(*args, env=clean_env(FORUMQA_DATABASE_URL=wrong, **FAST))
    assert result.returncode == 1
    assert "password authentication failed" in result.stderr, result.stderr
    assert "not-the-password-42" not in result.stdout + result.stderr
    # The database exists but nobody ran `forumqa db upgrade`: refused, saying what to run.
    result = run_cli(*args, env=clean_env(FORUMQA_DATABASE_URL=database_url, **FAST))
    assert result.returncode == 1
    assert "schema is at version 0" in result.stderr and "forumqa db upgrade" in result.stderr, result.stderr
    password = urlsplit(database_url).password or ""
    assert password not in result.stdout + result.stderr


def long_document(n: int) -> str:
    lines = [f"Shipping Ledger {n}", ""]
    lines += [f"Barge number {i} carried {i * 7 % 97} tonnes of timber from port {i % 13} in week {i % 52}."
              for i in range(420)]
    return "\n".join(lines) + "\n"


def test_a_worker_killed_mid_job_loses_nothing(upgraded: str, tmp_path: Path, settings: Settings) -> None:
    """Worker A is SIGKILLed after storing part of a job's vectors; its lease runs out and worker B
    finishes the job, embedding only what A had not stored."""
    env = clean_env(FORUMQA_DATABASE_URL=upgraded, FORUMQA_DB_LEASE_SECONDS="3", **FAST)
    mine = settings.model_copy(update={"database_url": SecretStr(upgraded), "embedders": ["minilm"]})
    db = database.open_database(mine)
    stored = rows.add_document(db, mine, long_document(1).encode(), "ledger.txt")

    def progress() -> tuple[str, str | None, int]:
        with db.connect(autocommit=True) as conn:
            state, owner = conn.execute(
                "SELECT state, lease_owner FROM forumqa_jobs WHERE doc_id = %s", (stored.id,)
            ).fetchone()
            vectors = conn.execute("SELECT count(*) FROM forumqa_embeddings").fetchone()[0]
        return state, owner, int(vectors)

    log_a = (tmp_path / "worker-a.log").open("wb")
    worker_a = subprocess.Popen([str(FORUMQA), "worker", "--quiet"], env=env, stdout=log_a,
                                stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert wait_for(lambda: progress()[2] > 0, timeout=120, interval=0.1), "A stored nothing"
        worker_a.send_signal(signal.SIGKILL)
        worker_a.wait(timeout=10)
    finally:
        if worker_a.poll() is None:
            worker_a.kill()
        log_a.close()
    state, owner_a, partial = progress()
    assert state == "queued" and owner_a is not None, "A finished before it could be killed"

    with db.connect(autocommit=True) as conn:
        sentences, chunks = jobs.job_texts(conn, stored.id)
        texts = len(set(sentences + chunks))
    assert 0 < partial < texts
    result = run_cli("worker", "--once", "--quiet", env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    state, owner_b, total = progress()
    assert state == "done" and owner_b != owner_a
    assert total == texts  # every text has its vector, none twice
    assert f"embedding {texts - partial} text(s)" in result.stderr  # B did only what A had not stored
    with db.connect(autocommit=True) as conn:
        ready, attempts = conn.execute(
            "SELECT d.ready, j.attempts FROM forumqa_documents d JOIN forumqa_jobs j ON j.doc_id = d.id "
            "WHERE d.id = %s", (stored.id,)
        ).fetchone()
    assert ready and attempts == 2


def test_database_restart_under_load_gives_503s_then_recovers_and_loses_nothing(
    upgraded: str, postgres: tuple[str, EmbeddedPostgres | None], tmp_path: Path, settings: Settings,
    start_server: Callable[..., ServerProcess],
) -> None:
    server = postgres[1]
    if server is None:
        pytest.skip("restarts the embedded PostgreSQL; FORUMQA_TEST_DATABASE_URL names one we may not stop")
    mine = settings.model_copy(update={"index_dir": tmp_path / "no-index"})
    a = start_server(mine, clean_env(FORUMQA_DATABASE_URL=upgraded, FORUMQA_DB_LEASE_SECONDS="3", **FAST))
    a.wait_ready()
    statuses: dict[str, list[int]] = {"answer": [], "upload": []}
    accepted: list[str] = []
    messages: list[str] = []
    stop = threading.Event()

    def ask() -> None:
        while not stop.is_set():
            r = httpx.post(a.url + "/api/answer", json={"question": "Who attended the forum?"}, timeout=30)
            statuses["answer"].append(r.status_code)

    def add() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            text = f"Restart Note {n}\n\nNote {n} says the ferry number {n} sailed on time.\n"
            r = upload(a.url, f"note-{n}.txt", text)
            statuses["upload"].append(r.status_code)
            if r.status_code == 202:
                accepted.append(r.json()["document"]["id"])
            elif r.status_code == 503:
                messages.append(r.json()["error"]["message"])
            time.sleep(0.3)

    threads = [threading.Thread(target=ask), threading.Thread(target=add)]
    for t in threads:
        t.start()
    try:
        time.sleep(2)
        server.stop("fast")
        time.sleep(3)
        server.start()
        time.sleep(6)
    finally:
        stop.set()
        for t in threads:
            t.join(timeout=60)
    assert 500 not in statuses["answer"] + statuses["upload"]
    assert set(statuses["answer"]) == {200}  # answers come from memory while the database is away
    assert 503 in statuses["upload"] and set(statuses["upload"]) <= {202, 503}
    assert all("unavailable" in m for m in messages)
    assert statuses["upload"][-1] == 202  # recovered
    # Nothing accepted is lost: every accepted document is served once its job has run.
    def served() -> bool:
        listed = {d["id"] for d in httpx.get(a.url + "/api/documents", timeout=10).json()["documents"]}
        return set(accepted) <= listed
    assert wait_for(served, timeout=30, interval=0.5), a.log()[-3000:]
    assert urlsplit(upgraded).password not in a.log()
    with psycopg.connect(upgraded) as conn:
        assert database.schema_version(conn) == database.latest_version()
