"""One small linear model over named features, for every fitted model the service ships.

The reader's ranker and gate, the grounding check and the short-answer finder are each ``w . (x - mean)
/ scale + b`` over features that the code computes by name. The shipped JSON lists the names, and a
model is only ever fed through :meth:`LinearModel.matrix` / :meth:`LinearModel.vector`, which look every
feature up by name: a feature added, dropped, renamed or moved in the code, or in the file, fails at
load or at the first call, with both lists in the message, instead of silently pairing a weight with
the wrong number.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import expit, softmax

__all__ = [
    "LinearModel",
    "dump_model",
    "expit",
    "feature_matrix",
    "feature_vector",
    "read_model",
    "rounded",
    "softmax",
]

DIGITS = 6  # rounded so that a retrain on the same data writes the same bytes


def rounded(values: Sequence[float] | np.ndarray, digits: int = DIGITS) -> list[float]:
    return [round(float(v), digits) for v in values]


FORMAT = 1  # of every shipped model file


def dump_model(data: Mapping[str, Any]) -> str:
    """The text of a shipped model file: keys sorted, one number a line, so a retrain on the same data
    writes the same bytes and a changed weight reads as a one-line diff."""
    return json.dumps({"format": FORMAT, **data}, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def read_model(text: str, what: str) -> dict[str, Any]:
    """The parsed model file ``text``, whose format must be this code's (ValueError naming ``what``)."""
    raw: dict[str, Any] = json.loads(text)
    if raw.get("format") != FORMAT:
        raise ValueError(f"unknown {what} format {raw.get('format')!r}")
    return raw


def feature_vector(named: Mapping[str, float], names: Sequence[str]) -> np.ndarray:
    """One example's features in ``names`` order, looked up by name; a missing or unexpected name
    raises ValueError (so a feature computed but not modelled, or the reverse, cannot pass unseen)."""
    if len(named) != len(names) or not all(f in named for f in names):
        raise ValueError(f"features computed {tuple(named)} are not the ones the model reads {tuple(names)}")
    return np.array([named[f] for f in names], dtype=np.float64)


def feature_matrix(rows: Sequence[Mapping[str, float]], names: Sequence[str]) -> np.ndarray:
    """Examples' features as a matrix in ``names`` order, each row checked as by :func:`feature_vector`."""
    if not rows:
        return np.zeros((0, len(names)), dtype=np.float64)
    return np.stack([feature_vector(r, names) for r in rows])


@dataclass(frozen=True)
class LinearModel:
    """``w . (x - mean) / scale + b`` over named features."""

    features: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float = 0.0

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """The linear score of each row of ``x`` (columns in :attr:`features` order)."""
        return np.asarray(((x - self.mean) / self.scale) @ self.coef + self.intercept, dtype=np.float64)

    def vector(self, named: Mapping[str, float]) -> np.ndarray:
        return feature_vector(named, self.features)

    def matrix(self, rows: Sequence[Mapping[str, float]]) -> np.ndarray:
        return feature_matrix(rows, self.features)

    def score(self, named: Mapping[str, float]) -> float:
        """The linear score of one example given by name."""
        return float(self(self.vector(named)[None, :])[0])

    def probability(self, named: Mapping[str, float]) -> float:
        """The logistic probability of one example given by name."""
        return float(expit(self.score(named)))

    def to_dict(self) -> dict[str, Any]:
        return {
            "features": list(self.features),
            "mean": rounded(self.mean),
            "scale": rounded(self.scale),
            "coef": rounded(self.coef),
            "intercept": rounded([self.intercept])[0],
        }

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any], expected: Sequence[str]) -> LinearModel:
        """The model of ``raw``, which must list exactly the ``expected`` feature names, in that order."""
        features = tuple(raw["features"])
        expected = tuple(expected)
        if features != expected:
            missing = [f for f in expected if f not in features]
            extra = [f for f in features if f not in expected]
            why = f"missing {missing}, " if missing else ""
            why += f"unexpected {extra}, " if extra else ""
            why = why or "the same names in another order, "
            raise ValueError(
                f"features {features} are not the ones this code computes {expected} ({why[:-2]})"
            )
        arrays = [np.asarray(raw[k], dtype=np.float64) for k in ("mean", "scale", "coef")]
        if any(a.shape != (len(features),) for a in arrays) or (arrays[1] <= 0).any():
            raise ValueError("mean, scale and coef must be one positive-scale number per feature")
        return cls(features, arrays[0], arrays[1], arrays[2], float(raw["intercept"]))
