"""Accounts on the shared PostgreSQL store, across two real ``forumqa serve`` replicas: users and tokens made
with the CLI hold on both, a session signed in on one is good on the other, and a token revoked with the
CLI is refused by both within 5 s. No password or token reaches a log."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from pg_support import wait_for

from rag.config import Settings

from .support import FORUMQA, ServerProcess, clean_env

FAST = {"FORUMQA_EMBEDDERS": '["minilm"]', "FORUMQA_POLL_SECONDS": "0.5"}


def cli(*args: str, env: dict[str, str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(FORUMQA), *args], env=env, input=stdin, capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    return result


@pytest.fixture
def upgraded(database_url: str) -> str:
    cli("db", "upgrade", env=clean_env(FORUMQA_DATABASE_URL=database_url))
    return database_url


def test_a_token_revoked_on_the_database_is_refused_by_every_replica_within_5_s(
    upgraded: str, tmp_path: Path, settings: Settings, start_server: Callable[..., ServerProcess]
) -> None:
    env = clean_env(FORUMQA_DATABASE_URL=upgraded, **FAST)
    mine = settings.model_copy(update={"index_dir": tmp_path / "no-index"})
    a = start_server(mine, env)
    b = start_server(mine, env)
    a.wait_ready()
    b.wait_ready()
    assert httpx.get(a.url + "/api/documents", timeout=10).status_code == 200  # no accounts yet: open

    cli("user", "add", "root", "--role", "admin", env=env, stdin="root-password-1\n")
    cli("user", "add", "alice", "--role", "reader", env=env, stdin="alice-password-1\n")
    cli("grant", "alice", "default", "read", env=env)
    made = cli("token", "create", "alice", "--name", "alice-script", env=env)
    token = made.stdout.strip().splitlines()[-1]
    assert token.startswith("fqa_") and made.stdout.strip() == token  # alone on its (last) line
    bearer = {"Authorization": f"Bearer {token}"}

    def status(server: ServerProcess, **kwargs: object) -> int:
        return httpx.get(server.url + "/api/documents", timeout=10, **kwargs).status_code  # type: ignore[arg-type]

    for server in (a, b):  # accounts exist now: anonymous requests are refused, the token works
        assert wait_for(lambda s=server: status(s) == 401, timeout=5, interval=0.1)
        assert status(server, headers=bearer) == 200

    signed = httpx.post(a.url + "/api/session", json={"username": "alice", "password": "alice-password-1"},
                        timeout=30)
    assert signed.status_code == 200, signed.text
    cookies = {"forumqa_session": signed.cookies["forumqa_session"]}
    assert status(b, cookies=cookies) == 200  # a session signed in on A is good on B
    answer = httpx.post(b.url + "/api/answer", json={"question": "When was the forum?"}, cookies=cookies,
                        headers={"X-CSRF-Token": signed.json()["csrf"]}, timeout=30)
    assert answer.status_code == 200

    started = time.monotonic()
    cli("token", "revoke", "alice-script", env=env)
    revoked = time.monotonic()
    refused = {}
    while len(refused) < 2 and time.monotonic() - revoked < 10:
        for server in (a, b):
            if server.url not in refused and status(server, headers=bearer) == 401:
                refused[server.url] = time.monotonic() - revoked
        time.sleep(0.05)
    print(f"revocation (CLI took {revoked - started:.2f} s) refused by A after {refused.get(a.url)} s, "
          f"by B after {refused.get(b.url)} s")
    assert set(refused) == {a.url, b.url} and max(refused.values()) <= 5.0, refused
    assert status(a, cookies=cookies) == 200  # the session is not the token

    audit = cli("audit", env=env).stdout
    assert "token.revoke" in audit and "alice-script" in audit
    for server in (a, b):
        log = server.log()
        for secret in ("root-password-1", "alice-password-1", token, cookies["forumqa_session"]):
            assert secret not in log
