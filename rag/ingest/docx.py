"""Load a Word document (.docx): body paragraphs and tables in order, headings from heading styles.

The text is built here from the body (python-docx); every citation offset indexes it. Paragraphs are
separated by a blank line, a heading is a line of its own followed by its body (the plain-text layout),
a table row is one line with its cells separated by tabs. Page headers, footers, footnotes and comments
live in other parts of the package and are not read (the furniture rule holds by construction). Word
has no fixed pages (the layout is the reader's), so a DOCX has none: its citations carry no page.

A .docx is a zip of XML: before python-docx opens it, the zip's directory is checked (member count,
expanded size, compression ratio: zip bombs) and every XML part is refused if it declares a DTD (Open
Packaging forbids them; a DTD is how entity bombs and external entities get in). python-docx's own
parser does not resolve entities either; this check refuses such files with a message instead.
"""

from __future__ import annotations

import io
import re
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from rag.ingest.extraction import (
    DocumentTooLarge,
    EncryptedDocument,
    Extraction,
    NotADocument,
    UnsafeDocument,
)

MAX_MEMBERS = 2000
MAX_EXPANDED_BYTES = 128 * 1024 * 1024
MAX_RATIO = 100  # a member over 1 MB that expands more than this is a bomb, not a document
MAX_CHARS = 5_000_000
_HEADING_STYLE = re.compile(r"^heading\s*(\d)$", re.IGNORECASE)


def load_docx(data: bytes, path: Path | str) -> Extraction:
    """The text, headings and title of a .docx; raises a DocumentRefused subclass."""
    _check_package(data, path)
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(data))
        blocks = list(document.iter_inner_content())
    except Exception as exc:  # python-docx and lxml raise many kinds on a damaged package
        raise NotADocument(path, f"not a readable Word document (.docx): {exc}") from exc

    parts: list[str] = []
    length = 0
    headings: list[tuple[int, int, str]] = []
    title: str | None = None
    last = ""
    for block in blocks:
        if isinstance(block, Paragraph):
            level = _heading_level(block)
            text = " ".join(block.text.split()) if level is not None else block.text.strip()
            kind = "heading" if level is not None else "text"
        elif isinstance(block, Table):
            text = "\n".join(_table_rows(block))
            kind = "text"
            level = None
        else:  # pragma: no cover - iter_inner_content yields only these two
            continue
        if not text.strip():
            continue
        separator = "" if not last else ("\n" if last == "heading" and kind == "text" else "\n\n")
        parts.append(separator)
        length += len(separator)
        if kind == "heading":
            headings.append((length, length + len(text), text))
            if level == 0 and title is None:
                title = text
        parts.append(text)
        length += len(text)
        last = kind
        if length > MAX_CHARS:
            raise DocumentTooLarge(
                path, f"this Word document holds over {MAX_CHARS:,} characters of text; that is the cap"
            )
    core_title = (document.core_properties.title or "").strip()
    return Extraction(text="".join(parts), headings=headings, title=title or core_title or None)


def _check_package(data: bytes, path: Path | str) -> None:
    """Refuse zip bombs, encrypted members and XML with a DTD, reading only what the caps allow."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise NotADocument(path, f"not a readable Word document: a damaged zip archive ({exc})") from exc
    with archive:
        members = archive.infolist()
        if len(members) > MAX_MEMBERS:
            raise DocumentTooLarge(
                path, f"this Word document has {len(members)} parts; at most {MAX_MEMBERS} are read"
            )
        expanded = sum(m.file_size for m in members)
        if expanded > MAX_EXPANDED_BYTES:
            raise DocumentTooLarge(
                path,
                f"this Word document expands to {expanded // (1024 * 1024)} MB; at most "
                f"{MAX_EXPANDED_BYTES // (1024 * 1024)} MB are read (a zip bomb?)",
            )
        for member in members:
            if member.flag_bits & 0x1:
                raise EncryptedDocument(
                    path, "this Word document is locked with a password: remove it, then add it"
                )
            if member.file_size > 1024 * 1024 and member.file_size > MAX_RATIO * max(1, member.compress_size):
                ratio = member.file_size // max(1, member.compress_size)
                raise DocumentTooLarge(
                    path,
                    f"part {member.filename!r} of this Word document expands {ratio} times "
                    f"(over {MAX_RATIO}): a zip bomb, not a document",
                )
        for member in members:
            if member.filename.endswith((".xml", ".rels")):
                try:
                    head = archive.read(member)
                except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
                    raise NotADocument(
                        path, f"not a readable Word document: part {member.filename!r} is damaged"
                    ) from exc
                if _declares_dtd(head):
                    raise UnsafeDocument(
                        path,
                        f"part {member.filename!r} of this Word document declares an XML DTD or entities, "
                        "which Word never writes (the way in of XML bombs and of reading files on the "
                        "server): refused",
                    )


def _declares_dtd(data: bytes) -> bool:
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        data = data.decode("utf-16", "replace").encode("utf-8")
    return b"<!DOCTYPE" in data or b"<!ENTITY" in data


def _heading_level(paragraph: Any) -> int | None:
    """0 for the Title style, n for "Heading n" (or an outline level n-1), None for body text."""
    from docx.oxml.ns import qn

    outline = paragraph._p.find(f"{qn('w:pPr')}/{qn('w:outlineLvl')}")
    if outline is not None and outline.get(qn("w:val"), "9").isdigit() and int(outline.get(qn("w:val"))) < 9:
        return int(outline.get(qn("w:val"))) + 1
    style = paragraph.style
    for _ in range(10):  # the style and what it is based on
        if style is None:
            return None
        name = (style.name or "").strip()
        if name.casefold() == "title":
            return 0
        match = _HEADING_STYLE.match(name)
        if match:
            return int(match.group(1))
        level = style.element.find(f"{qn('w:pPr')}/{qn('w:outlineLvl')}")
        if level is not None and level.get(qn("w:val"), "9").isdigit() and int(level.get(qn("w:val"))) < 9:
            return int(level.get(qn("w:val"))) + 1
        style = style.base_style
    return None


def _table_rows(table: Any) -> Iterator[str]:
    """Each row as one line of its cells' text, tab-separated (a merged cell once)."""
    for row in table.rows:
        cells = []
        seen: set[int] = set()
        for cell in row.cells:
            if id(cell._tc) in seen:
                continue
            seen.add(id(cell._tc))
            cells.append(" ".join(cell.text.split()))
        line = "\t".join(cells).strip()
        if line:
            yield line
