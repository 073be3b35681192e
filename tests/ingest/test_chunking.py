"""Chunking: offsets always index the document text; chunks are sentence windows inside one section.

The property test writes randomly generated multi-paragraph reports to disk in the layout of the real
one (title, blank line, paragraphs; headings on lines of their own directly followed by a paragraph),
loads them with the real loader and checks every invariant against what was generated.
"""

from __future__ import annotations

import itertools
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pytest
from core_support import CORPUS, raw_report_lines
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from rag.ingest.chunking import ChunkingParams, chunk_documents, sentences_of, split_sentences
from rag.ingest.loading import load_corpus, load_document
from rag.types import Chunk, Document, Span

# rag.ingest.chunking's abbreviations, which a generated sentence must not end with.
ABBREVIATIONS = frozenset(
    re.findall(
        r"\S+",
        "mr mrs ms dr prof st jr sr vs etc e.g i.e no gen col lt sgt gov sen rep pres jan feb mar apr jun "
        "jul aug sep sept oct nov dec inc ltd co corp",
    )
)
# Lower-case words that are not abbreviations (a sentence may end in any of them).
WORDS = [
    "forum",
    "delegates",
    "russian",
    "korean",
    "economic",
    "relations",
    "agreed",
    "stressed",
    "peace",
    "cooperation",
    "between",
    "countries",
    "projects",
    "gas",
    "railway",
    "security",
    "exchanges",
    "noted",
    "summit",
    "policy",
    "engagement",
    "investment",
    "reforms",
    "technology",
    "culture",
    "students",
    "pipeline",
    "peninsula",
    "treaties",
    "border",
    "growth",
    "markets",
    "ports",
    "energy",
    "ministers",
]
CAPITALISED = ["The", "Both", "Several", "Korean", "Russian", "Many", "Delegates", "Moscow", "Seoul", "In"]
# Tokens with inner full stops that must not end a sentence.
INNER_ABBREVIATIONS = ["U.S.", "A.P. Losyukov", "Dr. Kim", "e.g.", "Mr. Lee", "U.N. officials"]
HEADING_WORDS = [
    "Economic",
    "Relations",
    "Security",
    "Prospects",
    "Cultural",
    "Exchanges",
    "Energy",
    "Trade",
    "Academic",
    "Cooperation",
    "East",
    "Asia",
    "Future",
    "Outlook",
    "and",
    "of",
    "for",
]

assert not {w.rstrip(".").lower() for w in WORDS} & ABBREVIATIONS


@st.composite
def sentences(draw: st.DrawFn) -> str:
    words = [
        draw(st.sampled_from(CAPITALISED)),
        *draw(st.lists(st.sampled_from(WORDS), min_size=3, max_size=14)),
    ]
    if draw(st.booleans()):  # an abbreviation somewhere inside, never last
        at = draw(st.integers(min_value=1, max_value=len(words) - 1))
        words.insert(at, draw(st.sampled_from(INNER_ABBREVIATIONS)))
    return " ".join(words) + draw(st.sampled_from([".", ".", "!", "?", ".”"]))


paragraphs = st.lists(sentences(), min_size=1, max_size=5)


@st.composite
def headings(draw: st.DrawFn) -> str:
    words = draw(st.lists(st.sampled_from(HEADING_WORDS), min_size=1, max_size=5))
    return " ".join([words[0].capitalize(), *words[1:]])


@dataclass
class Generated:
    file_text: str  # what is written to disk
    text: str  # what the loader must produce
    title: str
    headings: list[tuple[str, int]]  # heading and its offset in ``text``
    sentences: list[tuple[str, str]]  # section title and sentence text, in order


@st.composite
def reports(draw: st.DrawFn) -> Generated:
    title = draw(headings()) + " Report"
    text = title
    out_sentences: list[tuple[str, str]] = []
    heading_offsets: list[tuple[str, int]] = []
    lead = draw(st.lists(paragraphs, min_size=0, max_size=2))
    for paragraph in lead:
        text += "\n\n" + " ".join(paragraph)
        out_sentences += [(title, s) for s in paragraph]
    used = {title}
    for _ in range(draw(st.integers(min_value=0, max_value=4))):
        heading = draw(headings().filter(lambda h: h not in used))
        used.add(heading)
        body = draw(st.lists(paragraphs, min_size=1, max_size=3))
        first_line = " ".join(body[0])
        if len(first_line) <= len(heading):  # a heading is shorter than the paragraph under it
            body[0] = [*body[0], "The delegates agreed on every point raised in this long session."]
        text += "\n\n"
        heading_offsets.append((heading, len(text)))
        text += heading + "\n" + "\n\n".join(" ".join(p) for p in body)
        out_sentences += [(heading, s) for p in body for s in p]
    junk = draw(st.sampled_from(["", "메인메뉴 바로가기본문으로 바로가기\n\n", "Skip to main menu\n"]))
    file_text = junk + text + "\n"
    if draw(st.booleans()):
        file_text = file_text.replace("\n", "\r\n")
    return Generated(file_text, text, title, heading_offsets, out_sentences)


def check_chunks(doc: Document, chunks: list[Chunk], spans: list[Span], params: ChunkingParams) -> None:
    """Every invariant a chunk table must satisfy for one document."""
    for span in spans:
        assert doc.text[span.start : span.end] == span.text
        assert span.text == span.text.strip() and span.text
    for chunk in chunks:
        assert doc.text[chunk.start : chunk.end] == chunk.text
        ids = list(chunk.sentence_ids)
        assert ids == list(range(ids[0], ids[0] + len(ids))), "consecutive sentences"
        assert 1 <= len(ids) <= params.sentences
        # Sentence-aligned: the chunk starts at its first sentence and ends at its last.
        assert chunk.start == spans[ids[0]].start and chunk.end == spans[ids[-1]].end
        # No chunk crosses a section.
        section = doc.section_at(chunk.start)
        assert section.start <= chunk.start < chunk.end <= section.end
        assert chunk.section == section.title
        assert all(spans[i].section == section.title for i in ids)
    # Every sentence is in some chunk, and consecutive chunks of a section overlap by ``overlap``.
    assert sorted({i for c in chunks for i in c.sentence_ids}) == list(range(len(spans)))
    for before, after in itertools.pairwise(chunks):
        if before.section == after.section:
            shared = set(before.sentence_ids) & set(after.sentence_ids)
            assert len(shared) == params.overlap
            assert after.sentence_ids[0] == before.sentence_ids[0] + params.sentences - params.overlap
        else:
            assert not set(before.sentence_ids) & set(after.sentence_ids)
    assert [c.id for c in chunks] == list(range(len(chunks)))


@st.composite
def chunking_params(draw: st.DrawFn) -> ChunkingParams:
    size = draw(st.integers(min_value=1, max_value=5))
    return ChunkingParams(size, draw(st.integers(min_value=0, max_value=size - 1)))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(generated=reports(), params=chunking_params())
def test_generated_reports_keep_every_invariant(generated: Generated, params: ChunkingParams) -> None:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "generated.txt"
        path.write_bytes(generated.file_text.encode("utf-8"))
        doc = load_document(path)
    # Cleaning: junk gone, text verbatim, title first.
    assert doc.text == generated.text
    assert doc.title == generated.title
    # Headings recognised at their offsets; sections tile the text.
    assert [(s.title, s.start) for s in doc.sections] == [(generated.title, 0), *generated.headings]
    assert doc.sections[-1].end == len(doc.text)
    for before, after in itertools.pairwise(doc.sections):
        assert before.end == after.start
    # Sentences: exactly the generated ones (abbreviations and initials did not split them).
    chunks, spans = chunk_documents([doc], params)
    assert [(s.section, s.text) for s in spans] == generated.sentences
    check_chunks(doc, chunks, spans, params)


# ------------------------------------------------------------------------------------------ the report


@pytest.fixture(scope="module")
def report() -> Document:
    return load_corpus(CORPUS)[0]


@pytest.mark.parametrize(("size", "overlap"), [(3, 1), (1, 0), (2, 1), (4, 2), (5, 0)])
def test_report_chunks_keep_every_invariant(report: Document, size: int, overlap: int) -> None:
    params = ChunkingParams(size, overlap)
    chunks, spans = chunk_documents([report], params)
    assert chunks and spans
    check_chunks(report, chunks, spans, params)


def test_report_sentences_are_whole_sentences(report: Document) -> None:
    """Each sentence starts like a sentence and ends with terminal punctuation; none is a heading."""
    spans = sentences_of(report)
    headings = {s.title for s in report.sections}
    for span in spans:
        assert report.text[span.start : span.end] == span.text
        assert span.text[0].isupper(), span.text[:40]
        assert re.search(r"[.!?][\"”’)]*$", span.text), span.text[-40:]
        assert span.text not in headings
        assert not re.search(r"\b(?:[A-Z]\.)+$", span.text), f"split after initials: {span.text[-30:]!r}"
    # Every paragraph line of the report is exactly the concatenation of its sentences.
    paragraphs = [line for line in raw_report_lines()[1:] if line.strip() and line.strip() not in headings]
    for line in paragraphs:
        start = report.text.index(line)
        inside = [s for s in spans if start <= s.start and s.end <= start + len(line)]
        assert " ".join(s.text for s in inside) == line


@pytest.mark.parametrize(
    "needle", ["A.P. Losyukov", "U.S. forces from South Korea", "U.S.-led globalization"]
)
def test_abbreviations_do_not_split_report_sentences(report: Document, needle: str) -> None:
    holding = [s for s in sentences_of(report) if needle in s.text]
    assert len(holding) == 1
    sentence = holding[0].text
    # The sentence reaches from the previous full stop to the next one, across the abbreviation.
    line = next(line for line in raw_report_lines() if needle in line)
    at = line.index(needle)
    before = line.rfind(". ", 0, at)
    expected_start = line[before + 2 :] if before >= 0 else line
    assert expected_start.startswith(sentence)
    assert sentence.endswith(".") and not sentence.endswith(needle.split()[0])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "He met Dr. Kim in the U.S. on Monday. Then A.P. Losyukov spoke.",
            ["He met Dr. Kim in the U.S. on Monday.", "Then A.P. Losyukov spoke."],
        ),
        ("Was it good? Yes! It was, e.g. in Moscow.", ["Was it good?", "Yes!", "It was, e.g. in Moscow."]),
        ("He said “enough.” Then he left.", ["He said “enough.”", "Then he left."]),
        ("  Leading space. Trailing space.  ", ["Leading space.", "Trailing space."]),
        ("First line\n\nSecond line.", ["First line", "Second line."]),
        ("A sentence wrapped\nover two lines.", ["A sentence wrapped\nover two lines."]),
    ],
)
def test_split_sentences(text: str, expected: list[str]) -> None:
    spans = split_sentences(text)
    assert [text[a:b] for a, b in spans] == expected


def test_split_sentences_within_a_range_returns_absolute_offsets() -> None:
    text = "Ignore this. Take this one. And this one. Not this."
    start, end = text.index("Take"), text.index("Not") - 1
    spans = split_sentences(text, start, end)
    assert [text[a:b] for a, b in spans] == ["Take this one.", "And this one."]


@pytest.mark.parametrize(("size", "overlap"), [(0, 0), (3, 3), (3, 4), (2, -1)])
def test_chunking_params_are_validated(size: int, overlap: int) -> None:
    with pytest.raises(ValueError):
        ChunkingParams(size, overlap)


def test_markdown_heading_with_closing_hashes_is_not_a_sentence(tmp_path: Path) -> None:
    """ATX headings may close with hashes ("## Title ##"); the line is still a heading, not text to cite."""
    path = tmp_path / "notes.md"
    path.write_text(
        "# Notes\n\nIntro text here.\n\n## Second Topic ##\n\nBody of the second topic.\n", encoding="utf-8"
    )
    doc = load_document(path)
    assert [s.title for s in doc.sections] == ["Notes", "Second Topic"]
    chunks, spans = chunk_documents([doc])
    assert [s.text for s in spans] == ["Intro text here.", "Body of the second topic."]
    assert all("##" not in c.text for c in chunks)


def test_sentence_wrapped_over_lines_in_markdown_is_one_sentence(tmp_path: Path) -> None:
    """Markdown paragraphs are usually hard-wrapped; a line break inside a paragraph ends no sentence."""
    path = tmp_path / "wrapped.md"
    path.write_text(
        "# Wrapped Notes\n\nThe delegates met in Seoul\nand Moscow during the autumn. They agreed\n"
        "to meet again.\n",
        encoding="utf-8",
    )
    doc = load_document(path)
    spans = sentences_of(doc)
    assert [" ".join(s.text.split()) for s in spans] == [
        "The delegates met in Seoul and Moscow during the autumn.",
        "They agreed to meet again.",
    ]
    for span in spans:
        assert doc.text[span.start : span.end] == span.text


def test_sentence_wrapped_in_html_source_is_one_sentence(tmp_path: Path) -> None:
    """In HTML a newline inside <p> is just white space; it must not cut a sentence in two."""
    path = tmp_path / "wrapped.html"
    path.write_text(
        "<html><body><h1>Wrapped Report</h1>\n<p>The delegates met in Seoul\nand Moscow during "
        "the autumn. They agreed\nto meet again.</p>\n<h2>Second Part</h2>\n<p>More text follows "
        "here in the body.</p></body></html>",
        encoding="utf-8",
    )
    doc = load_document(path)
    spans = sentences_of(doc)
    assert [" ".join(s.text.split()) for s in spans] == [
        "The delegates met in Seoul and Moscow during the autumn.",
        "They agreed to meet again.",
        "More text follows here in the body.",
    ]
