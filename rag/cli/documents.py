"""``forumqa build``, ``add``, ``remove`` and ``reload``: change the documents and make them searchable."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from rag.cli.common import actor, cli, folder_options, quiet_option, settings_of

if TYPE_CHECKING:
    from rag.store import Store


class StagePrinter:
    """Prints each build stage once it ends (done/total, seconds, rate), and each publication."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
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

    def published(self, build: object) -> None:
        from rag.index.publish import coverage_of, read_manifest

        if not isinstance(build, Path):  # the database store: a document made ready, or a job done
            print(f"  -> {build} served more at {time.perf_counter() - self.started:.1f} s", flush=True)
            return
        coverage = coverage_of(read_manifest(build))
        left = [f"{n} ({len(c.missing)} to come)" if c.missing else f"{n} (chunks)"
                for n, c in coverage.items() if not c.complete]
        what = "answerable" if self.first else "published"
        self.first = False
        print(f"  -> {what} at {time.perf_counter() - self.started:.1f} s: {build.name}"
              + (f" (still to add: {', '.join(left)})" if left else " (complete)"), flush=True)


@cli.command(
    help="Load, chunk and embed the corpus into index/, in stages: text, chunks, bm25, then each model "
    "(minilm, then e5 and use). A document is answerable once minilm has its sentences: the build is "
    "published then, and again as each model covers more. Each stage is printed with done/total and its "
    "rate. Vectors are cached by text, so an unchanged text is not re-embedded and a killed build resumes "
    "where it stopped; each published build replaces the previous one atomically. With "
    "FORUMQA_DATABASE_URL: import the corpus into an empty database and run the queued embedding jobs.",
    short_help="build the index (skips work when nothing changed)",
)
@click.option("--force", is_flag=True, help="rebuild even if the index is up to date")
@click.option("--answerable", is_flag=True,
              help="stop once every document answers (minilm has its sentences); the rest is added by the "
                   "next `forumqa build` or by a server in the background")
@quiet_option
@folder_options
def build(force: bool, answerable: bool, quiet: bool, corpus_dir: Path | None,
          index_dir: Path | None) -> None:
    from rag.index.build import BuildReport
    from rag.store import open_store

    store = open_store(settings_of(corpus_dir=corpus_dir, index_dir=index_dir))
    printer = StagePrinter()
    report = store.build(progress=not quiet, until="answerable" if answerable else "all", on_stage=printer,
                         on_publish=printer.published, force=force)
    if not isinstance(report, BuildReport):
        print(f"{store.where}: ran {report} embedding job(s)")
        return
    if report.rebuilt:
        print(f"built {report.build_dir.name}: {report.chunks} chunks, {report.sentences} sentences, "
              f"embedded {sum(report.embedded.values())} new texts ({report.embedded}) "
              f"in {report.seconds:.1f}s")
        if report.pending:
            print(f"still to add: {', '.join(report.pending)} (run `forumqa build` again, or serve: the "
                  "server adds them in the background)")
    else:
        print(f"index {report.build_dir.name} is up to date; nothing embedded")


@cli.command(
    help="Copy each FILE into the corpus folder under an id made from its title (the file name is kept only "
    "as metadata), after checking it: at most FORUMQA_MAX_UPLOAD_BYTES, a kind decided by its bytes (PDF, "
    "DOCX, HTML, Markdown or text, as this installation reads them), readable, and not already there (same "
    "bytes, or same title). Then build the index (only new text is embedded); running servers pick up each "
    "published build within FORUMQA_POLL_SECONDS. A refused file is reported and the others are still "
    "added; the exit status is 1 if any was refused.\n\n"
    "example: forumqa add reports/fourth-forum.html notes.md",
    short_help="add documents to the corpus, then rebuild",
)
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path), metavar="FILE...")
@click.option("--no-build", "no_build", is_flag=True, help="only store the files; build later")
@click.option("--collection", metavar="NAME",
              help="the collection they join (who may read them; default: 'default')")
@quiet_option
@folder_options
def add(files: tuple[Path, ...], no_build: bool, collection: str | None, quiet: bool, corpus_dir: Path | None,
        index_dir: Path | None) -> None:
    from rag.accounts import Accounts
    from rag.store import DocumentRefused, open_store

    settings = settings_of(corpus_dir=corpus_dir, index_dir=index_dir)
    store = open_store(settings)
    accounts = Accounts(store.accounts())
    if collection is not None:
        collection = accounts.check_collection(collection)
    failed = 0
    for path in files:
        try:
            data = path.read_bytes()
            stored = store.add(data, path.name, collection)
        except OSError as exc:
            click.echo(f"{path}: cannot read: {exc.strerror or exc}", err=True)
            failed += 1
            continue
        except DocumentRefused as exc:
            click.echo(f"{path}: refused: {exc}", err=True)
            failed += 1
            continue
        _audit(accounts, "document.add", stored.id,
               f"{stored.title!r} into {stored.collection or 'default'} ({stored.kind}, {stored.size} bytes)")
        into = f" into {stored.collection}" if stored.collection else ""
        print(f"added {path} as {stored.id!r} ({stored.kind}, {stored.size} bytes): {stored.title}{into}")
    if failed == len(files):
        raise click.exceptions.Exit(1)
    _rebuild(store, no_build, quiet)
    if failed:
        raise click.exceptions.Exit(1)


@cli.command(
    help="Delete the document with each ID (see `forumqa ask --json` citations or GET /api/documents) and "
    "its metadata from the corpus, then build the index; running servers pick it up within "
    "FORUMQA_POLL_SECONDS. The last document cannot be removed.\n\n"
    "example: forumqa remove fourth-korea-russia-forum",
    short_help="remove documents from the corpus by id, then rebuild",
)
@click.argument("ids", nargs=-1, required=True, metavar="ID...")
@click.option("--no-build", "no_build", is_flag=True, help="only remove the files; build later")
@quiet_option
@folder_options
def remove(ids: tuple[str, ...], no_build: bool, quiet: bool, corpus_dir: Path | None,
           index_dir: Path | None) -> None:
    from rag.accounts import Accounts
    from rag.store import DocumentRefused, open_store

    settings = settings_of(corpus_dir=corpus_dir, index_dir=index_dir)
    store = open_store(settings)
    accounts = Accounts(store.accounts())
    removed_any, status = False, 0
    for doc_id in ids:
        try:
            removed = store.remove(doc_id)
        except DocumentRefused as exc:
            click.echo(f"forumqa: error: {exc}", err=True)
            status = 1
            continue
        removed_any = True
        _audit(accounts, "document.remove", removed.id,
               f"{removed.title!r} from {removed.collection or 'default'}")
        print(f"removed {removed.id!r} ({removed.file}): {removed.title}")
    if removed_any:
        _rebuild(store, no_build, quiet)
    if status:
        raise click.exceptions.Exit(status)


def _audit(accounts: Any, action: str, target: str, detail: str) -> None:
    """Record a change in the audit log; a log that cannot be written is said, and undoes nothing."""
    try:
        accounts.audit(actor(), action, target, detail)
    except Exception as exc:
        click.echo(f"forumqa: warning: the audit log could not record {action} {target}: {exc}", err=True)


def _rebuild(store: Store, no_build: bool, quiet: bool) -> None:
    from rag.index.build import BuildReport

    if no_build:
        print("not building (--no-build): run `forumqa build` (or `forumqa reload`) later")
        return
    printer = StagePrinter()
    report = store.build(progress=not quiet, on_publish=printer.published)
    if isinstance(report, BuildReport):
        print(f"index {report.build_dir.name}: {report.chunks} chunks, {report.sentences} sentences, "
              f"embedded {sum(report.embedded.values())} new texts in {report.seconds:.1f}s")
    print(f"running servers serve it within {store.settings.poll_seconds:g} s (they follow the store)")


@cli.command(
    help="Build the index if the corpus changed. Running servers follow the store (index/CURRENT, or the "
    "database's generation) and swap each published build in atomically within FORUMQA_POLL_SECONDS: "
    "no signal or pid file is involved.",
    short_help="rebuild if needed; running servers swap to it",
)
@folder_options
def reload(corpus_dir: Path | None, index_dir: Path | None) -> None:
    from rag.store import open_store

    settings = settings_of(corpus_dir=corpus_dir, index_dir=index_dir)
    _rebuild(open_store(settings), False, False)
