"""Evaluate: run a question set (JSONL) and measure retrieval, answers, abstention, calibration, latency.

Question files follow ``eval/dev.jsonl``; SQuAD-style records (``../shared/eval/squad/prepare.py``) add
``answers`` (short answers: an answer is right when it contains one) and ``article``. Those can be run
against one index of every article, or against an index per article (:func:`evaluate_per_article`).
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rag.config import Settings
from rag.generate.grounding import split_answer
from rag.qa import ForumQA, Mode
from rag.types import Answer, Turn


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    evidence: list[str]
    answerable: bool
    lang: str = "en"
    history: list[Turn] = field(default_factory=list)
    answers: list[str] = field(default_factory=list)  # short answers (SQuAD); right = contains one
    article: str = ""
    # For a yes/no question, what settles it: "yes", "no", or "unsettled" (the documents raise the matter
    # but record no outcome). An answer led by the other word, or by either for "unsettled", is wrong.
    yesno: str = ""
    # The short answers a marked span is checked against: SQuAD's crowd answers, or the ``answer`` of a
    # who/when/where/how-many/how-much/which record of eval/reports.
    short: list[str] = field(default_factory=list)

    @property
    def expected(self) -> list[str]:
        """What a right answer contains: a short answer where there are some, else an evidence phrase."""
        return self.answers or self.evidence


@dataclass(frozen=True)
class EvalResult:
    item: EvalItem
    answer: Answer
    rank: int | None  # 1-based rank of the first citation containing evidence
    answer_has_evidence: bool


def _fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip().casefold()


def contains_evidence(text: str, evidence: Iterable[str]) -> bool:
    folded = _fold(text)
    return any(_fold(e) in folded for e in evidence)


def load_questions(path: Path) -> list[EvalItem]:
    items = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            raw: dict[str, Any] = json.loads(line)
            items.append(
                EvalItem(
                    id=str(raw.get("id", n)),
                    question=raw["question"],
                    evidence=list(raw.get("evidence", [])),
                    answerable=bool(raw.get("answerable", True)),
                    lang=str(raw.get("lang", "en")),
                    history=[Turn(t["role"], t["content"]) for t in raw.get("history", [])],
                    answers=[str(a) for a in raw.get("answers", [])],
                    article=str(raw.get("article", "")),
                    yesno=_expected_yes_no(raw),
                    short=[str(a) for a in raw.get("answers", [])] or _short_answer(raw),
                )
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"{path}:{n}: not a question record: {exc}") from exc
    if not items:
        raise ValueError(f"{path}: no questions in the file")
    return items


YES_NO = ("yes", "no", "unsettled")


def _expected_yes_no(raw: dict[str, Any]) -> str:
    """The settled answer of a yes/no record: its ``yesno`` field (eval/plain), or the ``answer`` of a
    record of kind ``yesno`` (eval/reports); "" for other questions."""
    said = raw.get("yesno") or (raw.get("answer") if raw.get("kind") == "yesno" else "")
    said = str(said or "").strip().lower()
    if said and said not in YES_NO:
        raise ValueError(f"yes/no answer {said!r} is none of {', '.join(YES_NO)}")
    return said


SHORT_KINDS = frozenset({"who", "when", "where", "howmany", "howmuch", "which"})


def _short_answer(raw: dict[str, Any]) -> list[str]:
    answer = str(raw.get("answer") or "").strip()
    return [answer] if answer and raw.get("kind") in SHORT_KINDS else []


def short_answer_right(span: str, answers: Sequence[str]) -> bool:
    """A marked short answer is right when it contains one of ``answers``, or lies inside one covering at
    least half of it (SQuAD's crowd answers differ in how much they take around the core)."""
    s = _fold(span)
    return any(g and (g in s or (s in g and 2 * len(s) >= len(g))) for g in map(_fold, answers))


_LEAD = re.compile(r"^\W*(yes|no)\b", re.IGNORECASE)


def lead_word(answer: Answer) -> str:
    """"yes" or "no" when the answer is led by that word, else ""."""
    match = _LEAD.match(answer.answer)
    return match.group(1).lower() if match else ""


def is_right(item: EvalItem, answer: Answer) -> bool:
    """The answer holds the evidence (or a short answer), and a yes/no lead, when there is one, is the
    one that settles the question: a wrong "Yes." or "No." is wrong whatever it quotes."""
    if not contains_evidence(answer.answer, item.expected):
        return False
    lead = lead_word(answer)
    return not (item.yesno and lead and lead != item.yesno)


def evaluate(
    qa: ForumQA, items: list[EvalItem], top_k: int = 5, mode: Mode = "extractive"
) -> list[EvalResult]:
    results = []
    for item in items:
        answer = qa.answer(item.question, item.history, top_k=top_k, mode=mode)
        rank = (
            next((c.n for c in answer.citations if contains_evidence(c.text, item.evidence)), None)
            if item.evidence
            else None
        )
        results.append(EvalResult(item, answer, rank, is_right(item, answer)))
    return results


def evaluate_per_article(
    settings: Settings, items: list[EvalItem], corpus_dir: Path, top_k: int = 5, progress: bool = True
) -> list[EvalResult]:
    """Each article's questions against an index of that article alone (SQuAD's own setting).

    ``corpus_dir`` holds one file per article, named by the records' ``article``; the index of each is
    built (or reused, when up to date) under ``settings.index_dir / <article>``.
    """
    by_article: dict[str, list[EvalItem]] = {}
    for item in items:
        if not item.article:
            raise ValueError(f"question {item.id} names no article; --per-article needs SQuAD-style records")
        by_article.setdefault(item.article, []).append(item)
    results: list[EvalResult] = []
    for article, group in sorted(by_article.items()):
        qa = ForumQA.open(article_settings(settings, corpus_dir, article), progress=progress)
        results.extend(evaluate(qa, group, top_k=top_k))
    return results


def article_settings(settings: Settings, corpus_dir: Path, article: str) -> Settings:
    """Settings for an index of ``article`` alone: its files of ``corpus_dir`` (``<article>.*``) copied
    into ``settings.index_dir / <article> / corpus``, its index beside them (reused while up to date).
    """
    sources = sorted(corpus_dir.glob(f"{article}.*"))
    if not any(not p.name.endswith(".meta.json") for p in sources):
        raise ValueError(f"{corpus_dir}: no document for article {article!r}")
    own_corpus = settings.index_dir / article / "corpus"
    own_corpus.mkdir(parents=True, exist_ok=True)
    for path in sources:
        target = own_corpus / path.name
        if not target.exists() or target.read_bytes() != path.read_bytes():
            shutil.copyfile(path, target)
    return settings.model_copy(update={"corpus_dir": own_corpus, "index_dir": settings.index_dir / article})


def metrics(results: list[EvalResult]) -> dict[str, float]:
    """hit@1, hit@3, MRR and answer accuracy over answerable items; no-answer precision and recall."""
    answerable = [r for r in results if r.item.answerable]
    unanswerable = [r for r in results if not r.item.answerable]
    flagged = [r for r in results if not r.answer.answerable]
    out: dict[str, float] = {"n": float(len(results))}
    if answerable:
        out["hit@1"] = float(np.mean([r.rank == 1 for r in answerable]))
        out["hit@3"] = float(np.mean([r.rank is not None and r.rank <= 3 for r in answerable]))
        out["mrr"] = float(np.mean([1.0 / r.rank if r.rank else 0.0 for r in answerable]))
        out["answer_acc"] = float(np.mean([r.answer_has_evidence for r in answerable]))
        out["kept"] = float(np.mean([r.answer.answerable for r in answerable]))
    with_short = [r for r in answerable if r.item.short]
    if with_short:
        shown = [(r, _marked(r.answer)) for r in with_short]
        marked = [(r, span) for r, span in shown if span is not None]
        out["sa_shown"] = len(marked) / len(with_short)
        if marked:
            rights = [short_answer_right(span, r.item.short) for r, span in marked]
            out["sa_right"] = float(np.mean(rights))
    if flagged:
        out["noans_p"] = float(np.mean([not r.item.answerable for r in flagged]))
    if unanswerable:
        out["noans_r"] = float(np.mean([not r.answer.answerable for r in unanswerable]))
    if answerable and unanswerable:
        out["auroc"] = auroc(
            [r.answer.confidence for r in answerable], [r.answer.confidence for r in unanswerable]
        )
    if results:
        # confidence is the probability that the answer shown is right, so that is what it is checked on
        out["ece"] = calibration_error([r.answer.confidence for r in results], [right(r) for r in results])
    latencies = [r.answer.took_ms for r in results]
    if not latencies:
        return out
    out["p50_ms"] = float(np.percentile(latencies, 50))
    out["p95_ms"] = float(np.percentile(latencies, 95))
    return out


def _marked(answer: Answer) -> str | None:
    """The short answer marked in the answer's first citation that carries one, else None."""
    return next((c.short_answer[2] for c in answer.citations if c.short_answer is not None), None)


def right(result: EvalResult) -> bool:
    """The answer shown is right: the question is answerable and the answer holds its evidence."""
    return result.item.answerable and result.answer_has_evidence


VERDICTS = ("answered", "uncertain", "not_covered")


def grouped(results: list[EvalResult], by: str = "lang") -> list[tuple[str, list[EvalResult]]]:
    """The rows of a report: the results per language (or per ``article``), sorted, then "all"."""
    groups: dict[str, list[EvalResult]] = {}
    for r in results:
        groups.setdefault(r.item.article if by == "article" else r.item.lang, []).append(r)
    return [*sorted(groups.items()), ("all", results)]


def verdict_report(results: list[EvalResult], by: str = "lang") -> str:
    """Per group: what became of answerable and unanswerable questions (each verdict), and how many
    answerable questions were ``answered`` wrongly (the answer lacks the evidence): the costly mistake."""
    rows = grouped(results, by)
    width = max(5, *(len(key) for key, _ in rows))
    head = ["n_ans", "answered", "uncertain", "not_cov", "ans_wrong", "n_unans", "u_answered", "u_uncert",
            "u_not_cov"]
    lines = [f"{'verdicts':<{width}} " + " ".join(f"{h:>10}" for h in head)]
    for key, rs in rows:
        answerable = [r for r in rs if r.item.answerable]
        unanswerable = [r for r in rs if not r.item.answerable]
        cells = [len(answerable)]
        cells += [sum(r.answer.verdict == v for r in answerable) for v in VERDICTS]
        cells += [sum(r.answer.verdict == "answered" and not r.answer_has_evidence for r in answerable)]
        cells += [len(unanswerable)] + [sum(r.answer.verdict == v for r in unanswerable) for v in VERDICTS]
        lines.append(f"{key:<{width}} " + " ".join(f"{c:>10}" for c in cells))
    return "\n".join(lines)


def auroc(positives: list[float], negatives: list[float]) -> float:
    """Probability that a random positive scores above a random negative (ties count half)."""
    pos = np.asarray(positives, dtype=np.float64)
    neg = np.asarray(negatives, dtype=np.float64)
    if not len(pos) or not len(neg):
        return float("nan")
    greater = (pos[:, None] > neg[None, :]).sum()
    ties = (pos[:, None] == neg[None, :]).sum()
    return float((greater + 0.5 * ties) / (len(pos) * len(neg)))


RELIABILITY_BINS = 10


def reliability(
    confidences: list[float], outcomes: list[bool]
) -> list[tuple[float, float, int, float, float]]:
    """Per confidence bin ``[lo, hi)``: (lo, hi, count, mean confidence, share of true outcomes)."""
    conf = np.asarray(confidences, dtype=np.float64)
    hit = np.asarray(outcomes, dtype=np.float64)
    bins = np.minimum((conf * RELIABILITY_BINS).astype(int), RELIABILITY_BINS - 1)
    rows = []
    for b in range(RELIABILITY_BINS):
        mask = bins == b
        if mask.any():
            rows.append(
                (
                    b / RELIABILITY_BINS,
                    (b + 1) / RELIABILITY_BINS,
                    int(mask.sum()),
                    conf[mask].mean(),
                    hit[mask].mean(),
                )
            )
    return rows


def calibration_error(confidences: list[float], outcomes: list[bool]) -> float:
    """Expected calibration error: the count-weighted gap between confidence and outcome per bin."""
    rows = reliability(confidences, outcomes)
    total = sum(n for _, _, n, _, _ in rows)
    return float(sum(n * abs(c - h) for _, _, n, c, h in rows) / total) if total else float("nan")


COLUMNS = [
    "n",
    "hit@1",
    "hit@3",
    "mrr",
    "answer_acc",
    "kept",
    "sa_shown",
    "sa_right",
    "noans_p",
    "noans_r",
    "auroc",
    "ece",
    "p50_ms",
    "p95_ms",
]


def report(results: list[EvalResult], by: str = "lang") -> str:
    """A table of :func:`metrics` per language (or per ``article``) and overall."""
    rows = [(key, metrics(rs)) for key, rs in grouped(results, by)]
    width = max(5, *(len(key) for key, _ in rows))
    lines = [f"{by:<{width}} " + " ".join(f"{c:>10}" for c in COLUMNS)]
    for key, m in rows:
        cells = []
        for c in COLUMNS:
            value = m.get(c)
            cells.append(
                f"{'-':>10}" if value is None else f"{int(value):>10}" if c == "n" else f"{value:>10.3f}"
            )
        lines.append(f"{key:<{width}} " + " ".join(cells))
    return "\n".join(lines)


def reliability_report(results: list[EvalResult]) -> str:
    """How often the answer shown was right, per band of ``confidence`` (a reliability table)."""
    rows = reliability([r.answer.confidence for r in results], [right(r) for r in results])
    lines = ["confidence        n  mean_conf       right"]
    for lo, hi, n, conf, share in rows:
        lines.append(f"{lo:.1f}-{hi:.1f}   {n:>7} {conf:>10.3f} {share:>11.3f}")
    return "\n".join(lines)


def generation_report(results: list[EvalResult]) -> str:
    """What became of the LLM's answers: kept whole, trimmed, or replaced by the extractive answer;
    sentences kept and struck; whether every [n] names a given passage; time and speed added."""
    asked = [r.answer for r in results if r.answer.model is not None or r.answer.notice is not None]
    generated = [a for a in asked if a.mode == "generative"]
    whole = sum(1 for a in generated if a.grounded)
    unsupported = sum(1 for a in asked if a.mode == "extractive" and a.grounded is False)
    failed = len(asked) - len(generated) - unsupported
    kept_sentences = sum(len(split_answer(a.answer)) for a in generated)
    struck = sum(len(a.dropped) for a in asked)
    cited = [{int(n) for n in re.findall(r"\[(\d+)\]", a.answer)} for a in generated]
    valid = [numbers <= {c.n for c in a.citations} for numbers, a in zip(cited, generated, strict=True)]
    with_evidence = [r for r in results if r.answer.mode == "generative" and r.item.expected]
    right = sum(1 for r in with_evidence if contains_evidence(r.answer.answer, r.item.expected))
    added = sorted(a.generated_ms for a in asked if a.generated_ms is not None)
    speeds = [
        a.usage["completion_tokens"] / (a.generated_ms / 1000)
        for a in asked
        if a.usage and a.generated_ms and a.usage.get("completion_tokens")
    ]

    def share(n: int, of: int) -> str:
        return f"{n}/{of} ({n / of:.0%})" if of else "0/0"

    def pct(values: list[float], q: float) -> str:
        return f"{values[min(len(values) - 1, int(q * len(values)))]:.0f}" if values else "-"

    lines = [
        f"questions                          {len(results)}",
        f"LLM asked (reader: answerable)     {len(asked)}",
        f"  generated answer kept whole      {share(whole, len(asked))}",
        f"  generated, some sentences struck {share(len(generated) - whole, len(asked))}",
        f"  extractive: nothing supported    {share(unsupported, len(asked))}",
        f"  extractive: the LLM failed       {share(failed, len(asked))}",
        f"sentences kept / struck            {kept_sentences} / {struck}",
        f"citations valid ([n] was given)    {share(sum(valid), len(valid))}",
        f"generated answer has the evidence  {share(right, len(with_evidence))}",
        f"ms added per LLM answer p50/p95    {pct(added, 0.5)} / {pct(added, 0.95)}",
        f"completion tokens/s (median)       {sorted(speeds)[len(speeds) // 2]:.1f}" if speeds else "",
    ]
    return "\n".join(line for line in lines if line)
