"""Loading: the raw report is cleaned but kept verbatim, other formats load, bad files are named in errors.

No models are needed here: only rag.ingest.loading (and rag.ingest.chunking for the offset checks of
HTML/Markdown).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from core_support import CORPUS, REPORT_TXT, raw_headings, raw_report_lines, report_meta

from rag.ingest.chunking import chunk_documents, sentences_of
from rag.ingest.extraction import CorpusError
from rag.ingest.loading import load_corpus, load_document
from rag.types import Document

HANGUL = re.compile(r"[\uac00-\ud7a3]")


@pytest.fixture(scope="module")
def report() -> Document:
    documents = load_corpus(CORPUS)
    assert len(documents) == 1
    return documents[0]


def assert_sections_tile(doc: Document) -> None:
    """Sections are contiguous, non-empty, start with their heading and cover the whole text."""
    assert doc.sections, "a document has at least one section"
    assert doc.sections[0].start == 0
    assert doc.sections[-1].end == len(doc.text)
    for before, after in itertools.pairwise(doc.sections):
        assert before.end == after.start
    for section in doc.sections:
        assert section.start < section.end
        heading_line = doc.text[section.start : section.end].split("\n", 1)[0]
        assert section.title in heading_line


# ------------------------------------------------------------------------------------------ the report


def test_navigation_line_is_removed(report: Document) -> None:
    junk = raw_report_lines()[0].strip()
    assert HANGUL.search(junk), "the raw file's first line is the Korean navigation junk"
    assert junk not in report.text
    assert not HANGUL.search(report.text), "no piece of the navigation line survives"


def test_text_starts_with_the_title(report: Document) -> None:
    title_line = next(line for line in raw_report_lines()[1:] if line.strip())
    assert report.text.startswith(title_line.strip() + "\n")
    assert report.title == title_line.strip() == report_meta()["title"]


def test_body_is_verbatim(report: Document) -> None:
    """Every non-blank line after the junk appears unchanged, in the original order."""
    lines = [line for line in raw_report_lines()[1:] if line.strip()]
    assert len(lines) > 15
    position = 0
    for line in lines:
        found = report.text.find(line, position)
        assert found >= 0, f"line not kept verbatim: {line[:60]!r}"
        position = found + len(line)
    # Nothing else was added or rewritten: the text is the raw file after its first line.
    assert report.text == "\n".join(raw_report_lines()[1:]).strip()


def test_metadata_from_sidecar(report: Document) -> None:
    meta = report_meta()
    assert report.id == meta["id"] == "third-korea-russia-forum"
    assert report.title == meta["title"]
    assert report.source == meta["source"] == "Korea Foundation"
    assert report.metadata["event_dates"] == meta["event_dates"] == "September 27-28"
    assert report.metadata["place"] == meta["place"]
    assert Path(report.path) == REPORT_TXT
    # The event dates in the metadata agree with the report's own first paragraph.
    assert f"on {meta['event_dates']}" in report.text


def test_four_section_headings_recognised(report: Document) -> None:
    headings = raw_headings()
    assert len(headings) == 4
    assert [s.title for s in report.sections] == [report.title, *headings]
    for section, heading in zip(report.sections[1:], headings, strict=True):
        assert report.text[section.start : section.start + len(heading) + 1] == heading + "\n"


def test_sections_tile_the_report(report: Document) -> None:
    assert_sections_tile(report)
    for section in report.sections:
        assert report.section_at(section.start) == section
        assert report.section_at(section.end - 1) == section


# ------------------------------------------------------------------------------------------ other formats


MARKDOWN = """Skip to main menu | Home

# Notes on the Forum

The forum met in Moscow for two days. Delegates from both countries attended.

## Energy Cooperation

Delegates discussed the Sakhalin gas fields at length. A pipeline study was proposed.

Another paragraph on energy follows here.

## Student Exchanges

Universities agreed to exchange forty students a year.
"""


def test_markdown_document_loads_with_sections(tmp_path: Path) -> None:
    path = tmp_path / "Forum Notes 2001.md"
    path.write_text(MARKDOWN, encoding="utf-8")
    doc = load_document(path)
    assert doc.id == "forum-notes-2001"
    assert doc.title == "Notes on the Forum"
    assert doc.text.startswith("# Notes on the Forum")
    assert "Skip to main menu" not in doc.text
    assert [s.title for s in doc.sections] == [
        "Notes on the Forum",
        "Energy Cooperation",
        "Student Exchanges",
    ]
    assert_sections_tile(doc)
    for line in MARKDOWN.split("\n")[2:]:
        assert line in doc.text
    chunks, sentences = chunk_documents([doc])
    assert not any(s.text.startswith("#") for s in sentences), "heading lines are not sentences"
    assert {c.section for c in chunks} == {s.title for s in doc.sections}


def test_markdown_metadata_sidecar_sets_id_title_source(tmp_path: Path) -> None:
    (tmp_path / "notes.md").write_text(MARKDOWN, encoding="utf-8")
    (tmp_path / "notes.meta.json").write_text(
        json.dumps({"id": "notes-2001", "title": "Notes on the Forum", "source": "A Source", "year": 2001}),
        encoding="utf-8",
    )
    doc = load_document(tmp_path / "notes.md")
    assert (doc.id, doc.title, doc.source) == ("notes-2001", "Notes on the Forum", "A Source")
    assert doc.metadata == {"year": 2001}


HTML = """<!doctype html>
<html><head><title>Ignored page title</title><script>var inHead = "head script";</script>
<style>p { color: red; }</style></head>
<body>
<nav>Skip to main menu | Home | About</nav>
<h1>Forum &amp; Friends Report</h1>
<p>The forum met in Seoul &amp; Moscow. Prices rose &gt; 5% and fell &lt; 3%.</p>
<script>document.write("<h2>Injected Heading</h2><p>Injected paragraph</p>");</script>
<h2>Trade &amp; Investment</h2>
<p>Delegates wrote &lt;script&gt;alert(1)&lt;/script&gt; on the board. It was&nbsp;odd.</p>
<p>The caf&eacute; served &#8220;tea&#8221; to the delegates.</p>
<h2>Culture</h2>
<p>Exchanges grew in 2001 and are expected to grow further.</p>
</body></html>
"""


def test_html_document_loads_with_sections_and_decoded_entities(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(HTML, encoding="utf-8")
    doc = load_document(path)
    assert doc.title == "Forum & Friends Report"
    assert doc.text.startswith("Forum & Friends Report")
    assert [s.title for s in doc.sections] == ["Forum & Friends Report", "Trade & Investment", "Culture"]
    assert_sections_tile(doc)
    assert "The forum met in Seoul & Moscow. Prices rose > 5% and fell < 3%." in doc.text
    assert "The café served “tea” to the delegates." in doc.text
    assert not re.search(r"&(amp|lt|gt|eacute|nbsp|#\d+);", doc.text)
    assert "Skip to main menu" not in doc.text
    assert "color: red" not in doc.text


def test_html_script_stays_data(tmp_path: Path) -> None:
    """Script elements are dropped whole (their markup is not parsed into sections or text), and an
    escaped ``<script>`` in a paragraph is kept as the literal text it is."""
    path = tmp_path / "report.html"
    path.write_text(HTML, encoding="utf-8")
    doc = load_document(path)
    for leaked in ("document.write", "Injected", "head script", "var inHead"):
        assert leaked not in doc.text
    assert "Injected Heading" not in [s.title for s in doc.sections]
    literal = "Delegates wrote <script>alert(1)</script> on the board."
    assert literal in doc.text
    _, sentences = chunk_documents([doc])
    assert literal in [s.text for s in sentences]
    for span in sentences:
        assert doc.text[span.start : span.end] == span.text


def test_html_heading_is_not_a_sentence(tmp_path: Path) -> None:
    path = tmp_path / "report.html"
    path.write_text(HTML, encoding="utf-8")
    doc = load_document(path)
    texts = [s.text for s in sentences_of(doc)]
    for section in doc.sections:
        assert section.title not in texts


def test_crlf_and_bom_are_normalised(tmp_path: Path) -> None:
    path = tmp_path / "windows.txt"
    body = "A Windows Report\r\n\r\nFirst paragraph of the report. It has two sentences.\r\n"
    path.write_bytes(b"\xef\xbb\xbf" + body.encode("utf-8"))
    doc = load_document(path)
    assert doc.text == "A Windows Report\n\nFirst paragraph of the report. It has two sentences."
    assert doc.title == "A Windows Report"


def test_txt_without_metadata_uses_file_name_and_first_line(tmp_path: Path) -> None:
    path = tmp_path / "Second Forum (2002).txt"
    path.write_text(
        "메인메뉴 바로가기\n\nSecond Forum\n\nIt met in Seoul. It ended well.\n", encoding="utf-8"
    )
    doc = load_document(path)
    assert doc.id == "second-forum-2002"
    assert doc.title == "Second Forum"
    assert doc.text.startswith("Second Forum\n")
    assert doc.source == ""


def test_a_first_line_that_names_nothing_gives_way(tmp_path: Path) -> None:
    """A title that is junk ("untitled", "about:blank") is not taken; the next meaningful line is."""
    path = tmp_path / "beyoncé notes.txt"
    path.write_text("untitled\n\nBeyoncé on Tour\n\nShe sang in Seoul.\n", encoding="utf-8")
    doc = load_document(path)
    assert (doc.id, doc.title) == ("beyonce-notes", "Beyoncé on Tour")
    long = tmp_path / "port_logistics.txt"
    long.write_text("A first line that runs on " * 10 + "\n\nMore.\n", encoding="utf-8")
    assert load_document(long).title == "port logistics"


def test_a_text_file_holding_a_pdf_is_refused_by_name(tmp_path: Path) -> None:
    path = tmp_path / "notes.txt"
    path.write_bytes((CORPUS.parent / "tests" / "data" / "report.pdf").read_bytes())
    with pytest.raises(CorpusError, match=r"notes\.txt: the name says \.txt but the content is a PDF"):
        load_document(path)


# ------------------------------------------------------------------------------------------ errors


def test_invalid_utf8_names_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "broken.txt"
    bad.write_bytes(b"A Title\n\nSome text \xff\xfe that is not UTF-8.\n")
    with pytest.raises(CorpusError) as info:
        load_document(bad)
    assert str(bad) in str(info.value)
    assert "UTF-8" in str(info.value)
    (tmp_path / "good.txt").write_text("Good\n\nFine text here.\n", encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(str(bad))):
        load_corpus(tmp_path)


def test_directory_in_place_of_a_file_names_it(tmp_path: Path) -> None:
    folder = tmp_path / "folder.txt"
    folder.mkdir()
    with pytest.raises(CorpusError, match=re.escape(str(folder))):
        load_document(folder)


def test_dangling_symlink_names_it(tmp_path: Path) -> None:
    link = tmp_path / "gone.txt"
    link.symlink_to(tmp_path / "does-not-exist.txt")
    with pytest.raises(CorpusError, match=re.escape(str(link))):
        load_document(link)


def test_unreadable_file_names_it(tmp_path: Path) -> None:
    """Permission denied. Root ignores file modes, so as root the check runs in a child process whose
    capabilities to bypass them (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH) are dropped with setpriv."""
    secret = tmp_path / "secret.txt"
    secret.write_text("Secret\n\nHidden text.\n", encoding="utf-8")
    secret.chmod(0o000)
    if os.geteuid() != 0:
        with pytest.raises(CorpusError) as info:
            load_document(secret)
        assert str(secret) in str(info.value)
        assert "cannot read" in str(info.value)
        return
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from rag.ingest.extraction import CorpusError\nfrom rag.ingest.loading import load_document\n"
        "try:\n    load_document(Path(sys.argv[1]))\n"
        "except CorpusError as exc:\n    print(exc)\n    sys.exit(3)\n"
    )
    result = subprocess.run(
        [
            setpriv,
            "--inh-caps=-all",
            "--bounding-set=-dac_override,-dac_read_search",
            sys.executable,
            "-c",
            code,
            str(secret),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 3, result.stderr
    assert str(secret) in result.stdout
    assert "cannot read" in result.stdout


def test_duplicate_ids_error(tmp_path: Path) -> None:
    (tmp_path / "forum.txt").write_text("Forum\n\nA text about the forum.\n", encoding="utf-8")
    (tmp_path / "forum.md").write_text("# Forum\n\nThe same id from another file.\n", encoding="utf-8")
    with pytest.raises(CorpusError) as info:
        load_corpus(tmp_path)
    message = str(info.value)
    assert "'forum'" in message
    assert "forum.md" in message and "forum.txt" in message


def test_duplicate_ids_from_metadata_error(tmp_path: Path) -> None:
    for name in ("one", "two"):
        (tmp_path / f"{name}.txt").write_text(f"{name.title()}\n\nText of {name}.\n", encoding="utf-8")
        (tmp_path / f"{name}.meta.json").write_text(json.dumps({"id": "same-id"}), encoding="utf-8")
    with pytest.raises(CorpusError, match="same-id"):
        load_corpus(tmp_path)


def test_invalid_metadata_names_the_sidecar(tmp_path: Path) -> None:
    (tmp_path / "doc.txt").write_text("Doc\n\nText.\n", encoding="utf-8")
    meta = tmp_path / "doc.meta.json"
    meta.write_text("{not json", encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(str(meta))):
        load_document(tmp_path / "doc.txt")
    meta.write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(str(meta))):
        load_document(tmp_path / "doc.txt")


def test_empty_inputs_error(tmp_path: Path) -> None:
    with pytest.raises(CorpusError, match="not found"):
        load_corpus(tmp_path / "missing")
    with pytest.raises(CorpusError, match="no documents"):
        load_corpus(tmp_path)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n   \n", encoding="utf-8")
    with pytest.raises(CorpusError, match=re.escape(str(empty))):
        load_document(empty)
