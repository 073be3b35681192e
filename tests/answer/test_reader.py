"""The learned reader: its shipped file is what it claims, it answers as a reader would, it holds a floor
on a held-out SQuAD article, and training it twice on the same data writes the same bytes.

Expectations come from the report's text and the SQuAD sample's crowd answers, never from the code.
"""

from __future__ import annotations

import hashlib
import shutil
import time
from pathlib import Path

import pytest
from core_support import REPORT_TXT, fold
from fastapi.testclient import TestClient

from api.main import create_app
from rag.answer import reader as reader_module
from rag.answer.compose import question_parts
from rag.answer.reader import GATE_FEATURES, MODEL_PATH, MODEL_SHA256, SENTENCE_FEATURES, load_reader
from rag.config import Settings
from rag.evaluation import evaluate, load_questions, metrics
from rag.index.embedders import ModelIntegrityError
from rag.qa import ForumQA
from rag.train.reader import collect, train

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "eval" / "squad-sample"
REPORT = REPORT_TXT.read_text(encoding="utf-8")


def flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


# ------------------------------------------------------------------------------------ the shipped file


def test_shipped_reader_matches_its_pinned_sha256() -> None:
    assert hashlib.sha256(MODEL_PATH.read_bytes()).hexdigest() == MODEL_SHA256
    model = load_reader()
    assert model.ranker.features == SENTENCE_FEATURES
    assert model.gate.features == GATE_FEATURES
    assert 0 < model.second_ratio <= 1.01


def test_damaged_reader_is_refused_naming_the_file(tmp_path: Path) -> None:
    copy = tmp_path / "reader.json"
    shutil.copyfile(MODEL_PATH, copy)
    load_reader(copy)  # the intact copy loads
    flip_one_byte(copy)
    with pytest.raises(ModelIntegrityError) as info:
        load_reader(copy)
    assert str(copy) in str(info.value)
    assert MODEL_SHA256 in str(info.value)


def test_missing_reader_is_refused_naming_the_file(tmp_path: Path) -> None:
    with pytest.raises(ModelIntegrityError, match=str(tmp_path / "gone.json")):
        load_reader(tmp_path / "gone.json")


def test_reader_for_other_features_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "reader.json"
    other.write_text(MODEL_PATH.read_text(encoding="utf-8").replace('"bm25_log"', '"bm25_other"'))
    with pytest.raises(ModelIntegrityError, match="cannot be read"):
        load_reader(other, expected_sha256=None)


def test_server_with_a_damaged_reader_is_not_ready(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    damaged = tmp_path / "reader.json"
    shutil.copyfile(MODEL_PATH, damaged)
    flip_one_byte(damaged)
    monkeypatch.setattr(reader_module, "MODEL_PATH", damaged)
    with pytest.raises(ModelIntegrityError, match=str(damaged)):
        ForumQA.open(settings, progress=False)
    with TestClient(create_app(settings)) as client:
        for _ in range(600):
            body = client.get("/readyz").json()
            if body.get("status") != "loading":
                break
            time.sleep(0.1)
        assert body.get("status") == "failed", body
        assert str(damaged) in str(body.get("detail"))
        answer = client.post("/api/answer", json={"question": "Where was the forum held?"})
        assert answer.status_code == 503


# ------------------------------------------------------------------------------------ answers


def _quoted(answer_text: str, phrase: str) -> bool:
    return fold(phrase) in fold(answer_text)


# Known misses, kept as strict expected failures so that whoever fixes them sees it (issue 24): the answer
# quotes the right sentences (the run-on to the sentence that completes the topic brings "Moscow"), but
# the gate, fitted mostly on SQuAD's crowd questions, which repeat the answer sentence's words, is not
# sure enough of a paraphrased question ("take place", "held") to call it answered.
GATE_MISS = pytest.mark.xfail(
    strict=True, reason="the right sentences are quoted, but the gate says uncertain (issue 24, open)"
)


@pytest.mark.parametrize(
    ("question", "evidence"),
    [
        # Declined by the SQuAD-trained gate before e5 entered the reader (issue 9): now answered.
        ("What position does Anatoly Torkunov hold?", "rector of the Moscow State Institute"),
        pytest.param("When did the forum take place?", "September 27-28", marks=GATE_MISS),
        pytest.param("Where was the forum held?", "event in Moscow", marks=GATE_MISS),
        pytest.param(
            "Which city hosts an industrial complex with Korean factories?", "Nakhodka", marks=GATE_MISS
        ),
        ("Who headed the Korean delegation?", "Lee In-ho"),
    ],
)
def test_report_questions_are_answered_with_the_sentence_that_answers(
    qa: ForumQA, question: str, evidence: str
) -> None:
    assert evidence in REPORT
    answer = qa.answer(question)
    assert answer.verdict == "answered", answer
    assert _quoted(answer.answer, evidence), answer.answer
    first = answer.citations[0]
    assert evidence in REPORT[first.start : first.end] or evidence in answer.answer


@pytest.mark.xfail(strict=True, reason="another sentence ranks first for the Korean one (issue 24, open)")
def test_korean_where_question_is_answered(qa: ForumQA) -> None:
    answer = qa.answer("포럼은 어디에서 열렸습니까?")
    assert answer.verdict == "answered", answer
    assert "Moscow" in answer.answer


def test_overview_question_gets_the_reports_lead(qa: ForumQA) -> None:
    """"What is this report about?" is answered with the report's opening, cited (issue 15)."""
    answer = qa.answer("What is this report about?")
    assert (answer.verdict, answer.kind) == ("answered", "overview")
    lead = REPORT[REPORT.index("The Korea Foundation cosponsored") :].split(" Twenty members")[0]
    assert answer.answer.startswith(lead.split(". ")[0])
    c = answer.citations[0]
    text = qa.index.documents[c.doc_id].text
    assert text[c.highlight_start : c.highlight_end] in answer.answer
    assert c.highlight_start == text.index("The Korea Foundation cosponsored")


def test_a_question_the_report_leaves_open_is_not_answered(qa: ForumQA) -> None:
    """Nothing in the report says whether a fourth forum will be held: never "answered" (issue 15)."""
    answer = qa.answer("Will there be a fourth forum?")
    assert answer.kind == "yes_no"
    assert answer.verdict in ("uncertain", "not_covered"), answer
    if answer.verdict == "uncertain":
        assert answer.answer.startswith("This may not answer the question exactly")


def test_off_topic_questions_are_not_covered(qa: ForumQA) -> None:
    for question in ("What is the population of Vladivostok?", "Which football team won the forum's match?"):
        answer = qa.answer(question)
        assert answer.verdict == "not_covered" and not answer.answerable, (question, answer.confidence)


def test_both_halves_of_a_two_part_question_are_answered(qa: ForumQA) -> None:
    answer = qa.answer("When did the forum take place and who headed the Korean delegation?")
    assert answer.answerable
    assert _quoted(answer.answer, "September 27-28")
    assert _quoted(answer.answer, "Lee In-ho")


def test_a_sentence_that_points_back_brings_the_one_it_leans_on(qa: ForumQA) -> None:
    leaning = "They also noted, however, that bilateral economic exchanges"
    before = "Several Russian participants noted that large business projects"
    assert REPORT.index(before) < REPORT.index(leaning)
    answer = qa.answer("Which exchanges remain below expectations?")
    assert answer.answerable
    assert _quoted(answer.answer, leaning), answer.answer
    assert _quoted(answer.answer, before), answer.answer
    first = answer.citations[0]
    highlighted = qa.document(first.doc_id).text[first.highlight_start : first.highlight_end]  # type: ignore[union-attr]
    assert before in highlighted and leaning in highlighted
    assert first.start <= first.highlight_start < first.highlight_end <= first.end


def test_short_answer_is_marked_inside_the_highlight(qa: ForumQA) -> None:
    answer = qa.answer("When did the Third Korea-Russia Forum take place?")
    first = answer.citations[0]
    assert first.short_answer is not None
    start, end, text = first.short_answer
    document = qa.document(first.doc_id).text  # type: ignore[union-attr]
    assert document[start:end] == text
    assert first.highlight_start <= start < end <= first.highlight_end
    assert "September 27-28" in text or text in "on September 27-28"
    assert answer.to_dict()["citations"][0]["short_answer"] == {"start": start, "end": end, "text": text}


def test_korean_and_russian_questions_get_short_answers_for_dates_and_numbers_only(qa: ForumQA) -> None:
    answer = qa.answer("Когда прошёл Третий корейско-российский форум?")
    first = answer.citations[0]
    assert first.short_answer is not None, answer.answer
    assert "September 27-28" in first.short_answer[2]
    # Who: none of the question's words are in the English sentence, and names picked by the sentence
    # alone are too often the wrong ones (rag/answer/compose.py, FOREIGN_SHORT_ANSWER_TYPES).
    answer = qa.answer("한국 대표단은 누가 이끌었습니까?")
    assert answer.citations and all(c.short_answer is None for c in answer.citations)


def test_declined_answers_carry_no_short_answer(qa: ForumQA) -> None:
    answer = qa.answer("When did the forum sign a treaty on fisheries quotas with Norway in 1990?")
    assert not answer.answerable
    assert all(c.short_answer is None for c in answer.citations)


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("Where was it held and who attended?", ["Where was it held?", "who attended?"]),
        ("When did it start, and how many came?", ["When did it start?", "how many came?"]),
        ("Who was there? What did they say?", ["Who was there?", "What did they say?"]),
        ("What did Russia and Korea agree?", ["What did Russia and Korea agree?"]),
        ("Who and why?", ["Who and why?"]),
    ],
)
def test_question_parts(question: str, parts: list[str]) -> None:
    assert question_parts(question) == parts


# ------------------------------------------------------------------------------------ held-out floor


@pytest.fixture(scope="module")
def sample_qa(tmp_path_factory: pytest.TempPathFactory) -> ForumQA:
    """The SQuAD sample article (held out from the reader's training) in an index of its own."""
    index_dir = tmp_path_factory.mktemp("squad-sample-index")
    settings = Settings(corpus_dir=SAMPLE / "corpus", index_dir=index_dir, embedders=["minilm"])
    return ForumQA.open(settings, progress=False)


def test_held_out_article_floor(sample_qa: ForumQA, artifacts: Path) -> None:
    """A guard well under what was measured on this held-out article (see the README's Quality)."""
    results = evaluate(sample_qa, load_questions(SAMPLE / "questions.jsonl"))
    m = metrics(results)
    (artifacts / "reader-held-out-sample.txt").write_text(repr(m) + "\n", encoding="utf-8")
    # Measured (make eval-squad): hit@1 0.687, answer 0.701, kept 0.963, AUROC 0.713.
    assert m["hit@1"] >= 0.60
    assert m["answer_acc"] >= 0.60
    assert m["kept"] >= 0.90
    assert m["auroc"] >= 0.62


# ------------------------------------------------------------------------------------ training


def test_training_twice_with_other_thread_counts_writes_the_same_bytes(tmp_path: Path) -> None:
    """Issue 24 point 8: two runs that share nothing (their own indexes, their own cached question
    vectors) and encode with one thread and with two write the same bytes: float noise in the vectors
    must not move the candidates (the retriever ranks rounded scores, ties by id) nor the fit."""
    items = load_questions(SAMPLE / "questions.jsonl")[::6]  # answerable and not, about 60 questions
    assert any(i.answerable for i in items) and any(not i.answerable for i in items)
    runs = []
    for threads in (1, 2):
        settings = Settings(
            index_dir=tmp_path / f"threads-{threads}" / "indexes", embedders=["minilm"], threads=threads
        )
        data = collect(settings, items, SAMPLE / "corpus", progress=False)
        runs.append(train(data, ["the-legend-of-zelda-twilight-princess"]).to_json())
    assert runs[0] == runs[1]
    model = reader_module.ReaderModel.from_json(runs[0])
    assert model.metadata["questions"] == len(items)


# ------------------------------------------------------------------------------------ plain questions


@pytest.fixture(scope="module")
def plain_qa(tmp_path_factory: pytest.TempPathFactory) -> ForumQA:
    """The held-out SQuAD sample article with the models English questions use (MiniLM and e5)."""
    index_dir = tmp_path_factory.mktemp("plain-sample-index")
    settings = Settings(corpus_dir=SAMPLE / "corpus", index_dir=index_dir, embedders=["minilm", "e5"])
    return ForumQA.open(settings, progress=False)


def test_held_out_plain_questions_floor(plain_qa: ForumQA, artifacts: Path) -> None:
    """Plain questions (eval/plain) about an article the reader was not fitted on: a guard well under
    what was measured (make eval-plain, this article: hit@1 0.727, answer 0.682, 3 of 5 unanswerable
    questions not answered)."""
    article = "the-legend-of-zelda-twilight-princess"
    items = [i for i in load_questions(ROOT / "eval" / "plain" / "questions.jsonl") if i.article == article]
    results = evaluate(plain_qa, items)
    m = metrics(results)
    (artifacts / "reader-plain-held-out.txt").write_text(repr(m) + "\n", encoding="utf-8")
    assert m["hit@1"] >= 0.55
    assert m["answer_acc"] >= 0.55
    unanswered = [r for r in results if not r.item.answerable and r.answer.verdict != "answered"]
    assert len(unanswered) >= 2
    overviews = [r for r in results if r.answer.kind == "overview"]
    assert overviews and all(r.answer_has_evidence for r in overviews)
