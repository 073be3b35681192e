"""What kind of document a file is, decided by its bytes; and whether its name says otherwise.

The bytes decide what a file is; between the plain-text kinds (HTML fragments, Markdown, plain text),
which no bytes tell apart, the name's suffix decides. A name that says another kind than the bytes hold
(``fake.pdf`` holding text, ``notes.txt`` holding a PDF) gets the file refused (:func:`name_mismatch`):
a person who named it so expects something else than what forum-qa would read. A name without a
document suffix (none, or one forum-qa does not know) leaves it to the bytes. Names are never used as
paths here.
"""

from __future__ import annotations

import io
import zipfile
from typing import Literal

Kind = Literal["pdf", "docx", "html", "md", "txt"]

#: The suffix a stored file of each kind gets in the corpus folder.
SUFFIX: dict[str, str] = {"pdf": ".pdf", "docx": ".docx", "html": ".html", "md": ".md", "txt": ".txt"}

_SNIFF = 2048
_HTML_MARKS = (b"<!doctype html", b"<html", b"<head", b"<body")
_MD_SUFFIXES = (".md", ".markdown")


#: What each kind is called in a sentence.
KIND_NAMES: dict[str, str] = {"pdf": "a PDF", "docx": "a Word document (.docx)", "html": "a web page (HTML)",
                              "md": "plain text", "txt": "plain text"}
_TEXT = frozenset({"html", "md", "txt"})
#: The kinds each document suffix may hold: the text suffixes any text (a .txt of HTML is read as text).
_NAMED: dict[str, frozenset[str]] = {
    ".pdf": frozenset({"pdf"}), ".docx": frozenset({"docx"}),
    **{suffix: _TEXT for suffix in (".txt", ".md", ".markdown", ".html", ".htm")},
}


class UnsupportedFile(ValueError):
    """The bytes are no kind of document forum-qa reads; the message says what they look like."""


def detect_kind(data: bytes, filename: str = "") -> Kind:
    """The document kind of ``data``; ``filename`` only chooses between Markdown and plain text."""
    head = data[:_SNIFF]
    if head.startswith(b"%PDF-") or (b"%PDF-" in head[:1024] and not _is_text(head)):
        return "pdf"
    if head.startswith(b"PK\x03\x04"):
        return _zip_kind(data)
    if head.startswith((b"\xd0\xcf\x11\xe0", b"{\\rtf")):
        raise UnsupportedFile("an old Word (.doc) or RTF file: save it as .docx or PDF")
    if not _is_text(head):
        raise UnsupportedFile("binary data that is neither PDF nor DOCX")
    lowered = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if lowered.startswith(_HTML_MARKS) or any(mark in lowered[:1024] for mark in _HTML_MARKS[:2]):
        return "html"
    return "md" if filename.lower().endswith(_MD_SUFFIXES) else "txt"


def _zip_kind(data: bytes) -> Kind:
    # Only the central directory is read here (names, not contents), so a zip bomb costs nothing yet.
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = set(archive.namelist())
    except (zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UnsupportedFile(f"a damaged zip archive ({exc})") from exc
    if "word/document.xml" in names:
        return "docx"
    raise UnsupportedFile("a zip archive that is not a Word document (.docx)")


def _is_text(head: bytes) -> bool:
    """UTF-8 (a character cut at the sniff boundary is fine) with no NUL bytes."""
    if b"\x00" in head:
        return False
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as exc:
        return exc.start >= len(head) - 3 and exc.reason == "unexpected end of data"
    return True


def name_mismatch(kind: str, filename: str) -> str | None:
    """Why ``filename`` does not fit content of ``kind`` (its suffix names another kind), or None."""
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
    allowed = _NAMED.get(suffix)
    if allowed is None or kind in allowed:
        return None
    fits = SUFFIX[kind]
    return (f"the name says {suffix} but the content is {KIND_NAMES[kind]}: name the file {fits} if that is "
            f"what it is, or give the {suffix} file itself")
