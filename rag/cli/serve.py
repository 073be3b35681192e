"""``forumqa serve`` and ``forumqa worker``: the HTTP API and chat page, and the database store's embedder."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import click

from rag.cli.common import cli, folder_options, quiet_option, settings_of


@cli.command(
    help="Serve the API and the web chat page with uvicorn. The store gets ready first (the file store "
    "builds until the index answers; the database store checks its schema and imports the corpus into an "
    "empty database); embedding goes on in the background while it serves.",
    short_help="run the HTTP API and chat page",
)
@click.option("--host", help="bind address (default 127.0.0.1)")
@click.option("--port", type=int, help="port (default 8000)")
@click.option("--workers", type=int, help="worker processes sharing one store (default 1)")
@folder_options
def serve(host: str | None, port: int | None, workers: int | None, corpus_dir: Path | None,
          index_dir: Path | None) -> None:
    # Measured in bench/: on 2 cores one thread per model call serves concurrent requests best, and
    # passive OpenMP waiting avoids 5-10x slowdowns when the CPU is contended. Workers inherit these.
    os.environ.setdefault("FORUMQA_THREADS", "1")
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import uvicorn

    from rag.store import IndexUnavailable, open_store

    settings = settings_of(corpus_dir=corpus_dir, index_dir=index_dir, host=host, port=port, workers=workers)
    store = open_store(settings)
    print(f"store: {store.where}", file=sys.stderr)
    try:
        store.prepare()  # before forking workers, so they share what it makes
    except IndexUnavailable as exc:  # nothing ready yet: serve anyway, /readyz says 503 until it is
        print(f"forumqa: {exc}; serving once a document is ready", file=sys.stderr)
    os.environ.update(
        {"FORUMQA_CORPUS_DIR": str(settings.corpus_dir), "FORUMQA_INDEX_DIR": str(settings.index_dir)}
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
            name: {"level": "WARNING"}
            for name in ("faiss.loader", "bm25s", "sentence_transformers", "httpx", "psycopg.pool")
        },
    }
    return config


@cli.command(
    help="Claim embedding jobs from the database (FOR UPDATE SKIP LOCKED, under a lease of "
    "FORUMQA_DB_LEASE_SECONDS renewed while it works), embed, store the vectors and mark the documents "
    "ready; replicas serve them within a poll (FORUMQA_POLL_SECONDS). A killed worker's job is taken over "
    "when its lease runs out; a job that keeps failing is marked failed after FORUMQA_DB_MAX_ATTEMPTS "
    "tries (`forumqa db retry` queues it again). A role that may only read is refused at once. Stops on "
    "SIGTERM or Ctrl-C after the current batch.",
    short_help="run embedding jobs of the PostgreSQL store (any number, on any machine)",
)
@click.option("--once", is_flag=True, help="stop when no job is left instead of waiting")
@quiet_option
def worker(once: bool, quiet: bool) -> None:
    from rag.index.embedders import configure_threads
    from rag.store import open_store
    from rag.store.postgres import PostgresStore, jobs
    from rag.store.postgres.database import check_schema

    settings = settings_of()
    store = open_store(settings)
    if not isinstance(store, PostgresStore):
        raise click.UsageError("a worker needs FORUMQA_DATABASE_URL (the shared store)")
    configure_threads(settings.threads)
    with store.db.connect("starting the worker", autocommit=True) as conn:
        check_schema(conn)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    done = jobs.work(settings, store.db, once=once, progress=not quiet, stop=stop)
    print(f"worker stopped; {done} job(s) done")
