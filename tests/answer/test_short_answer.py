"""Short answers inside an answer sentence: offsets, never echoing the question, behaviour, accuracy.

The behavioural cases are made-up general English sentences, not taken from any evaluation set: each
checks the best-ranked candidate and, where the question's type is shown at all, that the short answer
returned is that candidate. The accuracy guard runs the module on the five held-out SQuAD articles of
../shared/eval/squad (never used to fit it) and fails if precision at the trained thresholds drops well
below what was measured.
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

from rag.answer.short_answer import (
    MODEL_PATH,
    MODEL_SHA256,
    AnswerType,
    ShortAnswerFinder,
    candidates,
    load_model,
    shipped_model,
    short_answer,
)
from rag.index.embedders import ModelIntegrityError
from rag.train.reader import TRAIN_ARTICLES, prepare_squad
from rag.train.short_answer import HELD_OUT_SPLIT, REPORTS, load_examples, load_report_examples, train

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
# Held-out precision measured when the module was fitted (348 of 1,309 questions answered, 0.848
# right, at thresholds trained per answer type for 0.85 on the fitting data); the guard allows 0.1 of
# slack for harmless changes.
MEASURED_HELD_OUT_PRECISION = 0.848

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

# Approximate quantities, amounts in many currencies, "who led / headed / chaired", dates and times as
# reports write them, and question words met in another form ("attended" / "Attending").
REPORT_CASES = [
    (
        "How many people attended the meeting?",
        "About 70 people attended the meeting, most of them from local firms.",
        "About 70 people",
    ),
    (
        "How many delegates came to the forum?",
        "Some 30 delegates came to the forum from four countries.",
        "Some 30 delegates",
    ),
    (
        "What share of the members voted against the plan?",
        "Nearly a third of the members voted against the plan.",
        "Nearly a third",
    ),
    (
        "What is the budget of the new terminal?",
        "The port authority plans a new terminal. Its budget is 12 billion roubles over five years.",
        "12 billion roubles",
    ),
    (
        "How much did the library spend on new books?",
        "The library spent €6,000 on new books last year.",
        "€6,000",
    ),
    (
        "How much has the project spent so far?",
        "By the end of June, 3.9 million euros had been spent on the project.",
        "3.9 million euros",
    ),
    (
        "How much is the prize worth?",
        "The prize is worth 25,000 Norwegian kroner and a trip to Oslo.",
        "25,000 Norwegian kroner",
    ),
    (
        "What price will farmers get for their tea?",
        "The board set a price of KSh 45 per kg for green leaf.",
        "KSh 45 per kg",
    ),
    (
        "How many engineers attended the workshop?",
        "Attending the workshop were 45 engineers from the three regional utilities.",
        "45 engineers",
    ),
    ("How many members were present?", "Nine of the eleven members were present.", "Nine of the eleven"),
    (
        "Who led the regional delegation?",
        "Anna Petrova, rector of the Northern Trade Academy, who led the regional delegation, opened the "
        "session.",
        "Anna Petrova",
    ),
    (
        "Who headed the inspection team?",
        "The inspection team was headed by Dr. Maria Kovacs, a hydrologist from Szeged.",
        "Dr. Maria Kovacs",
    ),
    (
        "Who chaired the port meeting?",
        "The port meeting took place on 14 March in Vladivostok. It was chaired by Igor Sokolov, the deputy "
        "governor.",
        "Igor Sokolov",
    ),
    (
        "Who led the trade mission?",
        "It numbered 20 people and was headed by Elena Marin, a deputy minister of the economy.",
        "Elena Marin",
    ),
    (
        "Who paid for the workshop?",
        "The workshop was funded by the Riverside Heritage Trust and hosted by the city museum.",
        "Riverside Heritage Trust",
    ),
    (
        "How many people attended the seminar?",
        "Twenty-six participants took part, from nine firms in the region.",
        "Twenty-six participants",
    ),
    (
        "When will the survey finish?",
        "The contractor now expects to finish the survey in December.",
        "December",
    ),
    (
        "When did the council meeting close?",
        "There being no further business, the meeting closed at 9.40pm.",
        "9.40pm",
    ),
    (
        "When is the next board meeting?",
        "The next board meeting will be held on Thursday 12 June 2025.",
        "Thursday 12 June 2025",
    ),
]


def _fold(text: str) -> str:
    return " ".join(text.casefold().split())


def _right(span: str, answers: list[str]) -> bool:
    """The evaluation's rule: the span contains a gold answer, or lies inside one covering half of it."""
    s = _fold(span)
    return any(g and (g in s or (s in g and 2 * len(s) >= len(g))) for g in map(_fold, answers))


def _best(question: str, sentence: str) -> str | None:
    """The best-ranked candidate, whatever its confidence."""
    _, scored = ShortAnswerFinder(shipped_model()).scored(question, sentence)
    return sentence[scored[0].candidate.start : scored[0].candidate.end] if scored else None


@pytest.mark.parametrize(("question", "sentence", "expected"), CASES + REPORT_CASES)
def test_behaviour_on_general_sentences(question: str, sentence: str, expected: str) -> None:
    assert _best(question, sentence) == expected
    answer = short_answer(question, sentence)
    if answer is not None:
        assert answer.text == expected
        assert sentence[answer.start : answer.end] == answer.text
        assert 0.0 <= answer.confidence <= 1.0


@pytest.mark.parametrize(
    ("question", "sentence", "expected"),
    # (the seminar's "participants" for "people" is ranked first, but less surely: left to the ranking test)
    [
        case
        for case in CASES + REPORT_CASES
        if case[0].split()[0] in {"When", "How"} and "seminar" not in case[0]
    ],
)
def test_dates_and_quantities_are_shown(question: str, sentence: str, expected: str) -> None:
    answer = short_answer(question, sentence)
    assert answer is not None and answer.text == expected


def test_the_person_a_relative_clause_describes_not_the_organisation_in_the_apposition() -> None:
    answer = short_answer(
        "Who led the Russian delegation?",
        "Yuri Fokin, director of the Diplomatic Academy of Russia, who led the Russian delegation, "
        "spoke first.",
    )
    assert answer is not None and answer.text == "Yuri Fokin"


def test_names_in_a_list_are_a_candidate_together_and_one_by_one() -> None:
    sentence = "The next forum will take place in Akureyri, Iceland, in September 2026."
    _, found = candidates("Where will the next forum take place?", sentence)
    spans = {sentence[c.start : c.end] for c, _ in found}
    assert {"Akureyri", "Iceland", "Akureyri, Iceland"} <= spans


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
    assert returned / len(rows) > 0.18  # coverage was 0.27 when measured
    assert right / returned >= MEASURED_HELD_OUT_PRECISION - 0.1


def test_report_like_documents_held_out() -> None:
    """The who/when/where/how-many/how-much/which questions of eval/reports' held-out documents, each
    with its answering sentence: shown 0.74 and right 0.98 when measured (42 of 57)."""
    examples = load_report_examples(REPORTS, HELD_OUT_SPLIT)
    assert len(examples) == 57
    found = [(short_answer(e.question, e.sentence), e.answers) for e in examples]
    shown = [_right(a.text, list(answers)) for a, answers in found if a is not None]
    assert len(shown) / len(examples) >= 0.6
    assert sum(shown) / len(shown) >= 0.9


# ------------------------------------------------------------------------------------ the shipped model


def test_shipped_model_matches_its_pinned_sha256() -> None:
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256
    model = load_model()
    assert set(model.rank) == set(AnswerType) == set(model.thresholds)
    assert all(0.0 < t <= 1.0 for t in model.thresholds.values())


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
