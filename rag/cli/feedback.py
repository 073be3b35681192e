"""``forumqa feedback export``: readers' 👍/👎 and comments as eval-set records."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import click

from rag.cli.common import CONTEXT, cli, folder_options, settings_of


@cli.group(context_settings=CONTEXT,
           help="Readers' 👍/👎 and comments, which the server keeps in its store (the index folder's "
           "feedback.jsonl, or the database) when FORUMQA_FEEDBACK is set.",
           short_help="work with readers' feedback on answers (FORUMQA_FEEDBACK)")
def feedback() -> None:
    pass


@feedback.command(
    help="Write the feedback kept (the index folder's feedback.jsonl, or the database's table) as one JSON "
    "line per answer in the eval set's shape (id, question, lang, history, and an empty evidence list for a "
    "person to fill in), with the answer judged, its answer_id and verdict, the rating (up or down), the "
    "comment, the time and the serving build id. A later record of the same answer_id (a changed rating, a "
    "comment added) supersedes the earlier ones. Oldest first; lines a crash cut short are skipped.\n\n"
    "example: forumqa feedback export --out eval/feedback.jsonl",
    short_help="write the feedback out as eval-set records",
)
@click.option("--out", type=click.Path(path_type=Path), metavar="FILE",
              help="write here (replaced atomically) instead of stdout")
@click.option("--as", "as_user", metavar="USER",
              help="only the records USER may see: those whose rater could read no collection USER cannot "
                   "(so no question or answer quotes a document USER may not read)")
@folder_options
def export(out: Path | None, as_user: str | None, corpus_dir: Path | None, index_dir: Path | None) -> None:
    from rag.accounts import Accounts
    from rag.store import eval_records, open_store

    store = open_store(settings_of(corpus_dir=corpus_dir, index_dir=index_dir))
    kept = store.feedback()
    if as_user is not None:
        accounts = Accounts(store.accounts())
        user = accounts.records.user(as_user.strip().lower())
        if user is None:
            raise click.UsageError(f"there is no user {as_user!r}")
        readable = accounts.principal_of(user, "token").read
        kept = (fb for fb in kept if fb.visible_to(readable))
    records = list(eval_records(kept))
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    if out is None:
        sys.stdout.write(text)
    else:
        # Written aside and renamed: an export interrupted midway never leaves half a file.
        tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    down = sum(r["rating"] == "down" for r in records)
    where = "" if out is None else f" to {out}"
    print(f"exported {len(records)} feedback records ({down} 👎){where} from {store.feedback_location}",
          file=sys.stderr)
