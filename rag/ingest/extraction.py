"""What a file reader hands back (:class:`Extraction`) and the ways it refuses a file.

Shared by the text/HTML/Markdown loader (loading.py) and the PDF and DOCX readers (pdf.py, docx.py), so
the readers need not import the loader that dispatches to them (which would be an import circle).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


class CorpusError(Exception):
    """A corpus file could not be read or understood; the message names the file."""


class DocumentRefused(CorpusError):
    """A file read and refused; ``reason`` says why to the person who gave it (without the path)."""

    def __init__(self, path: Path | str, reason: str) -> None:
        super().__init__(f"{path}: {reason}")
        self.reason = reason


class NotADocument(DocumentRefused):
    """The bytes are not a readable document of a supported kind (wrong content, damaged, truncated)."""


class EncryptedDocument(DocumentRefused):
    """The document is locked with a password."""


class NoTextLayer(DocumentRefused):
    """A PDF whose pages are images only (a scan): nothing to quote until it is run through OCR."""


class DocumentTooLarge(DocumentRefused):
    """Over a cap: bytes, pages, characters, expanded size, memory or time (bombs land here)."""


class UnsafeDocument(DocumentRefused):
    """A document that carries what a reader must not follow (XML DTDs and entities)."""


@dataclass(frozen=True, slots=True)
class Extraction:
    """What a PDF or DOCX reader made of a file: the text every offset indexes, its headings as
    ``(start, end, title)`` with ``text[start:end] == title``, the title it names, and page starts."""

    text: str
    headings: list[tuple[int, int, str]]
    title: str | None = None
    pages: tuple[int, ...] = ()
