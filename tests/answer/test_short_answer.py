"""Short answers inside an answer sentence: offsets, never echoing the question, behaviour, accuracy.

The behavioural cases are made-up general English sentences, not taken from any evaluation set. The
accuracy guard runs the module on the five held-out SQuAD articles of ../shared/eval/squad (never used
to fit it) and fails if precision at the default threshold drops well below what was measured.
"""

from __future__ import annotations

import hashlib
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rag.answer.short_answer import MODEL_PATH, MODEL_SHA256, AnswerType, load_model, short_answer
from rag.index.embedders import ModelIntegrityError
from rag.train.reader import TRAIN_ARTICLES, prepare_squad
from rag.train.short_answer import load_examples, train

ROOT = Path(__file__).resolve().parents[2]
SQUAD = ROOT.parent / "shared" / "eval" / "squad"
HELD_OUT = frozenset(
    {
        "the-legend-of-zelda-twilight-princess",
        "ipod",
        "solar-energy",
        "to-kill-a-mockingbird",
        "sino-tibetan-relations-during-the-ming-dynasty",
    }
)
# Held-out precision measured when the module was fitted (513 of 1,309 questions answered, 0.725
# right); the guard allows 0.1 of slack for harmless changes.
MEASURED_HELD_OUT_PRECISION = 0.725

CASES = [
    (
        "When was the bridge opened?",
        "The bridge was opened to traffic on 17 October 1849 after four years of construction.",
        "17 October 1849",
    ),
    ("When did the War of 1812 end?", "The War of 1812 ended in 1815 with the Treaty of Ghent.", "1815"),
    (
        "In what year was the library founded?",
        "The library, founded in 1895 by a local merchant, moved in 1931.",
        "1895",
    ),
    (
        "How many people attended the opening ceremony?",
        "About 12,000 people attended the opening ceremony, which was held in the new stadium.",
        "About 12,000 people",
    ),
    (
        "How many goals did Smith score in the final?",
        "Smith scored three goals in the final against Spain.",
        "three goals",
    ),
    (
        "What percentage of voters supported the plan?",
        "The plan was supported by 62% of voters in the referendum.",
        "62%",
    ),
    (
        "How much did the museum cost to build?",
        "The museum cost $45 million to build and opened two years later.",
        "$45 million",
    ),
    ("Who did Smith meet in Paris?", "Smith met Maria Jones in Paris during the summer.", "Maria Jones"),
    (
        "Who headed the Korean delegation?",
        "The Korean delegation was headed by Korea Foundation president Lee In-ho.",
        "Korea Foundation president Lee In-ho",
    ),
    ("Where did the delegates meet?", "The delegates met in Geneva in March 2019.", "Geneva"),
]


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _right(span: str, answers: list[str]) -> bool:
    """The evaluation's rule: the span contains a gold answer, or lies inside one covering half of it."""
    s = _fold(span)
    return any(g and (g in s or (s in g and 2 * len(s) >= len(g))) for g in map(_fold, answers))


@pytest.mark.parametrize(("question", "sentence", "expected"), CASES)
def test_behaviour_on_general_sentences(question: str, sentence: str, expected: str) -> None:
    answer = short_answer(question, sentence)
    assert answer is not None
    assert answer.text == expected
    assert sentence[answer.start : answer.end] == answer.text
    assert 0.0 <= answer.confidence <= 1.0


@pytest.mark.parametrize(
    ("question", "sentence"),
    [
        ("When was the bridge opened?", "The bridge was opened to traffic after four years of construction."),
        (
            "How many students attend the school?",
            "The school has no dormitories and is located near the river.",
        ),
        ("Who founded the company?", "the company was founded in a small garage by two friends."),
    ],
)
def test_none_without_a_candidate_of_the_expected_type(question: str, sentence: str) -> None:
    assert short_answer(question, sentence) is None


def test_spans_never_echo_the_question() -> None:
    # The only name and the only year are the ones the question itself mentions.
    assert (
        short_answer("Who did Maria Jones visit in 1990?", "Maria Jones visited her sister in 1990.") is None
    )
    sentence = "Smith left Berlin in 1990 for Paris."
    answer = short_answer("When did Smith leave Berlin?", sentence)
    assert answer is not None and (answer.start, answer.end, answer.text) == (21, 25, "1990")
    answer = short_answer("Who met Smith in Paris?", "In Paris, Smith met Jones.")
    assert answer is not None and answer.text == "Jones"


def _held_out_rows(tmp_path: Path) -> list[dict[str, Any]]:
    if not SQUAD.is_dir():
        pytest.skip(f"{SQUAD} is absent")
    subprocess.run(
        [sys.executable, str(SQUAD / "prepare.py"), str(tmp_path)], check=True, capture_output=True
    )
    rows = [
        json.loads(line) for line in (tmp_path / "questions.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    return [r for r in rows if r["article"] in HELD_OUT and r["answers"]]


def test_held_out_invariants_and_precision(tmp_path: Path) -> None:
    rows = _held_out_rows(tmp_path)
    assert len(rows) > 1000
    returned = right = 0
    for row in rows:
        question, sentence, answers = row["question"], row["evidence"][0], row["answers"]
        answer = short_answer(question, sentence)
        if answer is None:
            continue
        returned += 1
        assert sentence[answer.start : answer.end] == answer.text
        assert 0.0 <= answer.confidence <= 1.0
        # Never only question words: some word of the span is not a word of the question.
        question_words = {w.casefold() for w in re.findall(r"\w+", question)}
        assert {w.casefold() for w in re.findall(r"\w+", answer.text)} - question_words
        right += _right(answer.text, answers)
    assert returned / len(rows) > 0.25  # coverage was 0.39 when measured
    assert right / returned >= MEASURED_HELD_OUT_PRECISION - 0.1


# ------------------------------------------------------------------------------------ the shipped model


def test_shipped_model_matches_its_pinned_sha256() -> None:
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256
    model = load_model()
    assert set(model.rank) == set(AnswerType) and 0.0 < model.threshold < 1.0


def test_a_model_for_other_features_is_refused(tmp_path: Path) -> None:
    raw = json.loads(MODEL_PATH.read_text(encoding="utf-8"))
    features = raw["rank"]["date"]["features"]
    features[0], features[1] = features[1], features[0]  # the same names in another order
    moved = tmp_path / "short_answer.json"
    moved.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ModelIntegrityError, match="another order"):
        load_model(moved, expected_sha256=None)


def test_training_twice_on_the_same_data_writes_the_same_bytes(tmp_path: Path) -> None:
    if not SQUAD.is_dir():
        pytest.skip(f"{SQUAD} is absent")
    questions = prepare_squad(SQUAD, tmp_path)
    examples = load_examples(questions, TRAIN_ARTICLES)[::4]
    first, second = (train(examples, TRAIN_ARTICLES).to_json() for _ in range(2))
    assert first == second
    assert '"command": "forumqa train-short-answer"' in first
