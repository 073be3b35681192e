"""One article added to nine, through a real ``forumqa serve`` (issue 26's staging figures).

``python -m bench.staging [--before DIR] [--workdir DIR]``: the ten SQuAD articles of
``../shared/eval/squad``, nine of them served by ``forumqa serve`` from an index whose vector cache holds
them (so the server embeds nothing at start), then ``to-kill-a-mockingbird`` (54 KB) uploaded over HTTP and
removed again. Measured from the upload: when an English question about it first cites it (answerable), when
every stage is done, and when its removal is gone and done. Throughout the add a Russian question about one
of the nine (Chopin's birth year) is asked again and again; an answer is lost when it does not cite Chopin's
article with 1810. ``--before DIR``: the same, with the code in DIR (e.g. an export of main), in the same
run.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx

from bench.articles import ADDED_ARTICLE, SQUAD_DIR, without
from bench.common import ROOT, free_port, log

# A question both revisions answer right once the article is in ("Who wrote To Kill a Mockingbird?" is
# answered with a critic who "wrote" about it since issue 24: README, Quality).
ENGLISH = "When was To Kill a Mockingbird published?"
ENGLISH_ANSWER = "1960"
RUSSIAN = "В каком году родился Фредерик Шопен?"
RUSSIAN_ANSWER = "1810"
RUSSIAN_DOC = "frederic-chopin"


def prepare(workdir: Path) -> tuple[Path, Path, Path]:
    """(the nine articles' corpus, a vector cache holding the nine for every model, the added article)."""
    data = workdir / "squad"
    if not (data / "corpus").is_dir():
        subprocess.run([sys.executable, str(SQUAD_DIR / "prepare.py"), str(data)], check=True,
                       capture_output=True)
    nine = without(data / "corpus", workdir / "nine", ADDED_ARTICLE)
    base = workdir / "nine-index"
    if not (base / "CURRENT").exists():  # a vector cache put there beforehand is used
        log("staging: building the nine articles once, for their vectors")
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        subprocess.run([sys.executable, "-m", "rag.cli", "build", "--quiet", "--corpus-dir", str(nine),
                        "--index-dir", str(base)], check=True, cwd=ROOT, env=env, capture_output=True)
    return nine, base / "vectors", data / "corpus" / f"{ADDED_ARTICLE}.txt"


def ask(url: str, question: str) -> dict[str, Any]:
    response = httpx.post(url + "/api/answer", json={"question": question, "mode": "extractive"}, timeout=120)
    response.raise_for_status()
    return dict(response.json())


def cites(answer: dict[str, Any], doc_id: str, words: str) -> bool:
    return any(c["doc_id"] == doc_id for c in answer["citations"][:3]) and words in answer["answer"]


def settled(url: str) -> bool:
    status = httpx.get(url + "/api/index/status", timeout=30).json()
    return (status["state"] == "idle" and not status.get("queued") and not status.get("embedding")
            and all(s["state"] == "done" for s in status.get("stages", [])))


def wait(predicate: Any, timeout: float, interval: float = 0.1) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        try:
            if predicate():
                return time.monotonic() - started
        except httpx.HTTPError:
            pass
        time.sleep(interval)
    return None


def measure(code: Path, nine: Path, vectors: Path, added: Path, scratch: Path) -> dict[str, Any]:
    """Serve ``nine`` with the code in ``code``; upload ``added``, then remove it; the figures."""
    corpus, index = scratch / "corpus", scratch / "index"
    shutil.rmtree(scratch, ignore_errors=True)
    shutil.copytree(nine, corpus)
    shutil.copytree(vectors, index / "vectors")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("FORUMQA_")}, "PYTHONPATH": str(code),
           "FORUMQA_ALLOW_UPLOADS": "1", "HF_HUB_OFFLINE": "1"}
    log_file = (scratch.parent / f"{scratch.name}.log").open("wb")
    server = subprocess.Popen([sys.executable, "-m", "rag.cli", "serve", "--corpus-dir", str(corpus),
                               "--index-dir", str(index), "--port", str(port)], cwd=code, env=env,
                              stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        ready = wait(lambda: httpx.get(url + "/readyz", timeout=5).status_code == 200, 900, 0.5)
        assert ready is not None, "the server did not become ready"
        assert wait(lambda: settled(url), 900, 0.5) is not None, "the nine articles did not settle"
        before = ask(url, RUSSIAN)
        answers: list[dict[str, Any]] = []
        stop = threading.Event()

        def keep_asking() -> None:
            while not stop.is_set():
                answers.append(ask(url, RUSSIAN))
                stop.wait(0.2)

        asker = threading.Thread(target=keep_asking, daemon=True)
        asker.start()
        started = time.monotonic()
        with added.open("rb") as fh:
            files = {"file": (added.name, fh.read())}
            response = httpx.post(url + "/api/documents", files=files, timeout=120)
        response.raise_for_status()
        doc_id = response.json()["document"]["id"]
        answerable = wait(lambda: cites(ask(url, ENGLISH), doc_id, ENGLISH_ANSWER), 1800, 0.2)
        answerable_at = time.monotonic() - started if answerable is not None else None
        all_done = wait(lambda: settled(url), 3600, 0.2)
        all_at = time.monotonic() - started if all_done is not None else None
        stop.set()
        asker.join(120)
        lost = [a for a in answers if not cites(a, RUSSIAN_DOC, RUSSIAN_ANSWER)]
        removed_started = time.monotonic()
        httpx.delete(f"{url}/api/documents/{doc_id}", timeout=120).raise_for_status()
        gone = wait(lambda: doc_id not in {d["id"] for d in httpx.get(url + "/api/documents", timeout=30)
                                           .json()["documents"]}, 600, 0.05)
        removed_all = wait(lambda: settled(url), 600, 0.1)
        return {
            "ready_s": ready,
            "answerable_s": answerable_at,
            "all_stages_s": all_at,
            "removed_s": gone,
            "removed_all_s": (time.monotonic() - removed_started) if removed_all is not None else None,
            "russian_before_right": cites(before, RUSSIAN_DOC, RUSSIAN_ANSWER),
            "russian_asked": len(answers),
            "russian_lost": len(lost),
            "lost_example": lost[0]["answer"][:200] if lost else None,
        }
    finally:
        os.killpg(server.pid, 15)
        try:
            server.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, 9)
        log_file.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.staging", description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", type=Path, help="also measure the code in this folder, in the same run")
    parser.add_argument("--workdir", type=Path, help="keep the articles and their vectors here (reused)")
    args = parser.parse_args(argv)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="forumqa-staging-"))
    workdir.mkdir(parents=True, exist_ok=True)
    nine, vectors, added = prepare(workdir)
    results: dict[str, Any] = {"load_before": os.getloadavg()}
    runs = [("now", ROOT)] + ([("before", args.before.resolve())] if args.before else [])
    for label, code in runs:
        log(f"staging: {label} ({code})")
        results[label] = measure(code, nine, vectors, added, workdir / f"run-{label}")
        log(f"staging: {label}: {json.dumps(results[label])}")
    results["load_after"] = os.getloadavg()
    print(json.dumps(results, indent=2, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
