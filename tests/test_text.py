"""The shared text analysis (rag/text.py) and the one linear model class (rag/linear.py): each rule
checked here once, since the index, the reader, the short-answer finder and the grounding check all
read text through them."""

from __future__ import annotations

import numpy as np
import pytest

from rag.answer.question import AnswerType, QuestionTypes, answer_type, fold, question_form, tokens
from rag.linear import LinearModel, feature_vector
from rag.text import (
    FUNCTION_WORDS,
    STOPWORDS,
    SentenceMarks,
    fold_name,
    is_latin,
    names,
    negated,
    numbers,
    script_of,
    strip_accents,
    terms,
    words,
)

# ------------------------------------------------------------------------------------ words and terms


def test_words_and_terms() -> None:
    assert words("Kim Jong-il's visit, 2008-09") == ["kim", "jong-il's", "visit", "2008-09"]
    # Stop words dropped, possessives cut, hyphenated words kept whole and split into their parts.
    assert terms("The Korea-Russia Forum's delegates") == [
        "korea-russia",
        "korea",
        "russia",
        "forum",
        "deleg",
    ]


def test_one_stopword_source() -> None:
    assert {"the", "of", "according", "said"} <= STOPWORDS
    # The short-answer finder's function words come from the same list, with their own additions.
    assert {"the", "of", "although", "first"} <= FUNCTION_WORDS
    assert "said" not in FUNCTION_WORDS


def test_accent_folding() -> None:
    assert strip_accents("Beyoncé Frédéric") == "Beyonce Frederic"
    assert fold("Beyoncé's") == "beyonce"
    assert fold("cities") == "city"
    assert fold_name("Beyoncé's") == "beyonce"


def test_tokens_keep_offsets() -> None:
    text = "The U.S. paid $1,200.5 to O'Neill."
    for t in tokens(text):
        assert text[t.start : t.end] == t.text
    assert [t.text for t in tokens(text)][:4] == ["The", "U.S.", "paid", "$"]


# ------------------------------------------------------------------------------------ numbers and dates


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("about 1,000 people", {"1000"}),
        ("3.50 and 2,5", {"3.5", "2.5"}),
        ("twenty-one members", {"20", "1"}),
        ("60% of them", {"60"}),
        ("September 27-28", {"27", "28"}),
        ("около двадцать человек", {"20"}),
    ],
)
def test_numbers_are_normalised(text: str, expected: set[str]) -> None:
    assert numbers(text) == expected


def test_month_names_count_as_numbers_on_request() -> None:
    assert numbers("in September", months=True) == {"9"}
    assert numbers("in September") == set()


def test_sentence_marks() -> None:
    marks = SentenceMarks.of("In March 1998 the Korea Foundation paid 45 million won in Seoul because of it.")
    assert marks.dated and marks.years == ("1998",)
    assert {"1998", "45", "million"} <= set(marks.numbers)
    assert "korea" in marks.names and "in" not in marks.names  # the opening word is not a name
    assert "seoul" in marks.places and marks.cause


# ------------------------------------------------------------------------------------ names, negation, script


def test_names_skip_the_opening_word_unless_it_looks_like_one() -> None:
    assert names("Needed for the Forum, Lee In-ho spoke.") == ["forum", "lee", "in-ho"]
    assert names("Kim Dae-jung met Putin.")[:2] == ["kim", "dae-jung"]
    assert names("Путин встретился с Ким Чен Ыном.") == ["ким", "чен", "ыном"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Russia did not agree.", True),
        ("They met without an interpreter.", True),
        ("Россия не поддержала.", True),
        ("러시아는 동조하지 않았다.", True),
        ("Russia agreed.", False),
        ("The notion was new.", False),
    ],
)
def test_negation(text: str, expected: bool) -> None:
    assert negated(text) is expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Who headed the delegation?", True),
        ("When did Beyoncé release Lemonade?", True),  # accented letters are Latin
        ("포럼에 참석한 사람은 몇 명입니까?", False),
        ("Где проходил форум?", False),
        ("이인호 (Lee In-ho) 는 누구입니까?", False),  # a Korean question quoting a Latin name
        ("What does 포럼 mean in the report title?", True),  # an English one quoting a Korean word
        ("2008", False),
    ],
)
def test_one_is_latin(text: str, expected: bool) -> None:
    assert is_latin(text) is expected


def test_script_routing_counts_accented_letters_as_latin() -> None:
    assert script_of("Where was Frédéric Chopin born?") == "latin"
    assert script_of("Где родился Фокин?") == "other"
    assert script_of("Кто такой Lee In-ho?") == "mixed"


# ------------------------------------------------------------------------------------ question types


def test_question_types() -> None:
    assert QuestionTypes.of("In what year did it open?").when
    assert QuestionTypes.of("How many people attended?").how_many
    assert QuestionTypes.of("Which company built it?").who
    assert QuestionTypes.of("In which city was it held?").where
    assert QuestionTypes.of("Why did it close?").why
    assert not QuestionTypes.of("What did the Duma approve?").typed


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("When was the bridge opened?", AnswerType.DATE),
        ("In what year was it founded?", AnswerType.DATE),
        ("How many goals did Smith score?", AnswerType.NUMBER),
        ("What percentage of voters agreed?", AnswerType.NUMBER),
        ("Who headed the delegation?", AnswerType.PERSON),
        ("Which composer wrote it?", AnswerType.PERSON),
        ("Where did they meet?", AnswerType.PLACE),
        ("What album did she release?", AnswerType.ENTITY),
        ("Why did it close?", AnswerType.OTHER),
        ("포럼은 언제 열렸습니까?", AnswerType.DATE),
        ("포럼에 참석한 사람은 몇 명입니까?", AnswerType.NUMBER),
        ("한국 대표단은 누가 이끌었습니까?", AnswerType.PERSON),
        ("Когда прошёл форум?", AnswerType.DATE),
        ("Сколько человек участвовало?", AnswerType.NUMBER),
        ("Кто возглавлял делегацию?", AnswerType.PERSON),
        ("Где проходил форум?", AnswerType.PLACE),
        ("러시아 경제는 무엇에 크게 의존하고 있습니까?", AnswerType.OTHER),
    ],
)
def test_answer_types(question: str, expected: AnswerType) -> None:
    assert answer_type(question) is expected


def test_question_form_reads_head_and_preposition() -> None:
    form = question_form("In what year did the library open?")
    assert (form.type, form.head, form.prep, form.want) == (AnswerType.DATE, "year", "in", "year")
    assert {"library", "open"} <= form.keys


# ------------------------------------------------------------------------------------ the linear model


def _model() -> LinearModel:
    return LinearModel(("a", "b"), np.zeros(2), np.ones(2), np.array([1.0, -2.0]), 0.5)


def test_features_are_read_by_name_in_any_order() -> None:
    model = _model()
    assert model.score({"b": 1.0, "a": 3.0}) == pytest.approx(3.0 - 2.0 + 0.5)
    assert 0.0 < model.probability({"a": 0.0, "b": 0.0}) < 1.0


@pytest.mark.parametrize("named", [{"a": 1.0}, {"a": 1.0, "b": 2.0, "c": 3.0}, {"a": 1.0, "c": 2.0}])
def test_a_missing_or_extra_feature_fails(named: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="not the ones the model reads"):
        feature_vector(named, ("a", "b"))


@pytest.mark.parametrize(
    ("listed", "why"),
    [(["b", "a"], "another order"), (["a"], "missing"), (["a", "b", "c"], "unexpected")],
)
def test_a_file_listing_other_features_is_refused(listed: list[str], why: str) -> None:
    raw = _model().to_dict() | {"features": listed}
    with pytest.raises(ValueError, match=why):
        LinearModel.from_dict(raw, ("a", "b"))


def test_the_written_model_is_rounded_and_reads_back() -> None:
    model = LinearModel(("a",), np.array([0.123456789]), np.array([1.0]), np.array([2.0000001]), 0.1)
    raw = model.to_dict()
    assert raw["mean"] == [0.123457] and raw["coef"] == [2.0]
    assert LinearModel.from_dict(raw, ("a",)).to_dict() == raw
