"""Answer latency in process: ``ForumQA.answer`` p50/p95 (cache off) beside its floor, query encoding.

The floor of a question is the bare ``encode_queries`` time of the embedder(s) the retriever routes it
to (the English model for Latin script, the multilingual ones otherwise), measured interleaved with the
answers in the same run so both see the same machine load. Both are timed in a worker thread, as the
server's threadpool runs them. Target: answer p50 <= 1.5 x floor p50.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence
from typing import Any

from bench.common import (
    Check,
    Context,
    Latency,
    Question,
    Report,
    bench_settings,
    dev_questions,
    in_thread,
    log,
    ms,
    timed,
)

TARGET_RATIO = 1.5


def open_qa(index_dir: Any, **overrides: Any) -> Any:
    """A ForumQA over ``index_dir`` (built already), with settings ``overrides`` (e.g. cache_size=0)."""
    from rag.qa import ForumQA

    return ForumQA.open(bench_settings(index_dir, **overrides), progress=False)


def turns(question: Question) -> list[Any]:
    """The question's history as ``rag.types.Turn`` objects."""
    from rag.types import Turn

    return [Turn(role, content) for role, content in question.history]  # type: ignore[arg-type]


def models_for(qa: Any, question: Question) -> list[str]:
    """The embedders ``qa`` encodes ``question`` with (after follow-up rewriting), as the retriever does."""
    from rag.answer.followup import standalone_question
    from rag.answer.retrieval import dense_models_for, script_of

    query = standalone_question(question.text, turns(question))
    return list(dense_models_for(script_of(query), qa.index.embedder_names))


def floor_call(qa: Any, question: Question) -> Callable[[], object]:
    """A call doing only the query encoding that answering ``question`` needs: the latency floor."""
    from rag.answer.followup import standalone_question

    query = standalone_question(question.text, turns(question))
    encoders = [qa.embedders[name] for name in models_for(qa, question)]

    def encode() -> None:
        for encoder in encoders:
            encoder.encode_queries([query])

    return encode


def answer_call(qa: Any, question: Question) -> Callable[[], Any]:
    """A call answering ``question`` (with its history) through ``qa``."""
    history = turns(question)
    return lambda: qa.answer(question.text, history)


def measure(qa: Any, questions: Sequence[Question], repeats: int) -> list[tuple[list[float], list[float]]]:
    """Per run, the (answer, floor) seconds of each question, in question order.

    One warm-up pass first; then each question is answered and its floor timed back to back, the order
    of the two alternating between runs so neither always runs on a warmer cache.
    """
    answers = [answer_call(qa, q) for q in questions]
    floors = [floor_call(qa, q) for q in questions]
    for answer, floor in zip(answers, floors, strict=True):
        answer()
        floor()
    runs = []
    for run in range(repeats):
        answer_times, floor_times = [], []
        for answer, floor in zip(answers, floors, strict=True):
            if run % 2:
                floor_times.append(timed(floor))
                answer_times.append(timed(answer))
            else:
                answer_times.append(timed(answer))
                floor_times.append(timed(floor))
        runs.append((answer_times, floor_times))
    return runs


def summarise(
    runs: Sequence[tuple[list[float], list[float]]], rows: Sequence[int]
) -> tuple[Latency, Latency]:
    """(answer, floor) latency of the questions at ``rows``: median over runs of each run's p50 and p95."""
    answer = Latency.median_of([Latency.of([a[i] for i in rows]) for a, _ in runs])
    floor = Latency.median_of([Latency.of([f[i] for i in rows]) for _, f in runs])
    return answer, floor


def overhead(runs: Sequence[tuple[list[float], list[float]]], rows: Sequence[int]) -> float:
    """Seconds answering adds to encoding: median over runs of the median per-question difference."""
    return statistics.median(statistics.median(a[i] - f[i] for i in rows) for a, f in runs)


def run(ctx: Context, questions: Sequence[Question] | None = None, qa: Any = None) -> Report:
    """Measure and print answer latency against the encoding floor, overall and by language."""
    report = Report("answer latency")
    questions = list(questions or dev_questions())
    if qa is None:
        log("answer latency: opening ForumQA (cache_size=0)")
        qa = open_qa(ctx.index_dir(), cache_size=0)
    if qa.settings.cache_size:
        raise ValueError("answer latency must be measured with the answer cache disabled (cache_size=0)")
    repeats = ctx.repeats(3)
    log(f"answer latency: {len(questions)} questions x {repeats} runs")
    runs = in_thread(lambda: measure(qa, questions, repeats))  # as the server's threadpool calls it
    groups: dict[str, list[int]] = {"all": list(range(len(questions)))}
    for i, q in enumerate(questions):
        groups.setdefault("en" if q.lang == "en" else "ko/ru", []).append(i)
    rows = []
    for name, members in groups.items():
        if name != "all" and len(members) == len(questions):
            continue
        answer, floor = summarise(runs, members)
        models = sorted({m for i in members for m in models_for(qa, questions[i])})
        rows.append(
            [
                name,
                len(members),
                "+".join(models),
                ms(answer.p50),
                ms(answer.p95),
                ms(floor.p50),
                ms(floor.p95),
                f"{answer.p50 / floor.p50:.2f}x",
                f"{answer.p95 / floor.p95:.2f}x",
                ms(overhead(runs, members)),
            ]
        )
    report.table(
        f"answer latency in process (ms; cache off; median of {repeats} runs)",
        [
            "questions",
            "n",
            "embedders",
            "answer p50",
            "answer p95",
            "floor p50",
            "floor p95",
            "ratio p50",
            "ratio p95",
            "answer-floor p50",
        ],
        rows,
    )
    answer, floor = summarise(runs, groups["all"])
    report.check(Check("answer p50 / encoding floor p50", answer.p50 / floor.p50, TARGET_RATIO, unit="x"))
    report.print_checks()
    return report
