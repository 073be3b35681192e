"""Fit the short-answer finder (``forumqa train-short-answer``): which span of an answer sentence answers.

Data: the SQuAD 2.0 questions of the five training articles of :mod:`rag.train.reader` (the other five
are held out), prepared by ``prepare.py`` of ``../shared/eval/squad``; each answerable question with its
evidence sentence. Every candidate span the finder proposes in that sentence (:func:`candidates`) is
labelled right when it contains a crowd answer, or lies inside one covering at least half of it (the
evaluation's rule).

Per answer type (date, number, person, place, entity, other), two logistic models:

1. the **ranking** model, over every candidate of every question of that type;
2. the **calibration** of the best candidate (its ranking logit, its margin over the runner-up and the
   number of candidates), labelled by whether that best candidate is right: the maximum of several
   ranking probabilities is biased upwards, and this second step corrects for it.

The threshold below which no short answer is returned is the lowest (in steps of 0.01) at which
precision on the training questions reaches ``TARGET_PRECISION``.

Reproducible: questions in file order, convex fits from zero (L-BFGS), rounded numbers; a rerun on the
same data writes the same bytes.
"""

from __future__ import annotations

import argparse
import json
import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rag.answer.question import AnswerType
from rag.answer.short_answer import (
    CALIBRATION_FEATURES,
    FEATURES,
    MODEL_PATH,
    Scored,
    ShortAnswerFinder,
    ShortAnswerModel,
    calibration_features,
    candidates,
)
from rag.evaluation import short_answer_right
from rag.linear import LinearModel, feature_matrix
from rag.train.reader import TRAIN_ARTICLES, fit_logistic, prepare_squad

log = logging.getLogger(__name__)

SQUAD = Path(__file__).resolve().parents[3] / "shared" / "eval" / "squad"
RANK_L2 = 1.0
CALIBRATION_L2 = 1.0
TARGET_PRECISION = 0.8
COMMAND = "forumqa train-short-answer"


@dataclass(frozen=True)
class Example:
    """One answerable question, its evidence sentence and the crowd's answers."""

    article: str
    question: str
    sentence: str
    answers: tuple[str, ...]


def right(span: str, answers: Sequence[str]) -> bool:
    """The evaluation's rule (:func:`rag.evaluation.short_answer_right`)."""
    return short_answer_right(span, answers)


def load_examples(questions: Path, articles: Sequence[str]) -> list[Example]:
    """The answerable questions of ``articles`` in ``questions`` (prepare.py's JSONL), in file order."""
    wanted = set(articles)
    out = []
    for line in questions.read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["article"] in wanted and row.get("answers") and row.get("evidence"):
            out.append(Example(row["article"], row["question"], row["evidence"][0], tuple(row["answers"])))
    return out


def _linear(features: tuple[str, ...], x: np.ndarray, y: np.ndarray, l2: float) -> LinearModel:
    if len(y) == 0 or y.all() or not y.any():
        # Nothing to separate: a constant model at the observed rate (never happens on the shipped data).
        rate = float(np.clip(y.mean() if len(y) else 0.5, 0.01, 0.99))
        n = len(features)
        return LinearModel(features, np.zeros(n), np.ones(n), np.zeros(n), float(np.log(rate / (1 - rate))))
    # On the raw features, as the weights shipped before this trainer were fitted: the same penalty
    # gave the same held-out precision (0.874 of 294 shown) where standardised fits gave 0.866-0.870.
    return fit_logistic(x, y, features, l2, standardise=False)


def train(examples: Sequence[Example], articles: Sequence[str]) -> ShortAnswerModel:
    """Fit both models of every answer type on ``examples`` and choose the threshold."""
    found = [(e, *candidates(e.question, e.sentence)) for e in examples]
    rank: dict[AnswerType, LinearModel] = {}
    for kind in AnswerType:
        rows = [f for _, q, cands in found if q.type is kind for _, f in cands]
        labels = [
            right(e.sentence[c.start : c.end], e.answers)
            for e, q, cands in found
            if q.type is kind
            for c, _ in cands
        ]
        rank[kind] = _linear(FEATURES, feature_matrix(rows, FEATURES), np.array(labels, dtype=bool), RANK_L2)

    best: dict[AnswerType, list[tuple[dict[str, float], bool]]] = {kind: [] for kind in AnswerType}
    for e, q, cands in found:
        if not cands:
            continue
        scored = sorted((Scored(c, f, rank[q.type].score(f)) for c, f in cands), key=lambda s: -s.logit)
        top = scored[0].candidate
        best[q.type].append((calibration_features(scored), right(e.sentence[top.start : top.end], e.answers)))
    calibration = {
        kind: _linear(
            CALIBRATION_FEATURES,
            feature_matrix([f for f, _ in best[kind]], CALIBRATION_FEATURES),
            np.array([ok for _, ok in best[kind]], dtype=bool),
            CALIBRATION_L2,
        )
        for kind in AnswerType
    }
    model = ShortAnswerModel(rank, calibration, 0.5)
    threshold = choose_threshold(model, examples)
    metadata = {
        "trained_on": sorted(articles),
        "questions": len(examples),
        "candidates": sum(len(c) for _, _, c in found),
        "rank_l2": RANK_L2,
        "calibration_l2": CALIBRATION_L2,
        "target_precision": TARGET_PRECISION,
        "command": COMMAND,
    }
    return ShortAnswerModel(rank, calibration, threshold, metadata)


def confidences(model: ShortAnswerModel, examples: Sequence[Example]) -> list[tuple[float, bool] | None]:
    """Per example, the best candidate's confidence and whether it is right (None without a candidate)."""
    finder = ShortAnswerFinder(model)
    out: list[tuple[float, bool] | None] = []
    for e in examples:
        q, scored = finder.scored(e.question, e.sentence)
        if not scored:
            out.append(None)
            continue
        top = scored[0].candidate
        out.append((finder.confidence(q, scored), right(e.sentence[top.start : top.end], e.answers)))
    return out


def choose_threshold(model: ShortAnswerModel, examples: Sequence[Example]) -> float:
    """The lowest threshold (steps of 0.01) whose precision on ``examples`` reaches TARGET_PRECISION."""
    found = np.array([c for c in confidences(model, examples) if c is not None], dtype=np.float64)
    for t in np.round(np.arange(0.01, 1.0, 0.01), 2):
        kept = found[found[:, 0] >= t]
        if len(kept) and kept[:, 1].mean() >= TARGET_PRECISION:
            return float(t)
    return 0.99


def report(model: ShortAnswerModel, examples: Sequence[Example], title: str) -> str:
    """Coverage and precision at the model's threshold on ``examples``."""
    found = [c for c in confidences(model, examples) if c is not None and c[0] >= model.threshold]
    right_ = sum(ok for _, ok in found)
    return (
        f"{title}: {len(examples)} questions, answered {len(found) / max(1, len(examples)):.3f}, "
        f"precision {right_ / max(1, len(found)):.3f}"
    )


def train_from_squad(squad_dir: Path, articles: Sequence[str] = TRAIN_ARTICLES) -> ShortAnswerModel:
    """Prepare SQuAD into a temporary folder and fit on ``articles``."""
    with tempfile.TemporaryDirectory() as tmp:
        examples = load_examples(prepare_squad(squad_dir, Path(tmp)), articles)
    missing = set(articles) - {e.article for e in examples}
    if missing:
        raise ValueError(f"no questions for article(s) {', '.join(sorted(missing))} in {squad_dir}")
    return train(examples, articles)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--squad", type=Path, default=SQUAD, help="shared/eval/squad (with prepare.py)")
    parser.add_argument("--out", type=Path, default=MODEL_PATH, help="where to write the model JSON")
    args = parser.parse_args(argv)
    return run(args.squad, args.out)


def run(squad_dir: Path, out: Path) -> int:
    """Fit, write ``out``, and print coverage and precision on the training and held-out articles."""
    from rag.train.reader import HELD_OUT_ARTICLES

    with tempfile.TemporaryDirectory() as tmp:
        questions = prepare_squad(squad_dir, Path(tmp))
        trained = load_examples(questions, TRAIN_ARTICLES)
        held = load_examples(questions, HELD_OUT_ARTICLES)
    model = train(trained, TRAIN_ARTICLES)
    out.write_text(model.to_json(), encoding="utf-8")
    print(f"wrote {out} (threshold {model.threshold})")
    print(report(model, trained, "training articles"))
    print(report(model, held, "held-out articles"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
