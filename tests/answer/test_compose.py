"""rag/answer/compose.py on its own: question_parts, and compose over a real index of a small report built
here, with the reader's choices set by each test (a Reading naming the sentences it ranks first), so each
rule of the composed answer is checked where it applies."""

from __future__ import annotations

import re

import pytest

from rag.answer.compose import compose, question_parts
from rag.answer.reader import Reading
from rag.answer.retrieval import Hit
from rag.config import Settings
from rag.index.build import SearchIndex, build_index
from rag.index.publish import load_build as load_index
from rag.types import Citation

# Two sections; two sentences open by pointing back ("It ...", and "They ..." first in its section).
REPORT = (
    "Skip to main menu\n\n"
    "Fourth Harbour Forum\n\n"
    "The Korea Foundation organised the Fourth Harbour Forum in Vladivostok. It brought together forty "
    "delegates from six countries. The Russian delegation was led by Ivan Petrov, a port economist. Talks "
    "focused on shipping routes through the Arctic.\n\n"
    "Outcomes\n"
    "They also signed a memorandum on container logistics. The participants agreed to meet again in Busan "
    "next spring. Funding for the next forum will come from both foundations.\n"
)
QUESTION = "What happened at the forum?"
SECOND_RATIO = 0.5  # the runner-up is quoted when at least half as likely as the best sentence
MARKER = re.compile(r" ?\[(\d+)\]")


@pytest.fixture(scope="module")
def index(tmp_path_factory: pytest.TempPathFactory) -> SearchIndex:
    root = tmp_path_factory.mktemp("compose")
    (root / "corpus").mkdir()
    (root / "corpus" / "harbour-forum.txt").write_text(REPORT, encoding="utf-8")
    settings = Settings(corpus_dir=root / "corpus", index_dir=root / "index", embedders=["minilm"])
    build_index(settings, progress=False)
    return load_index(settings.index_dir)


def sid(index: SearchIndex, opening: str) -> int:
    """The id of the sentence that starts with ``opening``."""
    (found,) = [i for i, s in enumerate(index.sentences) if s.text.startswith(opening)]
    return found


def reading(*sentence_ids: int, probabilities: list[float] | None = None) -> Reading:
    """The reader's view with ``sentence_ids`` best first (likelier by default each than the next)."""
    probabilities = probabilities or [0.9 * 0.1**i for i in range(len(sentence_ids))]
    scores = [10.0 - i for i in range(len(sentence_ids))]
    return Reading(
        list(sentence_ids), scores, probabilities, confidence=0.9, top_dense=1.0, coverage=1.0,
        question_idf={},
    )


def hits(index: SearchIndex) -> list[Hit]:
    """Every chunk, retrieved in document order."""
    return [Hit(c, 1.0 / (1 + c), 0.0, 0.0) for c in range(len(index.chunks))]


def quoted(text: str) -> list[tuple[str, int]]:
    """The runs of ``text`` before each [n] marker, with n."""
    pieces = MARKER.split(text)
    assert pieces[-1].strip() == "", "the answer ends with a marker"
    return [(pieces[i].strip(), int(pieces[i + 1])) for i in range(0, len(pieces) - 1, 2)]


def check_answer(index: SearchIndex, text: str, citations: list[Citation], top_k: int) -> None:
    """What holds of every composed answer: each run is the report's own text, exactly what its
    citation highlights, runs in document order, one citation per sentence, at most top_k."""
    assert [c.n for c in citations] == list(range(1, len(citations) + 1)) and len(citations) <= top_k
    document = index.documents[citations[0].doc_id].text if citations else ""
    starts = []
    for run, n in quoted(text):
        c = citations[n - 1]
        assert " ".join(document[c.highlight_start : c.highlight_end].split()) == " ".join(run.split())
        starts.append(c.highlight_start)
    assert starts == sorted(starts), "runs follow the order of the report"
    highlighted = [
        i for c in citations for i, s in enumerate(index.sentences)
        if c.highlight_start <= s.start < c.highlight_end
    ]
    assert len(highlighted) == len(set(highlighted)), "no sentence is highlighted twice"
    for c in citations:
        assert c.start <= c.highlight_start < c.highlight_end <= c.end
        assert index.documents[c.doc_id].text[c.start : c.end] == c.text


# ----------------------------------------------------------------------------------- question_parts


@pytest.mark.parametrize(
    ("question", "parts"),
    [
        ("Where was it held and who attended?", ["Where was it held?", "who attended?"]),
        ("When did it start, and what did they sign?", ["When did it start?", "what did they sign?"]),
        ("Who led it? How many came?", ["Who led it?", "How many came?"]),
        ("What did they discuss; when will they meet again?",
         ["What did they discuss?", "when will they meet again?"]),
    ],
)
def test_a_two_part_question_is_split(question: str, parts: list[str]) -> None:
    assert question_parts(question) == parts


@pytest.mark.parametrize(
    "question",
    ["Who led the Russian delegation?", "Trade and investment?", "Who and why?",
     "Which ports and shipping routes were discussed?", "What is it? Why?",
     "Who led the delegation? Please answer briefly.", "When did it start? Cite the report.",
     "Quick question: who opened the forum? I am curious."],
)
def test_a_one_part_question_stays_whole(question: str) -> None:
    # No wh-word after "and", a side of fewer than two words, or no question after the question mark (a
    # polite or instructing sentence): splitting would lose the question, or read a request as one.
    assert question_parts(question) == [question]


# ------------------------------------------------------------------------------------------ compose


def test_no_candidate_no_answer(index: SearchIndex) -> None:
    assert compose(index, hits(index), [(QUESTION, reading())], 5, SECOND_RATIO) == ("", [])


def test_the_best_sentence_is_quoted_verbatim_and_cited(index: SearchIndex) -> None:
    best = sid(index, "The Russian delegation")
    text, citations = compose(index, hits(index), [(QUESTION, reading(best))], 5, SECOND_RATIO)
    assert quoted(text) == [(index.sentences[best].text, 1)]
    first = citations[0]
    sentence = index.sentences[best]
    assert (first.highlight_start, first.highlight_end) == (sentence.start, sentence.end)
    assert first.score == 10.0 and first.short_answer is None
    check_answer(index, text, citations, 5)


def test_a_sentence_pointing_back_brings_the_one_before(index: SearchIndex) -> None:
    leaning = sid(index, "It brought together")
    before = sid(index, "The Korea Foundation organised")
    text, citations = compose(index, hits(index), [(QUESTION, reading(leaning))], 5, SECOND_RATIO)
    expected = f"{index.sentences[before].text} {index.sentences[leaning].text}"
    assert [run for run, _ in quoted(text)] == [expected]
    assert citations[0].highlight_start == index.sentences[before].start
    assert citations[0].highlight_end == index.sentences[leaning].end
    check_answer(index, text, citations, 5)


def test_a_sentence_pointing_back_never_leans_across_a_section(index: SearchIndex) -> None:
    opening = sid(index, "They also signed")  # the first sentence of "Outcomes"
    assert index.sentences[opening - 1].section != index.sentences[opening].section
    text, citations = compose(index, hits(index), [(QUESTION, reading(opening))], 5, SECOND_RATIO)
    assert [run for run, _ in quoted(text)] == [index.sentences[opening].text]
    assert citations[0].highlight_start == index.sentences[opening].start
    check_answer(index, text, citations, 5)


def test_two_quoted_sentences_follow_the_report_not_the_ranking(index: SearchIndex) -> None:
    later, earlier = sid(index, "Funding for"), sid(index, "The Russian delegation")
    choice = reading(later, earlier, probabilities=[0.5, 0.45])  # the runner-up nearly as likely
    text, citations = compose(index, hits(index), [(QUESTION, choice)], 5, SECOND_RATIO)
    runs = quoted(text)
    assert [run for run, _ in runs] == [index.sentences[earlier].text, index.sentences[later].text]
    assert [n for _, n in runs] == [2, 1]  # numbered by the reader's ranking, placed in reading order
    check_answer(index, text, citations, 5)


def test_an_unlikely_runner_up_is_not_quoted(index: SearchIndex) -> None:
    best, runner_up = sid(index, "Funding for"), sid(index, "The Russian delegation")
    choice = reading(best, runner_up, probabilities=[0.9, 0.05])
    text, citations = compose(index, hits(index), [(QUESTION, choice)], 5, SECOND_RATIO)
    assert [run for run, _ in quoted(text)] == [index.sentences[best].text]
    check_answer(index, text, citations, 5)


def test_each_part_of_a_two_part_question_gets_its_sentence(index: SearchIndex) -> None:
    first, second = sid(index, "The Russian delegation"), sid(index, "Talks focused")
    readings = [("Who led it and what was discussed?", reading(first)),
                ("what was discussed?", reading(second))]
    text, citations = compose(index, hits(index), readings, 5, SECOND_RATIO)
    expected = [index.sentences[first].text, index.sentences[second].text]
    assert [run for run, _ in quoted(text)] == expected
    check_answer(index, text, citations, 5)


def test_the_other_passages_follow_in_retrieval_order_one_per_sentence(index: SearchIndex) -> None:
    everything = list(range(len(index.sentences)))
    retrieved = hits(index)[::-1]  # the last chunk ranked first
    text, citations = compose(index, retrieved, [(QUESTION, reading(*everything))], 20, SECOND_RATIO)
    check_answer(index, text, citations, 20)
    rank = {h.chunk_id: r for r, h in enumerate(retrieved)}
    chunk_of = {(c.start, c.end): i for i, c in enumerate(index.chunks)}
    others = [rank[chunk_of[(c.start, c.end)]] for c in citations[1:]]
    assert others == sorted(others) and len(set(others)) == len(others)


@pytest.mark.parametrize("top_k", [1, 2, 3])
def test_top_k_bounds_the_citations_and_every_marker_has_one(index: SearchIndex, top_k: int) -> None:
    everything = list(range(len(index.sentences)))
    first, second = sid(index, "Funding for"), sid(index, "Talks focused")
    likely = [0.5, 0.45] + [0.01] * len(everything)  # the best and the runner-up are quoted
    readings = [(QUESTION, reading(first, *everything, probabilities=likely)),
                ("what was discussed?", reading(second))]
    text, citations = compose(index, hits(index), readings, top_k, SECOND_RATIO)
    assert len(citations) == top_k
    assert {n for _, n in quoted(text)} <= {c.n for c in citations}
    check_answer(index, text, citations, top_k)
