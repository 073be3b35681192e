"""``forumqa ask`` and ``forumqa eval``: answer one question, or score a question set."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from rag.cli.common import cli, fail, folder_options, settings_of

if TYPE_CHECKING:  # imported lazily below: `forumqa --help` should not load the models' libraries
    from rag.qa import ForumQA
    from rag.types import Answer


@cli.command(
    help="Answer a question from the report, printing the answer and each citation with its section and "
    "character offsets. Builds the index first if needed.",
    short_help="answer one question with citations",
)
@click.argument("question", nargs=-1, required=True)
@click.option("--after", multiple=True, metavar="QUESTION",
              help="an earlier question of the conversation, for follow-ups (repeatable)")
@click.option("--top-k", "top_k", type=click.IntRange(1, 20), default=5, show_default=True, metavar="1..20",
              help="citations to return")
@click.option("--mode", type=click.Choice(["extractive", "generative", "auto"]), default="auto",
              help="extractive: the report's own sentences; generative: the LLM configured by "
              "FORUMQA_LLM_BASE_URL/FORUMQA_LLM_MODEL writes the answer from the cited passages, each "
              "sentence checked against them; auto (default): generative when an LLM is configured")
@click.option("--json", "as_json", is_flag=True, help="print the answer object the API returns")
@folder_options
def ask(question: tuple[str, ...], after: tuple[str, ...], top_k: int, mode: str, as_json: bool,
        corpus_dir: Path | None, index_dir: Path | None) -> None:
    from rag.generate.generation import Final, Token
    from rag.qa import ForumQA, valid_text
    from rag.types import Turn

    settings = settings_of(corpus_dir=corpus_dir, index_dir=index_dir)
    try:  # refused before the index and models load, which takes seconds
        # Python turns bytes of the command line that are not UTF-8 into lone surrogates.
        text = valid_text(" ".join(question)).strip()
        history = [Turn("user", valid_text(h, "--after", allow_empty=True)) for h in after]
        settings.check_mode(mode)
    except ValueError as exc:  # LLMNotConfigured is one
        raise fail(str(exc), 2) from None
    qa = ForumQA.open(settings, progress=not as_json)
    answer: Answer | None = None
    streamed = False
    for event in qa.answer_events(text, history, top_k, mode=mode):  # type: ignore[arg-type]
        if isinstance(event, Token) and not as_json:
            print(event.text, end="", flush=True)  # the LLM's words as they come
            streamed = True
        elif isinstance(event, Final):
            answer = event.answer
    assert answer is not None
    if as_json:
        print(json.dumps(answer.to_dict(), ensure_ascii=False, indent=2))
        return
    if streamed:
        print()
        for dropped in answer.dropped:
            print(f"  (struck: {dropped.text!r} — {dropped.reason})")
        if answer.mode == "generative":
            _print_citations(qa, answer)
            return
        print()  # the LLM failed, or nothing it wrote held up: the extractive answer follows
    if answer.notice:
        print(f"({answer.notice})\n")
    bold = _bold if sys.stdout.isatty() else (lambda text: text)
    shown = answer.answer
    for c in answer.citations:
        if c.short_answer is not None:
            short = c.short_answer[2]
            marker = f" [{c.n}]"
            at = shown.find(marker)
            cut = shown.rfind(short, 0, at) if at >= 0 else -1
            if cut >= 0:
                shown = shown[:cut] + bold(short) + shown[cut + len(short) :]
    print(shown)
    _print_citations(qa, answer)


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


@cli.command(
    "eval",
    help="Run a JSONL question set (id, question, evidence, answerable, lang, history) and print hit@1, "
    "hit@3, MRR, answer accuracy, kept-answerable, no-answer precision and recall, AUROC and calibration "
    "error of the confidence, and p50/p95 latency, per language (or article) and overall. Records with "
    "`answers` (SQuAD) are right when the answer contains one.\n\nFILE: e.g. eval/dev.jsonl, or a SQuAD "
    "questions.jsonl from prepare.py.",
    short_help="score a question set (JSONL)",
)
@click.argument("file", type=click.Path(path_type=Path))
@click.option("--top-k", "top_k", type=int, default=5, show_default=True)
@click.option("--verbose", "per_question", is_flag=True, help="one line per question")
@click.option("--by", type=click.Choice(["lang", "article"]), default="lang", show_default=True,
              help="rows of the table")
@click.option("--articles", metavar="A,B", help="only the questions of these articles (SQuAD)")
@click.option("--per-article", "per_article", type=click.Path(path_type=Path), metavar="CORPUS_DIR",
              help="ask each article's questions of an index of that article alone (built under "
              "--index-dir/<article> from CORPUS_DIR/<article>.*), as SQuAD does; without it, one index of "
              "--corpus-dir")
@click.option("--reliability", is_flag=True,
              help="also print, per band of confidence, how often the documents really answered")
@click.option("--mode", type=click.Choice(["extractive", "generative"]), default="extractive",
              help="generative: have the configured LLM write each answer (FORUMQA_LLM_*), and also print "
              "what became of its answers: kept, sentences struck, fallbacks, citation validity, time added")
@folder_options
def evaluate_command(file: Path, top_k: int, per_question: bool, by: str, articles: str | None,
                     per_article: Path | None, reliability: bool, mode: str, corpus_dir: Path | None,
                     index_dir: Path | None) -> None:
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

    items = load_questions(file)
    if articles:
        wanted = {a.strip() for a in articles.split(",") if a.strip()}
        unknown = wanted - {i.article for i in items}
        if unknown:
            raise ValueError(f"no questions for article(s) {', '.join(sorted(unknown))} in {file}")
        items = [i for i in items if i.article in wanted]
    settings = settings_of(corpus_dir=corpus_dir, index_dir=index_dir)
    settings.check_mode(mode)  # main() reports its LLMNotConfigured (a ValueError) like other errors
    if per_article:
        results = evaluate_per_article(settings, items, per_article, top_k=top_k)
    else:
        results = evaluate(ForumQA.open(settings), items, top_k=top_k, mode=mode)  # type: ignore[arg-type]
    if per_question:
        for r in results:
            right = r.answer.answerable == r.item.answerable and (
                not r.item.answerable or r.answer_has_evidence
            )
            mark = "ok " if right else "BAD"
            print(f"{mark} {r.item.id:>5} rank={r.rank} conf={r.answer.confidence:.2f} "
                  f"{r.answer.verdict:<11} {r.item.question}")
    print(report(results, by=by))
    print()
    print(verdict_report(results, by=by))
    if reliability:
        print()
        print(reliability_report(results))
    if mode != "extractive":
        print()
        print(generation_report(results))
