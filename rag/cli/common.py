"""What every ``forumqa`` command shares: the click group, the folder options, the settings they make, and
how a failure is reported."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from rag.config import Settings

F = TypeVar("F", bound=Callable[..., Any])

# Commands that say what they do at INFO level even without -v.
_TALKATIVE = {"build", "serve", "reload", "add", "remove", "db", "worker"}
_NOISY = ("faiss.loader", "bm25s", "sentence_transformers", "httpx", "psycopg.pool")

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}


@click.group(
    context_settings=CONTEXT,
    help="Cited answers from the report of the Third Korea-Russia Forum (and any documents in corpus/), "
    "offline. Settings also come from FORUMQA_* environment variables.",
)
@click.option("-v", "--verbose", "log_info", is_flag=True, help="log what happens (INFO level)")
@click.pass_context
def cli(ctx: click.Context, log_info: bool) -> None:
    command = ctx.invoked_subcommand or ""
    logging.basicConfig(
        level=logging.INFO if log_info or command in _TALKATIVE else logging.WARNING,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        force=True,
    )
    for noisy in _NOISY:
        logging.getLogger(noisy).setLevel(logging.WARNING)


def folder_options(func: F) -> F:
    """``--corpus-dir`` and ``--index-dir``, which override FORUMQA_CORPUS_DIR / FORUMQA_INDEX_DIR."""
    func = click.option("--index-dir", "index_dir", type=click.Path(path_type=Path),
                        help="folder of the built index (default index/)")(func)
    func = click.option("--corpus-dir", "corpus_dir", type=click.Path(path_type=Path),
                        help="folder of documents (default corpus/)")(func)
    return func


def settings_of(**overrides: Any) -> Settings:
    """The settings, with the command-line values given (None: not given) over the environment's."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})


def quiet_option(func: F) -> F:
    return click.option("--quiet", is_flag=True, help="no progress bar")(func)


def fail(message: str, status: int = 1) -> click.exceptions.Exit:
    """Say ``message`` on stderr (as ``forumqa: error: ...``) and end with ``status``."""
    click.echo(f"forumqa: error: {message}", err=True)
    return click.exceptions.Exit(status)


def actor() -> str:
    """Who the audit log says did what a command did: ``cli:<login name>``."""
    import getpass

    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):
        return "cli"

