"""``forumqa train-reader``, ``train-short-answer`` and ``train-grounding``: rebuild the shipped models.

A new training command goes here: a function decorated with ``@cli.command("train-...")``, its imports
inside it (``forumqa --help`` loads no model library), reporting its pin with :func:`report_pin`.
"""

from __future__ import annotations

from pathlib import Path

import click

from rag.cli.common import F, cli

SQUAD_DEFAULT = Path("../shared/eval/squad")


def squad_option(func: F) -> F:
    return click.option(
        "--squad", type=click.Path(path_type=Path), default=SQUAD_DEFAULT, show_default=True,
        help="folder with SQuAD's prepare.py and articles",
    )(func)


def report_pin(out: Path, pinned: str, what: str, where: str) -> None:
    """Say whether the model written to ``out`` is the shipped one, and where its pin lives if not."""
    from rag.hashing import sha256_file

    digest = sha256_file(out)
    print(f"wrote {out} (sha256 {digest})")
    if digest == pinned:
        print(f"identical to the shipped {what}")
    else:
        print(f"differs from the shipped {what}: to ship it, set MODEL_SHA256 in {where} to it")


@cli.command(
    "train-reader",
    help="Fit the reader that picks the answering sentences and decides whether the documents answer, on "
    "SQuAD 2.0 articles (prepared by their prepare.py), the plain questions about them and the fit split of "
    "the report-like documents (eval/reports), and write it to rag/models/reader.json. "
    "Deterministic: the same data gives the same bytes, so a rerun reproduces the shipped file. Builds an "
    "index per article under --work-dir (reused next time); about three minutes.",
    short_help="rebuild the reader (sentence ranker and answerability gate) from SQuAD articles",
)
@squad_option
@click.option("--articles", metavar="A,B", help="training articles (default: the five the shipped reader was "
              "fitted on; the other five are held out for evaluation)")
@click.option("--work-dir", "work_dir", type=click.Path(path_type=Path), default=Path("build/reader-train"),
              show_default=True, help="where the per-article indexes go")
@click.option("--out", type=click.Path(path_type=Path),
              help="where to write the reader (default: the package's models/reader.json)")
@click.option("--plain", type=click.Path(path_type=Path), default=Path("eval/plain/questions.jsonl"),
              show_default=True, help="plain questions about the same articles, fitted beside SQuAD's (only "
              "the training articles' are read)")
@click.option("--reports", type=click.Path(path_type=Path), default=Path("eval/reports"), show_default=True,
              help="report-like documents and questions, of which the fit split is fitted beside SQuAD's "
              "(its held-out split is never read)")
@click.option("--no-plain", "no_plain", is_flag=True, help="no plain questions (eval/plain)")
@click.option("--no-reports", "no_reports", is_flag=True, help="no report-like documents (eval/reports)")
@click.option("--max-questions", "max_questions", type=int, metavar="N",
              help="only the first N questions per article")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for anything sampled")
@click.option("--quiet", is_flag=True, help="no progress bars")
def train_reader(squad: Path, articles: str | None, work_dir: Path, out: Path | None, plain: Path,
                 reports: Path, no_plain: bool, no_reports: bool, max_questions: int | None, seed: int,
                 quiet: bool) -> None:
    from rag.answer.reader import MODEL_PATH, MODEL_SHA256
    from rag.train.reader import train_from_squad

    model = train_from_squad(
        squad,
        work_dir,
        articles=articles.split(",") if articles else None,
        max_questions=max_questions,
        seed=seed,
        progress=not quiet,
        plain=None if no_plain else plain,
        reports=None if no_reports else reports,
    )
    target: Path = out or MODEL_PATH
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_text(model.to_json(), encoding="utf-8")
    tmp.replace(target)  # a reader is never seen half-written
    report_pin(target, MODEL_SHA256, "reader", "rag/answer/reader.py")


def _fitted(what: str, took: str) -> str:
    return (f"Fit the {what} on the five training SQuAD 2.0 articles (prepared by their prepare.py) and "
            f"write it to rag/models/. Deterministic: the same data gives the same bytes. Takes {took}.")


@cli.command("train-short-answer", help=_fitted("short-answer finder", "about half a minute"),
             short_help="rebuild the short-answer finder's model from SQuAD articles")
@squad_option
@click.option("--out", type=click.Path(path_type=Path),
              help="where to write the model (default: the package's)")
def train_short_answer(squad: Path, out: Path | None) -> None:
    from rag.answer.short_answer import MODEL_PATH, MODEL_SHA256
    from rag.train.short_answer import run

    target: Path = out or MODEL_PATH
    status = run(squad, target)
    report_pin(target, MODEL_SHA256, "short-answer model", "rag/answer/short_answer.py")
    if status:
        raise click.exceptions.Exit(status)


@cli.command("train-grounding", help=_fitted("grounding check", "a few minutes; prints its figures"),
             short_help="rebuild the grounding check's model from SQuAD articles")
@squad_option
@click.option("--out", type=click.Path(path_type=Path),
              help="where to write the model (default: the package's)")
def train_grounding(squad: Path, out: Path | None) -> None:
    from rag.generate.grounding import MODEL_PATH, MODEL_SHA256
    from rag.train.grounding import main as fit

    target: Path = out or MODEL_PATH
    status = fit(["--squad", str(squad), "--out", str(target)])
    report_pin(target, MODEL_SHA256, "grounding model", "rag/generate/grounding.py")
    if status:
        raise click.exceptions.Exit(status)
