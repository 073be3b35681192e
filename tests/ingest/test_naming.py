"""What documents are called (rag/ingest/naming.py): junk title fields give way, ids are readable ASCII
and unique, and a file's name must not say another kind than its content (rag/ingest/filetypes.py)."""

from __future__ import annotations

import pytest

from rag.ingest.filetypes import name_mismatch
from rag.ingest.naming import (
    MAX_ID_CHARS,
    choose_title,
    clean_new_title,
    clean_title,
    document_id,
    stem_id,
    unique_id,
)

DIGEST = "0123456789abcdef" * 4


@pytest.mark.parametrize("junk", [
    "", "   ", "???", "about:blank", "About:Blank", "untitled", "Untitled-3", "(Untitled)",
    "Untitled document",
    "Document1", "New Microsoft Word Document", "Microsoft Word - Document1", "PowerPoint Presentation",
    "Slide 1", "C:\\Users\\me\\Desktop\\notes.doc", "/home/me/report.pdf", "~/x.pdf", "tmp/report.pdf",
    "file:///tmp/a.pdf", "https://example.org/page.html", "www.example.org", "N/A",
])
def test_junk_titles_are_no_titles(junk: str) -> None:
    assert clean_title(junk) == ""


@pytest.mark.parametrize(("raw", "clean"), [
    ("Microsoft Word - Vladivostok Port Logistics.docx", "Vladivostok Port Logistics"),
    ("Microsoft Word - Notes.doc", "Notes"),
    ("Microsoft PowerPoint - Trade in 2024.pptx", "Trade in 2024"),
    ("  Third   Korea-Russia Forum ", "Third Korea-Russia Forum"),
    ("Korea/Russia relations", "Korea/Russia relations"),
    ("Korea/Russia", "Korea/Russia"),
    ("Документ о порте", "Документ о порте"),
    ("Title IX in practice", "Title IX in practice"),
])
def test_what_word_processors_add_is_stripped(raw: str, clean: str) -> None:
    assert clean_title(raw) == clean


def test_a_junk_title_falls_back_to_the_first_line_then_the_file_name() -> None:
    text = "\n\nVladivostok Port Logistics\n\nThe port handled 1.2 million containers.\n"
    assert choose_title("about:blank", text, "upload") == "Vladivostok Port Logistics"
    assert choose_title("Port Study", text, "x") == "Port Study"  # a real title stands
    assert choose_title(None, "# untitled\n\n???\n\nThe body.", "x") == "The body."
    paragraph = "word " * 60  # a first line that is a paragraph, not a title
    assert choose_title(None, paragraph, "port_logistics-2024") == "port logistics-2024"
    assert choose_title(None, paragraph, "third-korea-russia-forum") == "third korea russia forum"
    cut = choose_title(None, paragraph, "document")
    assert cut.endswith("…") and len(cut) <= 101 and cut.startswith("word word")


@pytest.mark.parametrize(("title", "doc_id"), [
    ("Beyoncé", "beyonce"),
    ("Straße of Œuvres", "strasse-of-oeuvres"),
    ("Форум в Москве", "forum-v-moskve"),
    ("Щука и ёж", "shchuka-i-yozh"),
    ("제3차 한러 포럼", "je3cha-hanreo-poreom"),
    ("서울", "seoul"),
    ("Third Korea–Russia Forum (2024)", "third-korea-russia-forum-2024"),
    ("???", "document-0123456789ab"),
    ("Ένα κείμενο", "document-0123456789ab"),  # no Latin spelling here: a hash, never an empty id
    ("Document", "document-0123456789ab"),
])
def test_ids_are_readable_ascii(title: str, doc_id: str) -> None:
    assert document_id(title, DIGEST) == doc_id


def test_ids_are_cut_at_a_word_and_numbered_when_taken() -> None:
    long = document_id("Cooperation " * 20, DIGEST)
    assert len(long) <= MAX_ID_CHARS and not long.endswith("-") and long.startswith("cooperation-")
    assert unique_id("about-blank", {"report"}) == "about-blank"
    assert unique_id("about-blank", {"about-blank"}) == "about-blank-2"
    assert unique_id("about-blank", {"about-blank", "about-blank-2"}) == "about-blank-3"
    numbered = unique_id(long, {long})
    assert len(numbered) <= MAX_ID_CHARS and numbered.endswith("-2")


def test_a_corpus_file_without_metadata_keeps_its_id_rule() -> None:
    """Hand-placed files keep their ids (Hangul and Cyrillic stems as they are); accented Latin letters
    lose their accent instead of the letter (beyoncé was "beyonc")."""
    assert stem_id("beyoncé") == "beyonce"
    assert stem_id("third-korea-russia-forum") == "third-korea-russia-forum"
    assert stem_id("한러 포럼") == "한러-포럼"
    assert stem_id("Форум Йошкар") == "форум-йошкар"
    assert stem_id("...") == "document"


def test_an_editor_s_title() -> None:
    assert clean_new_title("  Port\tLogistics \n 2024 ") == "Port Logistics 2024"
    for bad in ("", "   ", "x" * 201, "evil\u202etitle", "a\x00b"):
        with pytest.raises(ValueError):
            clean_new_title(bad)


@pytest.mark.parametrize(("kind", "name", "refused"), [
    ("txt", "fake.pdf", True),
    ("txt", "fake.docx", True),
    ("pdf", "notes.txt", True),
    ("docx", "page.html", True),
    ("pdf", "report.PDF", False),
    ("html", "notes.txt", False),  # text suffixes take any text: read as the suffix says
    ("txt", "page.html", False),
    ("md", "notes.md", False),
    ("pdf", "report", False),  # no document suffix: the bytes decide
    ("docx", "report.doc", False),
    ("pdf", "C:\\scans\\report.pdf", False),
])
def test_a_name_that_says_another_kind_is_refused(kind: str, name: str, refused: bool) -> None:
    why = name_mismatch(kind, name)
    assert (why is not None) == refused, why
    if why:
        assert why.startswith(f"the name says .{name.rsplit('.', 1)[1].lower()} but the content is")
