"""The ``forumqa`` command line (click): one module per group of commands.

- ``answers``: ask, eval
- ``documents``: build, add, remove, reload
- ``serve``: serve, worker
- ``db``: db upgrade | import | status | retry | embedded
- ``feedback``: feedback export
- ``accounts``: user add | list | disable | enable | password, token create | list | revoke, collection
  create | list, grant, revoke, audit
- ``train``: train-reader, train-short-answer, train-grounding

A command is a function decorated with ``@cli.command(...)`` (``rag.cli.common``) in one of these modules,
or in a new one imported below; its imports of the models' libraries go inside it, so ``forumqa --help``
stays fast. :func:`main` runs it and turns the errors a user can cause into one line and a status.
"""

from __future__ import annotations

import signal
import sys

import click

from rag.cli import (  # noqa: F401  (each adds its commands)
    accounts,
    answers,
    db,
    documents,
    feedback,
    serve,
    train,
)
from rag.cli.common import cli

__all__ = ["cli", "main"]


def _known_errors() -> tuple[type[BaseException], ...]:
    from rag.index.embedders import ModelIntegrityError
    from rag.ingest.extraction import CorpusError
    from rag.store import IndexUnavailable, StoreError

    # AccountError is a ValueError: a wrong name, a taken name, a short password...
    return CorpusError, ModelIntegrityError, FileNotFoundError, ValueError, StoreError, IndexUnavailable


def main(argv: list[str] | None = None) -> int:
    """Run ``forumqa`` with ``argv`` (default: the command line); the exit status."""
    args = sys.argv[1:] if argv is None else list(argv)
    # `forumqa ask ... | head` ends quietly. Not for `serve`: there a client that hangs up mid-answer would
    # kill the server (a socket write raises SIGPIPE); and restored after, so an in-process caller (the
    # tests) keeps Python's default, which ignores it.
    previous = None if "serve" in args else signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    try:
        result = cli.main(args=args, prog_name="forumqa", standalone_mode=False)
        return int(result or 0)
    except click.exceptions.Exit as exc:
        return int(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        return int(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("Aborted!", err=True)
        return 1
    except Exception as exc:
        if not isinstance(exc, _known_errors()):
            raise
        print(f"forumqa: error: {exc}", file=sys.stderr)
        return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGPIPE, previous)


if __name__ == "__main__":
    sys.exit(main())
