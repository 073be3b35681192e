"""Load: read the documents in ``corpus/``, strip what is not the report, find section headings.

A document's body text is kept verbatim (citations quote it); only leading page furniture such as a
navigation line is removed. Supported: ``.txt``, ``.md``, ``.html``/``.htm``, ``.pdf`` (its text layer,
rag/ingest/pdf.py) and ``.docx`` (rag/ingest/docx.py). Which reader runs is decided by the file's
bytes (rag/ingest/filetypes.py), not its name: a ``.pdf`` that holds a zip is refused as what it is. Optional
metadata sits beside a document as ``<name>.meta.json`` (id, title, source, event dates, ...).
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from rag.hashing import sha256_file
from rag.ingest.extraction import (
    CorpusError,
    DocumentTooLarge,
    EncryptedDocument,
    NotADocument,
)
from rag.ingest.filetypes import UnsupportedFile, detect_kind, name_mismatch
from rag.ingest.naming import choose_title, stem_id
from rag.types import Document, Section

log = logging.getLogger(__name__)

SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".pdf", ".docx")
MAX_DOCUMENT_BYTES = 20 * 1024 * 1024

# Page furniture that web captures put before the content ("skip to main menu", in several languages).
_NAVIGATION = re.compile(
    r"바로가기|메인메뉴|본문으로|skip to|main menu|jump to|navigation|перейти к|главное меню", re.IGNORECASE
)
_SENTENCE_END = tuple(".!?;:,\"'”’)…")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.+?)\s*#*\s*$")


def load_corpus(
    corpus_dir: Path,
    on_loaded: Callable[[], object] | None = None,
    reuse: Callable[[Path], Document | None] | None = None,
) -> list[Document]:
    """Load every supported document in ``corpus_dir`` (sorted by file name); ``on_loaded`` is called
    after each one (build progress). ``reuse`` may give a file's document as an earlier build read it
    (same bytes, same metadata), so an unchanged PDF is not read again."""
    if not corpus_dir.is_dir():
        raise CorpusError(f"corpus folder not found: {corpus_dir}")
    paths = sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)
    documents = []
    for path in paths:
        known = reuse(path) if reuse is not None else None
        documents.append(known if known is not None else load_document(path))
        if on_loaded is not None:
            on_loaded()
    seen: dict[str, Path] = {}
    for doc, path in zip(documents, paths, strict=True):
        if doc.id in seen:
            raise CorpusError(f"{path}: document id {doc.id!r} is already used by {seen[doc.id]}")
        seen[doc.id] = path
    if not documents:
        raise CorpusError(f"no documents ({', '.join(SUPPORTED_SUFFIXES)}) in {corpus_dir}")
    log.info("loaded %d document(s) from %s", len(documents), corpus_dir)
    return documents


def corpus_files(corpus_dir: Path) -> list[Path]:
    """The files whose content defines the corpus (documents and their metadata)."""
    return sorted(
        p
        for p in corpus_dir.iterdir()
        if p.is_file() and (p.suffix.lower() in SUPPORTED_SUFFIXES or p.name.endswith(".meta.json"))
    )


def source_key(path: Path) -> str:
    """What a document's content depends on: the sha256 of its file and of its metadata file, if any."""
    meta = path.with_name(path.stem + ".meta.json")
    return sha256_file(path) + ":" + (sha256_file(meta) if meta.is_file() else "-")


def load_document(path: Path) -> Document:
    """Read one file into a cleaned :class:`Document` with sections.

    Raises :class:`CorpusError` (for a file read and refused: a :class:`DocumentRefused` subclass,
    whose ``reason`` is meant for the person who gave the file) with a message naming the file.
    """
    try:
        raw_bytes = path.read_bytes()
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read file: {exc.strerror or exc}") from exc
    if len(raw_bytes) > MAX_DOCUMENT_BYTES:
        raise DocumentTooLarge(path, f"the file is larger than {MAX_DOCUMENT_BYTES // (1024 * 1024)} MB")
    suffix = path.suffix.lower()
    if raw_bytes.startswith(_OLE) and _ENCRYPTED_PACKAGE in raw_bytes:
        # Word keeps a password-protected .docx in an OLE container, which bytes alone call a .doc.
        raise EncryptedDocument(path, "this Word document is locked with a password: remove it, then add it")
    try:
        kind: str = detect_kind(raw_bytes, path.name)
    except UnsupportedFile as exc:
        if suffix not in _TEXT_KINDS or b"\x00" in raw_bytes[:2048]:
            raise NotADocument(path, f"not a document forum-qa reads: {exc}") from exc
        kind = _TEXT_KINDS[suffix]  # text in another encoding: the text reader says which byte is wrong
    mismatch = name_mismatch(kind, path.name)
    if mismatch:
        raise NotADocument(path, mismatch)
    if kind in ("html", "md", "txt") and suffix in _TEXT_KINDS:
        # Bytes cannot tell an HTML fragment from text; a text file's own suffix says how to read it.
        kind = _TEXT_KINDS[suffix]
    meta = _read_meta(path)
    pages: tuple[int, ...] = ()

    if kind in ("pdf", "docx"):
        if kind == "pdf":
            from rag.ingest.pdf import load_pdf

            extraction = load_pdf(raw_bytes, path)
        else:
            from rag.ingest.docx import load_docx

            extraction = load_docx(raw_bytes, path)
        text, headings, pages = extraction.text, extraction.headings, extraction.pages
        title_found = extraction.title
    else:
        text, headings = _load_text(raw_bytes, path, kind, meta)
        title_found = None

    if not text.strip():
        raise NotADocument(path, "the document has no text")
    # A title field that names nothing ("about:blank", "Microsoft Word - …", "untitled") gives way to the
    # first line of the text, then to the file's name.
    title = str(meta.get("title") or "") or choose_title(title_found, text, path.stem)
    sections = _sections(text, title, headings)
    return Document(
        id=str(meta.get("id") or stem_id(path.stem)),
        title=title,
        text=text,
        sections=tuple(sections),
        source=str(meta.get("source", "")),
        path=str(path),
        metadata={k: v for k, v in meta.items() if k not in ("id", "title", "source")},
        pages=pages,
    )


_OLE = b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1"
_ENCRYPTED_PACKAGE = "EncryptedPackage".encode("utf-16-le")
_TEXT_KINDS = {".html": "html", ".htm": "html", ".md": "md", ".markdown": "md", ".txt": "txt"}


def _load_text(
    raw_bytes: bytes, path: Path, kind: str, meta: dict[str, Any]
) -> tuple[str, list[tuple[int, int, str]]]:
    """Text, Markdown and HTML: decoded, leading navigation stripped, headings found."""
    try:
        raw = raw_bytes.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorpusError(f"{path}: not valid UTF-8 text (byte {exc.start})") from exc
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    if kind == "html":
        text, heading_lines = _html_to_text(raw)
        title_hint = meta.get("title") or (heading_lines[0] if heading_lines else None)
        text = _strip_furniture(text, title_hint)
        return text, _find_marked_headings(text, set(heading_lines))
    if kind == "md":
        text = _strip_furniture(raw, meta.get("title"))
        return text, [(s, e, m.group(2)) for s, e, m in _iter_lines_matching(text, _MD_HEADING)]
    text = _strip_furniture(raw, meta.get("title"))
    return text, _find_plain_headings(text)


def heading_spans(doc: Document) -> list[tuple[int, int]]:
    """Character spans of the heading lines of ``doc`` (they are not sentences to cite)."""
    spans = []
    for section in doc.sections:
        line_end = doc.text.find("\n", section.start)
        line_end = len(doc.text) if line_end < 0 else line_end
        if _heading_text(doc.text[section.start : line_end]) == section.title:
            spans.append((section.start, line_end))
    return spans


def _heading_text(line: str) -> str:
    """A heading line without Markdown's leading (and optional closing) ``#`` marks."""
    match = _MD_HEADING.match(line.strip())
    return match.group(2).strip() if match else line.strip()


def _read_meta(path: Path) -> dict[str, Any]:
    meta_path = path.with_name(path.stem + ".meta.json")
    if not meta_path.exists():
        return {}
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorpusError(f"{meta_path}: invalid metadata JSON: {exc}") from exc
    if not isinstance(meta, dict):
        raise CorpusError(f"{meta_path}: metadata must be a JSON object")
    return meta


def _strip_furniture(text: str, title: str | None) -> str:
    """Drop leading navigation lines: up to the title line if known, else lines that look like menus."""
    lines = text.split("\n")
    start = 0
    if title:
        wanted = title.strip().casefold()
        for i, line in enumerate(lines[:15]):
            if line.strip().lstrip("#").strip().casefold() == wanted:
                start = i
                break
    if start == 0:
        while start < len(lines) and (not lines[start].strip() or _NAVIGATION.search(lines[start])):
            if lines[start].strip() and len(lines[start].strip()) > 120:
                break
            start += 1
    return "\n".join(lines[start:]).strip()


def _iter_lines_matching(text: str, pattern: re.Pattern[str]) -> list[tuple[int, int, re.Match[str]]]:
    out = []
    offset = 0
    for line in text.split("\n"):
        match = pattern.match(line)
        if match:
            out.append((offset, offset + len(line), match))
        offset += len(line) + 1
    return out


def _find_plain_headings(text: str) -> list[tuple[int, int, str]]:
    """Headings in plain text: short title-like lines of their own, followed by body text."""
    lines = text.split("\n")
    found = []
    offset = len(lines[0]) + 1  # the first line is the title, not a section heading
    for i in range(1, len(lines)):
        line = lines[i]
        stripped = line.strip()
        next_line = lines[i + 1].strip() if i + 1 < len(lines) else ""
        if (
            stripped
            and len(stripped) <= 100
            and len(stripped.split()) <= 12
            and not stripped.endswith(_SENTENCE_END)
            and (stripped[0].isupper() or stripped[0].isdigit())
            and not lines[i - 1].strip()
            and next_line
            and len(next_line) > len(stripped)
        ):
            found.append((offset, offset + len(line), stripped))
        offset += len(line) + 1
    return found


def _find_marked_headings(text: str, heading_texts: set[str]) -> list[tuple[int, int, str]]:
    found = []
    offset = 0
    first = True
    for line in text.split("\n"):
        if line.strip() in heading_texts and not first:
            found.append((offset, offset + len(line), line.strip()))
        first = first and not line.strip()
        offset += len(line) + 1
    return found


def _sections(text: str, title: str, headings: list[tuple[int, int, str]]) -> list[Section]:
    """Sections cover the whole text: a lead section under the document title, then one per heading."""
    sections: list[Section] = []
    starts = [h[0] for h in headings]
    if not starts or starts[0] > 0:
        sections.append(Section(title=title, start=0, end=starts[0] if starts else len(text)))
    for i, (start, _end, heading) in enumerate(headings):
        end = starts[i + 1] if i + 1 < len(starts) else len(text)
        sections.append(Section(title=heading, start=start, end=end))
    return sections


class _TextExtractor(HTMLParser):
    """HTML to text: block elements become line breaks, headings are remembered, scripts dropped."""

    _BLOCKS = frozenset(
        [
            "p",
            "div",
            "br",
            "li",
            "ul",
            "ol",
            "tr",
            "table",
            "section",
            "article",
            "header",
            "footer",
            "h1",
            "h2",
            "h3",
            "h4",
            "h5",
            "h6",
            "blockquote",
            "pre",
        ]
    )
    _SKIP = frozenset(["script", "style", "nav", "noscript", "template", "head"])

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self.headings: list[str] = []
        self._skip_depth = 0
        self._heading: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIP:
            self._skip_depth += 1
        elif tag in self._BLOCKS:
            self.parts.append("\n\n" if tag in ("p", "h1", "h2", "h3", "h4", "h5", "h6") else "\n")
        if tag in ("h1", "h2", "h3", "h4", "h5", "h6"):
            self._heading = []

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIP:
            self._skip_depth = max(0, self._skip_depth - 1)
        elif tag in ("h1", "h2", "h3", "h4", "h5", "h6") and self._heading is not None:
            heading = " ".join("".join(self._heading).split())
            if heading:
                self.headings.append(heading)
            self._heading = None
            self.parts.append("\n")
        elif tag in self._BLOCKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if self._skip_depth:
            return
        # Line breaks in HTML source are formatting; only block elements end a line. Keep one space
        # where the source had white space at an edge, so "<b>a</b> b" stays two words.
        core = " ".join(data.split())
        if not core:
            self.parts.append(" " if data else "")
            return
        lead = " " if data[0].isspace() else ""
        trail = " " if data[-1].isspace() else ""
        data = lead + core + trail
        self.parts.append(data)
        if self._heading is not None:
            self._heading.append(data)


def _html_to_text(raw: str) -> tuple[str, list[str]]:
    parser = _TextExtractor()
    parser.feed(raw)
    parser.close()
    text = "".join(parser.parts)
    lines = [" ".join(line.split()) for line in text.split("\n")]
    # Collapse runs of blank lines to one so paragraphs stay separated.
    out: list[str] = []
    for line in lines:
        if line or (out and out[-1]):
            out.append(line)
    headings = parser.headings
    # A heading line must be followed by its body directly, as in the plain-text layout.
    cleaned = "\n".join(out).strip()
    for heading in headings:
        cleaned = cleaned.replace(heading + "\n\n", heading + "\n")
    return cleaned, headings
