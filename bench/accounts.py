"""What accounts cost (issue 27): answer p50 through real servers, before and after, in one run; and the
time from signing in to the first answer.

``python -m bench.accounts [--before DIR] [--rounds N]``: the repository's report plus two documents in
collections of their own, indexed once, then served by ``forumqa serve`` (answer cache off, so every request
answers) as:

* ``before``: the code in DIR (an export of the branch accounts was built on), no accounts;
* ``open``: this code, no accounts (today's behaviour);
* ``reader-all``: this code with accounts, a reader granted every collection, by token;
* ``reader-one``: the same server, a reader of the report's collection only, by token.

The dev set's questions go to each in turn, interleaved round by round, so all see the same load. Then a
sign-in (POST /api/session) followed by the first question, timed over HTTP.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from bench.common import CORPUS_DIR, ROOT, dev_questions, free_port, log

DOCS = {
    "alpha-harbor-memo": ("alpha", "Alpha Harbor Memo\n\nThe Alpha harbor crane lifted 912 containers on "
                          "4 May 2030. The crane operator was Mira Kovac.\n"),
    "beta-reactor-log": ("beta", "Beta Reactor Log\n\nThe Beta reactor coolant pump failed on 17 June 2031. "
                         "Engineer Tomas Rendl replaced the seal with part QX-77.\n"),
}


def forumqa(code: Path, *args: str, env: dict[str, str], stdin: str | None = None) -> str:
    result = subprocess.run([sys.executable, "-m", "rag.cli", *args], cwd=code,
                            env={**env, "PYTHONPATH": str(code)}, input=stdin, capture_output=True, text=True,
                            check=True)
    return result.stdout


def serve(code: Path, corpus: Path, index: Path, env: dict[str, str], log_path: Path) -> tuple[Any, str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "rag.cli", "serve", "--corpus-dir", str(corpus), "--index-dir", str(index),
         "--port", str(port)],
        cwd=code, env={**env, "PYTHONPATH": str(code)}, stdout=log_path.open("wb"), stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{code} exited: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(url + "/readyz", timeout=5).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"{code} did not get ready")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before", type=Path, help="the code to compare with (no accounts)")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="forumqa-bench-accounts-"))
    corpus = work / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    for doc_id, (collection, text) in DOCS.items():
        (corpus / f"{doc_id}.txt").write_text(text, encoding="utf-8")
        (corpus / f"{doc_id}.meta.json").write_text(json.dumps({"collection": collection}), encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FORUMQA_")}
    env.update(HF_HUB_OFFLINE="1", FORUMQA_CACHE_SIZE="0")
    log(f"building the index in {work}")
    forumqa(ROOT, "build", "--quiet", "--corpus-dir", str(corpus), "--index-dir", str(work / "index"),
            env=env)
    for name in ("before", "open", "accounts"):
        shutil.copytree(work / "index", work / f"index-{name}")
    accounts_env = {**env, "FORUMQA_ACCOUNTS_FILE": str(work / "accounts.sqlite3")}
    open_env = {**env, "FORUMQA_ACCOUNTS_FILE": str(work / "none.sqlite3")}
    forumqa(ROOT, "user", "add", "admin", "--role", "admin", env=accounts_env, stdin="admin-password\n")
    for collection in ("alpha", "beta"):
        forumqa(ROOT, "collection", "create", collection, env=accounts_env)
    for user, grants in (("all", ["default", "alpha", "beta"]), ("one", ["default"])):
        forumqa(ROOT, "user", "add", user, "--role", "reader", env=accounts_env, stdin=f"{user}-password\n")
        for collection in grants:
            forumqa(ROOT, "grant", user, collection, "read", env=accounts_env)
    tokens = {u: forumqa(ROOT, "token", "create", u, env=accounts_env).strip().splitlines()[-1]
              for u in ("all", "one")}

    load_start = os.getloadavg()
    servers: dict[str, tuple[Any, str]] = {}
    try:
        if args.before:
            servers["before"] = serve(args.before.resolve(), corpus, work / "index-before", env,
                                      work / "before.log")
        servers["open"] = serve(ROOT, corpus, work / "index-open", open_env, work / "open.log")
        servers["accounts"] = serve(ROOT, corpus, work / "index-accounts", accounts_env,
                                    work / "accounts.log")
        runs = {name: (url, {}) for name, (_, url) in servers.items() if name != "accounts"}
        url = servers["accounts"][1]
        runs["reader-all"] = (url, {"Authorization": f"Bearer {tokens['all']}"})
        runs["reader-one"] = (url, {"Authorization": f"Bearer {tokens['one']}"})
        questions = [q for q in dev_questions() if q.lang == "en"]
        times: dict[str, list[float]] = {name: [] for name in runs}
        with httpx.Client(timeout=60) as client:
            for base, headers in runs.values():  # warm each once
                client.post(base + "/api/answer", json={"question": "warm up"}, headers=headers)
            for r in range(args.rounds):
                for i, question in enumerate(questions):
                    order = list(runs)
                    shift = (i + r) % len(order)
                    for name in order[shift:] + order[:shift]:
                        base, headers = runs[name]
                        body = {"question": question.text,
                                "history": [{"role": a, "content": b} for a, b in question.history]}
                        started = time.perf_counter()
                        response = client.post(base + "/api/answer", json=body, headers=headers)
                        times[name].append((time.perf_counter() - started) * 1000)
                        response.raise_for_status()
            sign_ins = []
            for _ in range(5):
                with httpx.Client(base_url=url, timeout=60) as page:
                    started = time.perf_counter()
                    signed = page.post("/api/session", json={"username": "all", "password": "all-password"})
                    signed.raise_for_status()
                    page.post("/api/answer", json={"question": "When did the forum take place?"},
                              headers={"X-CSRF-Token": signed.json()["csrf"]}).raise_for_status()
                    sign_ins.append((time.perf_counter() - started) * 1000)
    finally:
        for process, _ in servers.values():
            process.terminate()
            process.wait(30)
    load_end = os.getloadavg()
    baseline = "before" if "before" in times else "open"
    p50 = {name: statistics.median(t) for name, t in times.items()}
    result = {
        "requests_each": {name: len(t) for name, t in times.items()},
        "answer_p50_ms": {name: round(v, 1) for name, v in p50.items()},
        "answer_p95_ms": {name: round(statistics.quantiles(t, n=20)[-1], 1) for name, t in times.items()},
        "p50_vs_" + baseline: {name: round(v / p50[baseline], 3) for name, v in p50.items()},
        "sign_in_to_first_answer_ms": {"median": round(statistics.median(sign_ins), 1),
                                       "max": round(max(sign_ins), 1)},
        "load_average": {"start": [round(x, 2) for x in load_start], "end": [round(x, 2) for x in load_end]},
    }
    print(json.dumps(result, indent=2))
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
