"""The DOCX loader on real files: the report as LibreOffice saved it, and hostile packages (zip bombs,
XML entity bombs, external entities, damaged or mislabelled files) each refused with a clear reason.
"""

from __future__ import annotations

import io
import re
import sys
import time
import zipfile
from pathlib import Path

import docx
import pytest

from rag.ingest.chunking import sentences_of
from rag.ingest.extraction import (
    DocumentRefused,
    DocumentTooLarge,
    EncryptedDocument,
    NotADocument,
    UnsafeDocument,
)
from rag.ingest.loading import load_document
from rag.types import Document
from tests.core_support import REPORT_TXT

DATA = Path(__file__).resolve().parents[1] / "data"
sys.path.insert(0, str(DATA))
import make_files  # noqa: E402  (tests/data/make_files.py)


def fold(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


@pytest.fixture(scope="module")
def report_docx() -> Document:
    return load_document(DATA / "report.docx")


def test_report_docx_is_the_report_word_for_word(report_docx: Document) -> None:
    report_txt = load_document(REPORT_TXT)
    assert fold(report_docx.text) == fold(report_txt.text)
    assert report_docx.title == "Third Korea-Russia Forum"
    assert report_docx.pages == ()  # Word has no fixed pages: no page numbers are invented
    assert report_docx.page_at(100) is None
    # LibreOffice's header and footer parts are not body text.
    assert make_files.HEADER not in report_docx.text and "page" not in report_docx.text.split("\n")[-1]
    for span in sentences_of(report_docx):
        assert report_docx.text[span.start : span.end] == span.text
        assert fold(span.text) in fold(report_txt.text)


def test_report_docx_headings_come_from_heading_styles(report_docx: Document) -> None:
    styled = [
        p.text
        for p in docx.Document(str(DATA / "report.docx")).paragraphs
        if p.style is not None and p.style.name in ("Title", "Heading 1")
    ]
    assert [s.title for s in report_docx.sections] == styled
    assert len(styled) == 5
    for section in report_docx.sections:
        assert report_docx.text[section.start :].split("\n", 1)[0] == section.title
    assert report_docx.sections[-1].end == len(report_docx.text)


def test_tables_are_read_in_order(tmp_path: Path) -> None:
    document = docx.Document()
    document.add_heading("Delegations", level=1)
    document.add_paragraph("Who came to Moscow.")
    table = document.add_table(rows=2, cols=2)
    for row, (side, head) in enumerate([("Korea", "Lee In-ho"), ("Russia", "Yuri Fokin")]):
        table.cell(row, 0).text = side
        table.cell(row, 1).text = head
    document.add_paragraph("After the table.")
    path = tmp_path / "tables.docx"
    document.save(str(path))
    doc = load_document(path)
    rows = "Korea\tLee In-ho\nRussia\tYuri Fokin"
    assert doc.text == f"Delegations\nWho came to Moscow.\n\n{rows}\n\nAfter the table."
    assert [s.title for s in doc.sections] == ["Delegations"]


def _zip_bomb_by_ratio() -> bytes:
    # 60 MB of zeros: under the 128 MB cap on the whole, but it expands ~1000-fold.
    return make_files.docx_zip_bomb(DATA / "report.docx", expanded_mb=60)


def _encrypted_word() -> bytes:
    # What Word writes for a password-protected .docx: an OLE container holding "EncryptedPackage".
    header = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + bytes(504)
    return header + "EncryptedPackage".encode("utf-16-le") + bytes(1024)


HOSTILE: dict[str, tuple[type[DocumentRefused], str]] = {
    "zip-bomb.docx": (DocumentTooLarge, "expands to 300 MB; at most 128 MB"),
    "ratio-bomb.docx": (DocumentTooLarge, "a zip bomb"),
    "billion-laughs.docx": (UnsafeDocument, "declares an XML DTD or entities"),
    "external-entity.docx": (UnsafeDocument, "declares an XML DTD or entities"),
    "truncated.docx": (NotADocument, "damaged zip archive"),
    "pdf-named.docx": (NotADocument, "the name says .docx but the content is a PDF"),
    "encrypted.docx": (EncryptedDocument, "locked with a password"),
    "plain-zip.docx": (NotADocument, "a zip archive that is not a Word document"),
}


def hostile_bytes(name: str) -> bytes:
    report = DATA / "report.docx"

    def plain_zip() -> bytes:
        out = io.BytesIO()
        with zipfile.ZipFile(out, "w") as archive:
            archive.writestr("notes.txt", "not a document")
        return out.getvalue()

    makers = {
        "zip-bomb.docx": lambda: make_files.docx_zip_bomb(report, expanded_mb=300),
        "ratio-bomb.docx": _zip_bomb_by_ratio,
        "billion-laughs.docx": lambda: make_files.docx_with_doctype(report, "laughs"),
        "external-entity.docx": lambda: make_files.docx_with_doctype(report, "external"),
        "truncated.docx": lambda: report.read_bytes()[: report.stat().st_size // 2],
        "pdf-named.docx": lambda: (DATA / "report.pdf").read_bytes(),
        "encrypted.docx": _encrypted_word,
        "plain-zip.docx": plain_zip,
    }
    return makers[name]()


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_docx_is_refused_with_its_reason(name: str, tmp_path: Path) -> None:
    expected, words = HOSTILE[name]
    path = tmp_path / name
    path.write_bytes(hostile_bytes(name))
    started = time.perf_counter()
    with pytest.raises(expected) as refused:
        load_document(path)
    assert time.perf_counter() - started < 10
    assert words in refused.value.reason
    assert "root:" not in str(refused.value)  # the external entity (/etc/passwd) was never read
