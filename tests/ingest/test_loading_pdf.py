"""The PDF loader on real files: the report converted by LibreOffice (one column, and two hyphenated
columns), Debian's shared-mime-info spec (not made here), a scan, and hostile files each refused with
a clear reason, in bounded time.

Expectations come from elsewhere than the loader: the report's text file (read by the text loader),
the spec's HTML source, and PDFium's own page texts and bookmarks read here directly.
"""

from __future__ import annotations

import difflib
import itertools
import re
import sys
import time
from pathlib import Path

import pypdfium2 as pdfium
import pytest

from rag.ingest import pdf as loading_pdf
from rag.ingest.chunking import sentences_of
from rag.ingest.extraction import (
    CorpusError,
    DocumentRefused,
    DocumentTooLarge,
    EncryptedDocument,
    NotADocument,
    NoTextLayer,
)
from rag.ingest.loading import load_corpus, load_document
from rag.types import Document
from tests.core_support import REPORT_TXT

DATA = Path(__file__).resolve().parents[1] / "data"
sys.path.insert(0, str(DATA))
import make_files  # noqa: E402  (tests/data/make_files.py: the fixtures' maker, and the hostile files')


def fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def raw_pages(path: Path) -> list[str]:
    """PDFium's page texts, headers and all, with its line-end hyphen mark shown as a hyphen."""
    pdf = pdfium.PdfDocument(path)
    try:
        return [fold(pdf[i].get_textpage().get_text_range().replace("\ufffe", "-")) for i in range(len(pdf))]
    finally:
        pdf.close()


@pytest.fixture(scope="module")
def report_txt() -> Document:
    return load_document(REPORT_TXT)


@pytest.fixture(scope="module")
def report_pdf() -> Document:
    return load_document(DATA / "report.pdf")


def assert_offsets_verbatim(doc: Document) -> None:
    """Sections tile the text from its start; each heading is its section's first line; sentences index it."""
    assert doc.sections[0].start == 0 and doc.sections[-1].end == len(doc.text)
    for before, after in zip(doc.sections, doc.sections[1:], strict=False):
        assert before.end == after.start
    for section in doc.sections:
        assert doc.text[section.start :].split("\n", 1)[0] == section.title
    spans = sentences_of(doc)
    assert len(spans) > 20
    for span in spans:
        assert doc.text[span.start : span.end] == span.text


def test_report_pdf_is_the_report_word_for_word(report_pdf: Document, report_txt: Document) -> None:
    # The same words in the same order as the text file; only line breaks differ (the page's own).
    assert fold(report_pdf.text) == fold(report_txt.text)
    assert report_pdf.title == "Third Korea-Russia Forum"
    # Lines that wrap go on with a space: the report's paragraphs come back as lines of their own,
    # except where a paragraph ends at the foot of a page (nothing in print tells it did).
    paragraphs = [line for line in report_txt.text.split("\n") if line.strip()]
    lines = {line for line in report_pdf.text.split("\n") if line.strip()}
    assert sum(p in lines for p in paragraphs) >= len(paragraphs) - 2
    assert_offsets_verbatim(report_pdf)
    for span in sentences_of(report_pdf):
        assert fold(span.text) in fold(report_txt.text)


def test_report_pdf_headings_come_from_its_bookmarks(report_pdf: Document, report_txt: Document) -> None:
    assert [s.title for s in report_pdf.sections] == [s.title for s in report_txt.sections]
    bookmarks = [b.get_title() for b in pdfium.PdfDocument(DATA / "report.pdf").get_toc()]
    assert [s.title for s in report_pdf.sections[1:]] == bookmarks


def test_report_pdf_furniture_is_removed(report_pdf: Document) -> None:
    # Every page of the PDF carries the running header and a numbered footer; the text has neither.
    pages = raw_pages(DATA / "report.pdf")
    assert all(make_files.HEADER in page and make_files.FOOTER.strip() in page for page in pages)
    assert make_files.HEADER not in report_pdf.text
    assert make_files.FOOTER.strip() not in report_pdf.text


def test_report_pdf_page_numbers(report_pdf: Document) -> None:
    pages = raw_pages(DATA / "report.pdf")
    assert len(report_pdf.pages) == len(pages) == 4
    assert list(report_pdf.pages) == sorted(set(report_pdf.pages)) and report_pdf.pages[0] == 0
    bounds = [*report_pdf.pages, len(report_pdf.text)]
    for number, (start, end) in enumerate(itertools.pairwise(bounds), start=1):
        # What the loader put on page n is on PDFium's page n, line breaks aside.
        assert fold(report_pdf.text[start:end]) in pages[number - 1]
        assert report_pdf.page_at(start) == number
        assert report_pdf.page_at(end - 1) == number
    for span in sentences_of(report_pdf):
        page = report_pdf.page_at(span.start)
        assert page is not None
        first_words = fold(span.text)[:40]
        assert first_words in pages[page - 1] or first_words in pages[page - 1] + " " + pages[page]


def test_two_hyphenated_columns_keep_their_reading_order(report_txt: Document) -> None:
    doc = load_document(DATA / "report-columns.pdf")
    assert_offsets_verbatim(doc)
    assert [s.title for s in doc.sections] == [s.title for s in report_txt.sections]
    # A word cut at a line end keeps its hyphen (no soft/hard guess) and its rest, in the same column
    # or the next ("satisfacto-" / "rily"); without the hyphens the words are the report's, in order.
    # Lines that wrap go on with a space: a paragraph is one line of the text.
    assert "ways of strengthen-ing relations between" in doc.text
    assert "progressed satisfacto-rily over" in doc.text
    assert "Korea-Russia" in doc.text and "KoreaRussia" not in doc.text
    source = fold(report_txt.text).split()
    got = fold(doc.text).split()
    assert difflib.SequenceMatcher(None, source, got, autojunk=False).ratio() > 0.94
    unhyphenated = fold(re.sub(r"(\w)-\s*(\w)", r"\1\2", doc.text)).split()
    plain_source = fold(re.sub(r"(\w)-(\w)", r"\1\2", report_txt.text)).split()
    assert unhyphenated == plain_source
    assert len(doc.pages) == 3 and make_files.HEADER not in doc.text


def test_foreign_pdf_from_a_debian_package() -> None:
    """shared-mime-info's spec (pdfTeX): title by font size, numbered bookmarks, running headers."""
    doc = load_document(DATA / "shared-mime-info-spec.pdf")
    assert_offsets_verbatim(doc)
    assert doc.title == "Shared MIME-info Database"
    assert doc.text.count("Shared MIME-info Database\n") == 1  # the title; the 16 running headers are gone
    pdf = pdfium.PdfDocument(DATA / "shared-mime-info-spec.pdf")
    assert len(doc.pages) == len(pdf) == 17
    # Headings are found by their bookmarks and written as printed: the bookmark "2.13. Nonregular
    # files" heads the section printed "2.13. Non-regular files".
    squashed = [re.sub(r"\W", "", s.title) for s in doc.sections]
    for bookmark in pdf.get_toc():
        name = re.sub(r"\W", "", bookmark.get_title())
        assert name in squashed
        dest = bookmark.get_dest()
        assert dest is not None
        section = doc.sections[squashed.index(name)]
        assert doc.page_at(section.start) == dest.get_index() + 1
        assert fold(section.title) in raw_pages(DATA / "shared-mime-info-spec.pdf")[dest.get_index()]
    assert "2.13. Non-regular files" in [s.title for s in doc.sections]
    html = (DATA / "shared-mime-info-spec-html" / "x34.html").read_text(encoding="utf-8")
    sentence = (
        "The globs2 file is a simple list of lines containing weight, MIME type and pattern, separated "
        "by a colon. The lines are ordered by glob weight."
    )
    assert sentence in fold(re.sub(r"<[^>]+>", " ", html))  # a sentence of the HTML source
    assert sentence in fold(doc.text)
    assert not re.search(r"^\d+$", doc.text, re.MULTILINE)  # no bare page numbers left


def test_scan_is_refused_not_indexed_empty() -> None:
    with pytest.raises(NoTextLayer) as refused:
        load_document(DATA / "scan.pdf")
    assert "no text layer" in refused.value.reason and "OCR" in refused.value.reason


def test_a_scan_in_a_corpus_stops_the_build_with_its_name(tmp_path: Path) -> None:
    (tmp_path / "report.pdf").write_bytes((DATA / "report.pdf").read_bytes())
    (tmp_path / "scan.pdf").write_bytes((DATA / "scan.pdf").read_bytes())
    with pytest.raises(NoTextLayer, match=r"scan\.pdf"):
        load_corpus(tmp_path)


HOSTILE: dict[str, tuple[type[DocumentRefused], str]] = {
    "encrypted.pdf": (EncryptedDocument, "locked with a password"),
    "truncated.pdf": (NotADocument, "damaged, cut short"),
    "page-tree-bomb.pdf": (NotADocument, "not a readable PDF"),
    "many-pages.pdf": (DocumentTooLarge, "2001 pages; at most 2000"),
    "deflate-bomb.pdf": (DocumentTooLarge, "MB of memory"),
    "zip-named.pdf": (NotADocument, "the name says .pdf but the content is a Word document"),
    "html-named.pdf": (NotADocument, "the name says .pdf but the content is a web page"),
    "noise.pdf": (NotADocument, "neither PDF nor DOCX"),
}


def hostile_bytes(name: str) -> bytes:
    report = DATA / "report.pdf"
    makers = {
        "encrypted.pdf": lambda: make_files.encrypted_pdf(report),
        "truncated.pdf": lambda: report.read_bytes()[: report.stat().st_size // 2],
        "page-tree-bomb.pdf": lambda: make_files.page_tree_bomb(),  # claims 10**9 pages in 2 KB
        "many-pages.pdf": lambda: make_files.many_pages_pdf(2001),
        "deflate-bomb.pdf": lambda: make_files.deflate_bomb(300),  # 300 MB of operators in 0.9 MB
        "zip-named.pdf": lambda: (DATA / "report.docx").read_bytes(),
        "html-named.pdf": lambda: b"<!doctype html><html><body><p>Not a PDF.</p></body></html>",
        "noise.pdf": lambda: bytes(range(256)) * 64,
    }
    return makers[name]()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_pdf_is_refused_with_its_reason(name: str, tmp_path: Path) -> None:
    expected, words = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(hostile_bytes(name))
    started = time.perf_counter()
    with pytest.raises(expected) as refused:
        load_document(path)
    assert time.perf_counter() - started < loading_pdf.TIME_LIMIT_S
    assert words in refused.value.reason
    assert str(path) in str(refused.value)  # the log line names the file; the reason does not
    assert str(tmp_path) not in refused.value.reason
    assert isinstance(refused.value, CorpusError)


def test_a_pdf_that_takes_too_long_is_stopped(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # The wall-clock limit, shrunk below a real child's start-up time: the child is killed, not awaited.
    monkeypatch.setattr(loading_pdf, "TIME_LIMIT_S", 0.001)
    with pytest.raises(DocumentTooLarge) as refused:
        loading_pdf.load_pdf((DATA / "report.pdf").read_bytes(), tmp_path / "slow.pdf")
    assert "took longer than" in refused.value.reason


def test_owner_password_only_pdf_still_loads(tmp_path: Path) -> None:
    # Protected against editing, not reading (an empty user password): its text is there to quote.
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(DATA / "report.pdf"))
    writer.encrypt(user_password="", owner_password="owner", algorithm="AES-128")
    path = tmp_path / "protected.pdf"
    with path.open("wb") as fh:
        writer.write(fh)
    assert fold(load_document(path).text) == fold(load_document(DATA / "report.pdf").text)
