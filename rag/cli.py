"""The ``forumqa`` command line: build, ask, eval, serve, reload."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path

from rag.config import Settings


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for key in ("corpus_dir", "index_dir", "host", "port", "workers"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return Settings(**overrides)


def cmd_build(args: argparse.Namespace) -> int:
    from rag.indexing import build_index

    report = build_index(_settings(args), force=args.force, progress=not args.quiet)
    if report.rebuilt:
        print(
            f"built {report.build_dir.name}: {report.chunks} chunks, {report.sentences} sentences, "
            f"embedded {sum(report.embedded.values())} new texts ({report.embedded}) in {report.seconds:.1f}s"
        )
    else:
        print(f"index {report.build_dir.name} is up to date; nothing embedded")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.qa import ForumQA
    from rag.types import Turn

    question = " ".join(args.question).strip()
    if not question:
        print("error: the question is empty", file=sys.stderr)
        return 2
    history = [Turn("user", h) for h in args.after]
    qa = ForumQA.open(_settings(args), progress=not args.json)
    answer = qa.answer(question, history, top_k=args.top_k)
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    print(answer.answer)
    print(
        f"\n(answerable: {'yes' if answer.answerable else 'no'}, confidence {answer.confidence:.2f}, "
        f"{answer.took_ms:.1f} ms)"
    )
    for c in answer.citations:
        sentence = qa.document(c.doc_id).text[c.highlight_start : c.highlight_end]  # type: ignore[union-attr]
        print(f"\n[{c.n}] {c.title} — {c.section}  (chars {c.start}-{c.end}, score {c.score:.3f})")
        print(f"    » {sentence}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluation import evaluate, load_questions, report
    from rag.qa import ForumQA

    items = load_questions(Path(args.file))
    qa = ForumQA.open(_settings(args))
    results = evaluate(qa, items, top_k=args.top_k)
    if args.verbose:
        for r in results:
            mark = (
                "ok "
                if (
                    r.answer.answerable == r.item.answerable
                    and (not r.item.answerable or r.answer_has_evidence)
                )
                else "BAD"
            )
            print(f"{mark} {r.item.id:>5} rank={r.rank} conf={r.answer.confidence:.2f} {r.item.question}")
    print(report(results))
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    # Measured in bench/: on 2 cores one thread per model call serves concurrent requests best, and
    # passive OpenMP waiting avoids 5-10x slowdowns when the CPU is contended. Workers inherit these.
    os.environ.setdefault("FORUMQA_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import uvicorn

    settings = _settings(args)
    # Build before forking workers so they all map the same index instead of racing to build it.
    from rag.indexing import ensure_index

    ensure_index(settings)
    os.environ.update(
        {
            f"FORUMQA_{k.upper()}": str(v)
            for k, v in {"corpus_dir": settings.corpus_dir, "index_dir": settings.index_dir}.items()
        }
    )
    uvicorn.run(
        "api.main:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        log_level="info",
        log_config=_log_config(),  # worker processes configure logging from this, not from main()
    )
    return 0


def _log_config() -> dict[str, object]:
    """uvicorn's logging setup plus a root handler, so rag/api logs reach stderr in every worker."""
    from uvicorn.config import LOGGING_CONFIG

    config = {**LOGGING_CONFIG}
    config["formatters"] = {
        **LOGGING_CONFIG["formatters"],
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"},
    }
    config["handlers"] = {
        **LOGGING_CONFIG["handlers"],
        "plain": {"class": "logging.StreamHandler", "formatter": "plain", "stream": "ext://sys.stderr"},
    }
    config["root"] = {"handlers": ["plain"], "level": "INFO"}
    config["loggers"] = {
        **LOGGING_CONFIG["loggers"],
        **{
            name: {"level": "WARNING"} for name in ("faiss.loader", "bm25s", "sentence_transformers", "httpx")
        },
    }
    return config


def cmd_reload(args: argparse.Namespace) -> int:
    """Build if the corpus changed, then tell running servers (by pid file) to swap in the new index."""
    from rag.indexing import build_index

    settings = _settings(args)
    build_index(settings, progress=True)
    pid_file = settings.index_dir / "server.pid"
    try:
        pids = [int(p) for p in pid_file.read_text().split()]
    except (OSError, ValueError):
        print("index is built; no running server found (start one with `forumqa serve`)")
        return 0
    for pid in pids:
        if not _is_forumqa_server(pid):
            # A stale pid may now belong to another program, which SIGHUP would terminate.
            print(f"skipping pid {pid}: not a running forum-qa server")
            continue
        os.kill(pid, signal.SIGHUP)
        print(f"asked server process {pid} to reload")
    return 0


def _is_forumqa_server(pid: int) -> bool:
    import psutil

    try:
        cmdline = " ".join(psutil.Process(pid).cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return False
    return any(marker in cmdline for marker in ("forumqa", "api.main", "uvicorn", "multiprocessing"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="forumqa",
        description="Cited answers from the report of the Third Korea-Russia Forum (and any documents in "
        "corpus/), offline. Settings also come from FORUMQA_* environment variables.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log what happens (INFO level)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--corpus-dir", dest="corpus_dir", type=Path, help="folder of documents (default corpus/)"
    )
    common.add_argument(
        "--index-dir", dest="index_dir", type=Path, help="folder of the built index (default index/)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "build",
        parents=[common],
        help="build the index (skips work when nothing changed)",
        description="Load, chunk and embed the corpus into index/. An unchanged corpus is not "
        "re-embedded; the new build replaces the old one atomically.",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the index is up to date")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_build)

    p = sub.add_parser(
        "ask",
        parents=[common],
        help="answer one question with citations",
        description="Answer a question from the report, printing the answer and each citation "
        "with its section and character offsets. Builds the index first if needed.",
    )
    p.add_argument("question", nargs="+", help="the question (quote it or not)")
    p.add_argument(
        "--after",
        action="append",
        default=[],
        metavar="QUESTION",
        help="an earlier question of the conversation, for follow-ups (repeatable)",
    )
    p.add_argument(
        "--top-k",
        type=int,
        default=5,
        choices=range(1, 21),
        metavar="1..20",
        help="citations to return (default 5)",
    )
    p.add_argument("--json", action="store_true", help="print the answer object the API returns")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "eval",
        parents=[common],
        help="score a question set (JSONL)",
        description="Run a JSONL question set (id, question, evidence, answerable, lang, history) "
        "and print hit@1, hit@3, MRR, answer accuracy, kept-answerable, no-answer precision and "
        "recall, and p50/p95 latency, per language and overall.",
    )
    p.add_argument("file", help="e.g. eval/dev.jsonl")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--verbose", action="store_true", help="one line per question")
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "serve",
        parents=[common],
        help="run the HTTP API and chat page",
        description="Serve the API and the web chat page with uvicorn (building the index first "
        "if it is missing or stale).",
    )
    p.add_argument("--host", help="bind address (default 127.0.0.1)")
    p.add_argument("--port", type=int, help="port (default 8000)")
    p.add_argument("--workers", type=int, help="worker processes sharing one on-disk index (default 1)")
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "reload",
        parents=[common],
        help="rebuild if needed and make running servers swap index",
        description="Build the index if the corpus changed, then send SIGHUP to the running "
        "server processes listed in index/server.pid so they swap to it atomically.",
    )
    p.set_defaults(func=cmd_reload)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO
        if args.verbose or args.command in ("build", "serve", "reload")
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("faiss.loader", "bm25s", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from rag.embedding import ModelIntegrityError
    from rag.loading import CorpusError

    signal.signal(signal.SIGPIPE, signal.SIG_DFL)  # `forumqa ask ... | head` ends quietly
    try:
        return int(args.func(args))
    except (CorpusError, ModelIntegrityError, FileNotFoundError, ValueError) as exc:
        print(f"forumqa: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
