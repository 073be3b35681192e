"""The grounding check: planted fabrications in answers about the report are caught, faithful sentences
kept, markers validated, garbage handled, Korean and Russian sentences checked, and the model reproducible.

The planted set is generated here from the report by the training script's own generators (seeded, not
hand-picked); the shipped model was fitted on SQuAD articles only, so the report is held out.
"""

from __future__ import annotations

import hashlib
import statistics
from pathlib import Path

import numpy as np
import pytest

from rag.generate.grounding import (
    FEATURES,
    MODEL_PATH,
    MODEL_SHA256,
    AnswerSentence,
    Grounding,
    Scorer,
    Unmarked,
    check,
    load_model,
    split_answer,
    support,
)
from rag.index.embedders import ModelIntegrityError, get_embedder
from rag.text import numbers
from rag.train.grounding import (
    FABRICATED_KINDS,
    SUPPORTED_KINDS,
    Article,
    Example,
    article_of,
    features,
    generate,
    report_article,
    train,
    widened,
)
from rag.types import Citation

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "eval" / "squad-sample" / "corpus" / "the-legend-of-zelda-twilight-princess.txt"

P1 = (
    "The Korea Foundation cosponsored the Third Korea-Russia Forum on September 27-28 with the Diplomatic "
    "Academy of Russia to explore ways of strengthening relations between the two countries. Attending the "
    "two-day event in Moscow were about 70 prominent individuals from both countries. Twenty members of the "
    "Korean delegation, headed by Korea Foundation president Lee In-ho, included deputy minister of Foreign "
    "Affairs and Trade Yim Sung-joon and National Assemblymen Cho Woong-kyu and Hyun Syng-il."
)
P2 = (
    "The Russian side expressed its belief that the Russian economy had finally pulled itself out of its "
    "transitional crisis after three years of successful economic management, but acknowledged that it still "
    "depends heavily on natural resources, such as crude oil, for its economic health."
)
P3 = (
    "Regarding North Korean leader Kim Jong-il's visit to Russia in August, the Russian participants "
    "explained that Russia and North Korea signed a number of treaties. During the North Korea-Russia "
    "summit, they said that Moscow simply expressed understanding for Pyeongyang's call for the withdrawal "
    "of U.S. forces from South Korea, and emphasized that Russia did not echo North Korea's stand on the "
    "matter."
)
PASSAGES = [P1, P2, P3]


# One scorer for the module, on the process's embedders, as ForumQA hands its own to the check.
SCORER = Scorer(get_embedder)


def _check(answer: str, passages: list[str] | list[Citation], unmarked: Unmarked = "all") -> Grounding:
    return check(answer, passages, SCORER, unmarked=unmarked)


@pytest.fixture(scope="module")
def report() -> Article:
    return report_article()


@pytest.fixture(scope="module")
def planted(report: Article) -> list[tuple[Example, bool]]:
    """Every example the generators make from the report, with whether the shipped model keeps it."""
    other = article_of("zelda", SAMPLE.read_text(encoding="utf-8").split("\n", 1)[1])
    # Three seeds: one draw of the report holds about 90 fabrications, too few for a stable rate.
    examples = [e for seed in (0, 1, 2) for e in generate(report, [report, other], seed=seed)]
    model = load_model()
    supports = features(examples, {"report": report, "zelda": other}, SCORER)
    return [(e, model.score(s) >= model.threshold) for e, s in zip(examples, supports, strict=True)]


# ------------------------------------------------------------------------------------ splitting


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Lee In-ho headed the delegation [2].", [("Lee In-ho headed the delegation.", (2,))]),
        (
            "It was held in Moscow [1][3]. About 70 attended [1, 2].",
            [("It was held in Moscow.", (1, 3)), ("About 70 attended.", (1, 2))],
        ),
        (
            "The forum met in Moscow. [1] It lasted two days [2-3].",
            [("The forum met in Moscow.", (1,)), ("It lasted two days.", (2, 3))],
        ),
        (
            "- A.P. Losyukov attended [1]\n- U.S. forces were discussed [3]",
            [("A.P. Losyukov attended", (1,)), ("U.S. forces were discussed", (3,))],
        ),
        ("No marker here. It began in [2008].", [("No marker here.", ()), ("It began in [2008].", ())]),
        (
            "포럼은 모스크바에서 열렸다 [1]. Форум прошёл в Москве [1].",
            [("포럼은 모스크바에서 열렸다.", (1,)), ("Форум прошёл в Москве.", (1,))],
        ),
    ],
)
def test_split_answer_reads_sentences_and_their_markers(
    text: str, expected: list[tuple[str, tuple[int, ...]]]
) -> None:
    assert split_answer(text) == [AnswerSentence(t, c) for t, c in expected]


def test_numbers_are_normalised() -> None:
    assert numbers("Twenty members, 1,000 people, on September 27-28, 3.50 m") == {
        "20",
        "1000",
        "27",
        "28",
        "3.5",
    }
    assert "9" in numbers("on September 27-28", months=True)


# ------------------------------------------------------------------------------------ the model


def test_shipped_model_matches_its_pinned_sha256() -> None:
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256
    model = load_model()
    assert 0.0 < model.threshold < 1.0 and model.linear.coef.shape == (len(FEATURES),)


def test_damaged_model_is_refused_naming_the_file(tmp_path: Path) -> None:
    damaged = tmp_path / "grounding.json"
    damaged.write_bytes(MODEL_PATH.read_bytes().replace(b'"threshold"', b'"thresholt"'))
    with pytest.raises(ModelIntegrityError, match=r"grounding\.json"):
        load_model(damaged)
    with pytest.raises(ModelIntegrityError, match="cannot be read"):
        load_model(damaged, expected_sha256=None)
    with pytest.raises(ModelIntegrityError, match="not found"):
        load_model(tmp_path / "missing.json")


def test_training_twice_on_the_same_data_writes_the_same_bytes(report: Article) -> None:
    other = article_of("zelda", SAMPLE.read_text(encoding="utf-8").split("\n", 1)[1])
    articles = {"report": report, "zelda": other}
    runs = []
    for _ in range(2):
        examples = generate(other, [report, other], limit=30) + generate(report, [report, other])
        scorer = Scorer(get_embedder, cache=None)
        supports = features(examples, articles, scorer)
        wide = features(widened(examples), articles, scorer)
        runs.append(train(examples, supports, wide, 0.4, ["report", "zelda"]).to_json())
    assert runs[0] == runs[1]
    assert '"examples": ' in runs[0]


# ------------------------------------------------------------------------------------ planted fabrications


def test_planted_fabrications_in_report_answers_are_caught(planted: list[tuple[Example, bool]]) -> None:
    fabricated = [kept for e, kept in planted if not e.supported]
    assert len(fabricated) >= 200
    caught = 1 - statistics.mean(fabricated)
    assert caught >= 0.95, f"caught {caught:.1%} of {len(fabricated)} planted fabrications"
    kinds = {e.kind for e, _ in planted if not e.supported}
    assert kinds >= {"number_swap", "name_swap", "negation", "invented", "wrong_passage", "wrong_near"}
    assert kinds <= set(FABRICATED_KINDS)


def test_faithful_sentences_about_the_report_are_kept(planted: list[tuple[Example, bool]]) -> None:
    faithful = [kept for e, kept in planted if e.supported]
    assert {e.kind for e, _ in planted if e.supported} <= set(SUPPORTED_KINDS)
    kept = statistics.mean(faithful)
    assert kept >= 0.85, f"kept {kept:.1%} of {len(faithful)} faithful sentences"


def test_a_faithful_answer_is_kept_whole() -> None:
    answer = (
        "The forum took place on September 27-28 in Moscow [1]. "
        "The Korean delegation was headed by Lee In-ho [1]. "
        "Russia did not echo North Korea's stand on the withdrawal of U.S. forces [3]."
    )
    result = _check(answer, PASSAGES)
    assert result.grounded and result.whole, result.dropped
    assert [k.cited for k in result.kept] == [(1,), (1,), (3,)]
    assert result.text.count("[1]") == 2 and result.text.endswith("[3].")


def test_a_fabricated_sentence_is_struck_and_the_rest_kept() -> None:
    answer = (
        "About 70 prominent individuals attended the event in Moscow [1]. "
        "The Korean delegation was headed by Kim Dae-jung [1]. "
        "The Russian economy still depends heavily on natural resources such as crude oil [2]."
    )
    result = _check(answer, PASSAGES)
    assert [k.text for k in result.kept] == [
        "About 70 prominent individuals attended the event in Moscow.",
        "The Russian economy still depends heavily on natural resources such as crude oil.",
    ]
    assert len(result.dropped) == 1 and result.dropped[0].reason.startswith("not supported by [1]")
    assert "kim" in result.dropped[0].reason
    assert "Kim Dae-jung" not in result.text


# ------------------------------------------------------------------------------------ markers, garbage


def test_invalid_marker_is_dropped_with_its_reason() -> None:
    answer = "About 70 prominent individuals attended [1]. Russia did not echo North Korea's stand [7]."
    result = _check(answer, PASSAGES)
    assert [k.cited for k in result.kept] == [(1,)]
    assert result.dropped[0].reason == "cites [7], which was not given"
    assert result.dropped[0].score is None
    assert "[7]" not in result.text


def test_citation_objects_are_numbered_by_their_n() -> None:
    citations = [
        Citation(
            n=4,
            doc_id="d",
            title="t",
            section="s",
            start=0,
            end=len(P2),
            text=P2,
            highlight_start=0,
            highlight_end=10,
            score=1.0,
        ),
    ]
    assert _check("The Russian economy depends heavily on natural resources [4].", citations).whole
    assert _check("The Russian economy depends heavily on natural resources [1].", citations).kept == ()


def test_an_unmarked_sentence_is_checked_against_every_passage_and_cited() -> None:
    result = _check("Russia did not echo North Korea's stand on the matter.", PASSAGES)
    assert result.grounded and result.kept[0].cited == (3,)
    assert result.text == "Russia did not echo North Korea's stand on the matter [3]."
    result = _check(
        "About 70 people attended [1]. The forum agreed to build a nuclear plant in Vladivostok.", PASSAGES
    )
    assert [k.cited for k in result.kept] == [(1,)]
    assert result.dropped[0].reason.startswith("not supported by any passage (names vladivostok")


def test_other_policies_for_unmarked_sentences() -> None:
    answer = "Lee In-ho headed the Korean delegation. About 70 people attended the event in Moscow [1]."
    result = _check(answer, PASSAGES, unmarked="neighbour")
    assert result.whole and [k.cited for k in result.kept] == [(1,), (1,)]
    assert result.text.startswith("Lee In-ho headed the Korean delegation [1].")
    answer = "About 70 people attended [1]. Russia's economy depends heavily on natural resources."
    result = _check(answer, PASSAGES, unmarked="neighbour")
    assert result.dropped[0].reason.startswith("not supported by [1] (its neighbour's citation)")
    alone = _check("Russia did not echo North Korea's stand on the matter.", PASSAGES, unmarked="neighbour")
    assert not alone.grounded and alone.dropped[0].reason == "no citation"
    dropped = _check(
        "Russia did not echo North Korea's stand [3]. It was firm.", PASSAGES, unmarked="drop"
    ).dropped
    assert dropped[0].reason == "no citation"


@pytest.mark.parametrize(
    "garbage",
    ["", "   \n ", "[1][2]", "asdf qwer zxcv [1].", "!!!! ???? ....", "<think></think>", "[99] [100]"],
)
def test_garbage_is_not_grounded_and_keeps_nothing(garbage: str) -> None:
    result = _check(garbage, PASSAGES)
    assert isinstance(result, Grounding)
    assert not result.grounded and result.kept == () and result.text == ""
    assert result.to_dict()["grounded"] is False


def test_no_passages_keeps_nothing() -> None:
    result = _check("About 70 prominent individuals attended [1].", [])
    assert not result.grounded and result.dropped[0].reason == "cites [1], which was not given"


# ------------------------------------------------------------------------------------ Korean, Russian


@pytest.mark.parametrize(
    ("sentence", "supported"),
    [
        ("모스크바에서 열린 이틀간의 행사에는 양국의 저명인사 약 70명이 참석했다 [1].", True),
        ("행사에는 양국의 저명인사 약 150명이 참석했다 [1].", False),
        ("러시아는 북한의 입장에 동조하지 않았다 [3].", True),
        ("Россия не поддержала позицию Северной Кореи по этому вопросу [3].", True),
        ("В мероприятии приняли участие около 250 видных деятелей [1].", False),
        ("Стороны договорились совместно провести чемпионат мира по футболу [2].", False),
    ],
)
def test_korean_and_russian_sentences_are_checked(sentence: str, supported: bool) -> None:
    result = _check(sentence, PASSAGES)
    assert result.grounded is supported, result


def test_support_scores_order_faithful_above_fabricated() -> None:
    faithful = support("Lee In-ho headed the Korean delegation.", P1, SCORER)
    swapped = support("Lee In-ho headed the Korean delegation of 45 members.", P1, SCORER)
    other = support("Lee In-ho headed the Korean delegation.", [P2, P3], SCORER)
    threshold = load_model().threshold
    assert faithful >= threshold > max(swapped, other)
    assert np.isfinite([faithful, swapped, other]).all()
