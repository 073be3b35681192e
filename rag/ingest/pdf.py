"""Load a PDF's text layer: lines from PDFium (in a limited child process), page furniture removed,
paragraphs and headings recovered, page start offsets kept for citations.

Why PDFium (pypdfium2): on the PDFs measured (``python -m bench.pdf_fidelity``: the report converted by
LibreOffice, in one and in two hyphenated columns, and Debian's shared-mime-info spec made by pdfTeX)
it was as faithful as the best of pypdf and pdfminer.six on each, kept the columns in order where
pdfminer.six did not, marks the hyphens it finds at line ends, gives each glyph's box and font size,
runs 10-50 times faster, and is the fuzzed engine of a browser.

The text is what this module makes of PDFium's lines, and every citation offset indexes it:

* a line that runs to its column's right edge goes on with a space (line breaks inside a paragraph
  are layout, as in HTML); a shorter line keeps its line break (a list item, a line of code);
* a word cut by a line-end hyphen is kept whole with its hyphen (``strengthen-ing``,
  ``Korean-Russian``): no library here tells a soft hyphen from a hard one, so none is removed
  (bench/pdf_fidelity.py: pdftotext, which removes them, turns ``Korea-Russia`` into ``KoreaRussia``);
* a paragraph ends at a vertical gap clearly wider than the line pitch (a blank line in the text); a
  sentence may run on across columns and pages;
* running headers and footers (a line at the top or bottom of most pages, page numbers masked) and
  bare page numbers are removed: the furniture rule;
* headings come from the outline (bookmarks), else from lines set clearly larger than the body; a
  heading is one line of its own, as printed (a wrapped heading's lines joined), without the
  line-end hyphens its bookmark shows to be soft: the one place the document itself verifies them.

Refused, each with :class:`rag.ingest.extraction.DocumentRefused` saying why: encrypted, damaged, no text
layer (a scan), over :data:`MAX_PAGES` pages or :data:`MAX_CHARS` characters, or needing more than
:data:`MEMORY_LIMIT` bytes or :data:`TIME_LIMIT_S` seconds to read (decompression bombs).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
import re
import signal
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rag.ingest.extraction import DocumentTooLarge, EncryptedDocument, Extraction, NotADocument, NoTextLayer
from rag.ingest.naming import clean_title

MAX_PAGES = 2000
MAX_CHARS = 5_000_000
MEMORY_LIMIT = 512 * 1024 * 1024
TIME_LIMIT_S = 60
log = logging.getLogger(__name__)
_WORKER = Path(__file__).with_name("pdf_worker.py")

_PAGE_NUMBER = re.compile(r"^\W*(?:page\s*)?(?:\d{1,5}|[ivxlcdm]{1,7})(?:\s*(?:of|/)\s*\d{1,5})?\W*$", re.I)
_SENTENCE_END = tuple(".!?;,")
_BULLETS = tuple("•◦▪‣●–")  # a line starting so is a list item: it starts a line of the text too


@dataclass(slots=True)
class _Line:
    text: str
    size: float
    top: float
    baseline: float
    left: float
    last_baseline: float  # where the line ends, a visual line lower when a line-end hyphen joined two
    right: float
    cut: bool  # the line ends after a hyphen-cut word's rest: the next goes on on that visual line
    hyphens: list[int]  # offsets in ``text`` of the hyphens PDFium found at a line's end
    column_right: float = 0.0  # the right edge of the column the line is in
    heading: str | None = None  # the heading this line starts (its text as the document names it)
    merged: bool = False  # a further line of a heading already written


def load_pdf(data: bytes, path: Path | str) -> Extraction:
    """The text, page starts, headings and title of a PDF; raises a DocumentRefused subclass."""
    result = _run_worker(data, path)
    pages = [[_Line(*line) for line in page] for page in result["pages"]]
    if not any(line.text.strip() for page in pages for line in page):
        raise NoTextLayer(
            path,
            f"this PDF has no text layer ({len(pages)} page(s) of images only, as a scan gives): "
            "run it through OCR, or give the document as text, and add it again",
        )
    _drop_furniture(pages)
    # A title field that names nothing ("about:blank", "untitled", a path) is no title: the largest
    # first line stands for it below. "Microsoft Word - Notes.docx" is "Notes".
    title = clean_title(str(result.get("title") or ""))
    body_size = _body_size(pages)
    outline = [
        (int(level), " ".join(str(name).split()), int(page)) for level, name, page in result["outline"]
    ]
    if title:
        _mark_heading(pages, title, 0, first_lines_only=True)
    if outline:
        for _level, name, page in outline:
            if name:
                _mark_heading(pages, name, page)
    else:
        _mark_large_lines(pages, body_size)
    if not title:
        title = _title_by_size(pages[0], body_size) or ""
    text, starts, headings = _assemble(pages)
    if not text.strip():
        raise NoTextLayer(path, "this PDF has no text besides page headers, footers and numbers")
    return Extraction(text=text, headings=headings, title=title or None, pages=tuple(starts))


def _run_worker(data: bytes, path: Path | str) -> dict[str, Any]:
    command = [
        sys.executable,
        "-I",
        str(_WORKER),
        str(MAX_PAGES),
        str(MAX_CHARS),
        str(MEMORY_LIMIT),
        str(math.ceil(TIME_LIMIT_S)),
    ]
    try:
        done = subprocess.run(command, input=data, capture_output=True, timeout=TIME_LIMIT_S, check=False)
    except subprocess.TimeoutExpired as exc:
        raise DocumentTooLarge(
            path, f"reading this PDF took longer than {TIME_LIMIT_S} s, so it was stopped"
        ) from exc
    limit_mb = MEMORY_LIMIT // (1024 * 1024)
    if done.returncode != 0:
        stderr = done.stderr.decode("utf-8", "replace")
        if done.returncode in (-signal.SIGXCPU, -signal.SIGKILL):
            raise DocumentTooLarge(
                path, f"reading this PDF took more than {TIME_LIMIT_S} s of CPU, so it was stopped"
            )
        if done.returncode == -signal.SIGABRT or "MemoryError" in stderr or "bad_alloc" in stderr:
            raise DocumentTooLarge(
                path, f"reading this PDF needs more than {limit_mb} MB of memory (a decompression bomb?)"
            )
        raise NotADocument(path, "the PDF reader failed on this file: it is damaged or not a valid PDF")
    try:
        result: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError as exc:
        raise NotADocument(path, "the PDF reader returned nothing usable: the file is damaged") from exc
    error = result.get("error")
    if error == "encrypted":
        raise EncryptedDocument(
            path, "this PDF is locked with a password: remove the protection and add it again"
        )
    if error == "unreadable":
        log.info("%s: PDFium: %s", path, result["detail"])
        raise NotADocument(path, "not a readable PDF: the file is damaged, cut short or not a PDF")
    if error == "pages":
        raise DocumentTooLarge(path, f"this PDF has {result['detail']} pages; at most {MAX_PAGES} are read")
    if error == "chars":
        raise DocumentTooLarge(path, f"this PDF holds over {MAX_CHARS:,} characters of text; that is the cap")
    return result


def _key(line: _Line) -> tuple[str, int]:
    """What makes two lines of different pages the same furniture: words (numbers masked) and size."""
    return re.sub(r"\d+", "#", " ".join(line.text.casefold().split())), round(line.size)


def _drop_furniture(pages: list[list[_Line]]) -> None:
    """Remove running headers/footers (same line at the top or bottom of most pages) and page numbers."""
    if len(pages) < 2:
        return
    edges: list[set[int]] = []
    counts: dict[tuple[str, int], int] = {}
    for page in pages:
        by_top = sorted(range(len(page)), key=lambda i: -page[i].top)
        edge = set(by_top[:2]) | set(by_top[-2:])
        edges.append(edge)
        for key in {_key(page[i]) for i in edge}:
            counts[key] = counts.get(key, 0) + 1
    needed = max(2, (len(pages) + 1) // 2)
    for page, edge in zip(pages, edges, strict=True):
        doomed = {
            i for i in edge if counts[_key(page[i])] >= needed or _PAGE_NUMBER.match(page[i].text.strip())
        }
        page[:] = [line for i, line in enumerate(page) if i not in doomed]


def _body_size(pages: list[list[_Line]]) -> float:
    """The font size that sets the most characters: the body text's."""
    weight: dict[float, int] = {}
    for page in pages:
        for line in page:
            weight[line.size] = weight.get(line.size, 0) + len(line.text)
    return max(weight, key=lambda size: weight[size]) if weight else 0.0


def _squash(text: str) -> str:
    return re.sub(r"\W+", "", text.casefold())


def _mark_heading(
    pages: list[list[_Line]], name: str, page_index: int, first_lines_only: bool = False
) -> None:
    """Mark the 1-3 lines that spell ``name`` on its page (or the next) as that heading."""
    wanted = _squash(name)
    if not wanted:
        return
    for index in (page_index, page_index + 1):
        if not 0 <= index < len(pages):
            continue
        page = pages[index]
        candidates = range(min(3, len(page))) if first_lines_only else range(len(page))
        for i in candidates:
            if page[i].heading or page[i].merged:
                continue
            joined = ""
            for j in range(i, min(i + 3, len(page))):
                if page[j].heading or page[j].merged:
                    break
                joined += _squash(page[j].text)
                if joined == wanted:
                    page[i].heading = _printed_heading(page[i : j + 1], name)
                    for k in range(i + 1, j + 1):
                        page[k].merged = True
                    return
                if not wanted.startswith(joined):
                    break


def _printed_heading(lines: list[_Line], name: str) -> str:
    """A heading as printed (its lines joined), without the line-end hyphens that ``name`` (from the
    outline or metadata) shows to be soft: "Korea-Rus-" / "sia" is "Korea-Russia" when the bookmark
    says so. A hyphen the name lacks elsewhere stays ("Non-regular" under a "Nonregular" bookmark)."""
    printed = ""
    cuts: list[int] = []
    for line in lines:
        text = line.text.strip()
        offset = len(line.text) - len(line.text.lstrip())
        if printed and not printed.endswith("-"):
            printed += " "
        elif printed:
            cuts.append(len(printed) - 1)
        cuts.extend(len(printed) + h - offset for h in line.hyphens if 0 <= h - offset < len(text))
        printed += text
    printed = " ".join(printed.split()) if not cuts else printed
    if cuts:
        soft = "".join(c for i, c in enumerate(printed) if i not in set(cuts))
        if _words(soft) == _words(name):
            return " ".join(soft.split())
        printed = " ".join(printed.split())
    return printed


def _words(text: str) -> str:
    return " ".join(text.casefold().split())


def _title_by_size(page: list[_Line], body_size: float) -> str | None:
    """Without a title in the metadata: the largest line among the first few of page 1, if large."""
    top = [line for line in page[:5] if not line.merged and _looks_like_heading(line, body_size)]
    if not top:
        return None
    largest = max(top, key=lambda line: line.size)
    if largest.heading is None:
        largest.heading = " ".join(largest.text.split())
    return largest.heading


def _mark_large_lines(pages: list[list[_Line]], body_size: float) -> None:
    """Without an outline: short lines set at least 15% larger than the body are headings."""
    for page in pages:
        i = 0
        while i < len(page):
            line = page[i]
            if _looks_like_heading(line, body_size):
                j = i + 1
                while (
                    j < len(page)
                    and j < i + 3
                    and abs(page[j].size - line.size) < 0.5
                    and (_looks_like_heading(page[j], body_size))
                ):
                    j += 1
                line.heading = _join_lines([p.text for p in page[i:j]])
                for k in range(i + 1, j):
                    page[k].merged = True
                i = j
            else:
                i += 1


def _looks_like_heading(line: _Line, body_size: float) -> bool:
    text = line.text.strip()
    return (
        body_size > 0
        and line.size >= body_size * 1.15
        and len(text.split()) <= 15
        and any(c.isalpha() for c in text)
        and not text.endswith(_SENTENCE_END)
    )


def _join_lines(lines: list[str]) -> str:
    out = ""
    for line in lines:
        line = " ".join(line.split())
        out = out + line if not out or out.endswith("-") else out + " " + line
    return out


def _paragraph_breaks(page: list[_Line]) -> set[int]:
    """Indexes of lines that start a paragraph: the gap above is over 1.4 line pitches of their size."""
    pitches: dict[int, list[float]] = {}
    for above, line in itertools.pairwise(page):
        pitch = above.last_baseline - line.baseline
        if 0 < pitch < 3 * max(line.size, 1.0) and abs(above.size - line.size) < 0.5:
            pitches.setdefault(round(line.size), []).append(pitch)
    usual = {size: statistics.median(values) for size, values in pitches.items()}
    breaks = set()
    for i in range(1, len(page)):
        pitch = page[i - 1].last_baseline - page[i].baseline
        normal = usual.get(round(page[i].size))
        if normal and pitch > 1.4 * normal:
            breaks.add(i)
    return breaks


def _mark_wrapping_lines(page: list[_Line]) -> None:
    """Note each line's column right edge: the rightmost end among the lines it overlaps horizontally."""
    for line in page:
        line.column_right = max(o.right for o in page if o.left < line.right and line.left < o.right)


def _wraps_into(line: _Line, following: _Line) -> bool:
    """Whether ``line`` ended only because ``following``'s first word would not fit after it: then the
    line break is layout (the text goes on with a space, as in HTML). A shorter line (a paragraph's
    last, a line of code) or a list item keeps its line break."""
    if line.cut:
        return True
    words = following.text.split()
    if not words or following.text.lstrip().startswith(_BULLETS):
        return False
    # Glyphs average about half an em; 0.6 em per character errs towards joining.
    needed = (len(words[0]) + 1) * 0.6 * max(following.size, 1.0)
    return line.right + needed >= line.column_right


def _assemble(pages: list[list[_Line]]) -> tuple[str, list[int], list[tuple[int, int, str]]]:
    """The document text, each page's start offset in it, and the headings' (start, end, title)."""
    parts: list[str] = []
    length = 0
    starts: list[int] = []
    headings: list[tuple[int, int, str]] = []
    last = ""  # what the previous piece was: "", "line" or "heading"

    def put(piece: str) -> None:
        nonlocal length
        parts.append(piece)
        length += len(piece)

    previous: _Line | None = None
    for page in pages:
        breaks = _paragraph_breaks(page)
        _mark_wrapping_lines(page)
        page_start: int | None = None
        for i, line in enumerate(page):
            if line.merged:
                continue
            if line.heading is not None:
                separator = "\n\n" if last else ""
            elif last == "heading" or not last:
                separator = "\n" if last else ""
            elif i in breaks:
                separator = "\n\n"
            elif previous is not None and _wraps_into(previous, line):
                # A wrapped line goes on: a space, as in HTML; a word cut at a column's or page's end
                # ("satisfacto-" / "rily") keeps its hyphen and is joined like PDFium joins it in a column.
                separator = "" if re.search(r"[^\W\d_]-$", previous.text) else " "
            else:
                separator = "\n"
            put(separator)
            if page_start is None:
                page_start = length
            text = line.heading if line.heading is not None else line.text
            if line.heading is not None:
                headings.append((length, length + len(text), text))
            put(text)
            last = "heading" if line.heading is not None else "line"
            previous = line
        starts.append(page_start if page_start is not None else length)
    return "".join(parts), starts, headings
