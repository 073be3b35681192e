"""What a document is called: a title that means something, and an id for it that is readable, ASCII and
unique in its corpus.

PDF and Word files often carry a title field their authors never set: "about:blank" (a browser's print to
PDF), "Microsoft Word - notes.docx", "untitled", a path on the author's machine. Such a title is junk:
:func:`clean_title` strips what word processors add and says "" when nothing meaningful is left, and
:func:`choose_title` then falls back to the document's first heading or line, then to its file name.

:func:`document_id` makes the id of a new document from its title, with non-ASCII letters spelled in
Latin ones (Beyoncé -> beyonce, Фокин -> fokin, 포럼 -> poreom); :func:`unique_id` gives a different
document whose id is taken a numbered one (``about-blank-2``).
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Container

from rag.ingest.transliteration import cyrillic_letter, hangul_syllable
from rag.text import strip_accents

MAX_ID_CHARS = 64
MAX_TITLE_CHARS = 200
#: A first line longer than this is a paragraph, not a title.
LONG_LINE = 150

# What word processors and printers put around a document's name in its title field.
_PREFIX = re.compile(r"^(?:microsoft\s+(?:office\s+)?(?:word|powerpoint|excel)|word|powerpoint)\s*[-–—:]\s*",
                     re.IGNORECASE)
_SUFFIX = re.compile(r"\.(?:docx?|pdf|rtf|odt|pages|pptx?|xlsx?|txt|md|html?)\s*$", re.IGNORECASE)
# Titles that name nothing: placeholders of editors and printers (with an optional number: "Document1").
_PLACEHOLDER = re.compile(
    r"^(?:untitled(?: document)?|no title|title|document|doc|new document|new microsoft word document|"
    r"microsoft word document|word document|pdf|pdf document|presentation|powerpoint presentation|slide|"
    r"unknown|none|null|n/?a|anonymous|blank|default|upload|file)(?:\s*[-_#]?\s*\d+)?$"
)
_PATH = re.compile(r"^(?:[a-z]:[\\/]|[\\/~]|\.{1,2}[\\/]|file:)|\\", re.IGNORECASE)
_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|about:|data:|blob:|www\.)", re.IGNORECASE)
_LIGATURES = {"ß": "ss", "æ": "ae", "œ": "oe", "ø": "o", "đ": "d", "ð": "d", "ł": "l", "þ": "th", "ı": "i"}


def _spaced(text: str) -> str:
    return " ".join(text.split())


def is_junk(title: str) -> bool:
    """Whether ``title`` names nothing: empty, no letter or digit, a placeholder ("untitled", "Document1"),
    a browser's "about:blank" or another URL, or a path ("C:\\Users\\…", "/home/…")."""
    text = _spaced(title)
    if not any(ch.isalnum() for ch in text):
        return True
    if _URL.match(text) or _PATH.search(text):
        return True
    if " " not in text and (text.count("/") >= 2 or re.search(r"/[^/]*\.\w{1,5}$", text)):
        return True  # "tmp/report.pdf", "a/b/c"; not "Korea/Russia"
    bare = text.strip("()[]<>\"'“”‘’«» .,;:-_").casefold()
    return bool(_PLACEHOLDER.match(bare))


def clean_title(raw: str | None) -> str:
    """``raw`` (a title field) without what word processors add ("Microsoft Word - ", ".docx"), spaces
    collapsed; "" when it is junk (:func:`is_junk`)."""
    text = _spaced(raw or "")
    if is_junk(text):
        return ""
    for _ in range(2):  # "Microsoft Word - Report.doc.pdf"
        text = _SUFFIX.sub("", _PREFIX.sub("", text)).strip()
    if not text or is_junk(text):
        return ""
    return text[:MAX_TITLE_CHARS].rstrip()


def title_from_name(stem: str) -> str:
    """A title from a file name's stem ("port_logistics-2024" -> "port logistics 2024"); "" if junk."""
    text = _spaced(re.sub(r"[_]+", " ", stem))
    if " " not in text:
        text = text.replace("-", " ")
    return clean_title(text)


def _cut(line: str, limit: int = 100) -> str:
    """``line`` cut at a word boundary before ``limit`` characters, with an ellipsis."""
    if len(line) <= limit:
        return line
    head = line[:limit].rsplit(" ", 1)[0].rstrip(" ,;:-–—")
    return f"{head or line[:limit]}…"


def choose_title(found: str | None, text: str, stem: str = "") -> str:
    """The title of a document whose metadata names none: the title its file gives (a PDF's title field or
    its largest first line, a Word document's Title paragraph) unless junk; else the first meaningful line
    of its text, if short enough to be a title; else its file name (``stem``); else the first line, cut."""
    title = clean_title(found)
    if title:
        return title
    lines = [line.strip().lstrip("#").strip() for line in text.strip().split("\n")]
    lines = [line for line in lines if line]
    for line in lines[:5]:
        if not is_junk(line):
            if len(line) <= LONG_LINE:
                return line
            break
    named = title_from_name(stem)
    if named:
        return named
    first = next((line for line in lines if not is_junk(line)), lines[0] if lines else "")
    return _cut(_spaced(first)) or "Untitled document"


def ascii_words(text: str) -> str:
    """``text`` in lower-case ASCII letters and digits, other characters as spaces: accents dropped
    (é -> e), Cyrillic transliterated (ф -> f) and Hangul romanized (한 -> han); letters of other scripts
    (Greek, Chinese…) are dropped."""
    out: list[str] = []
    for ch in unicodedata.normalize("NFC", text):
        latin = hangul_syllable(ch) or cyrillic_letter(ch) or _LIGATURES.get(ch.lower())
        if latin is None:
            latin = strip_accents(ch).lower()
        out.append(latin if latin.isascii() and latin.isalnum() else " ")
    return "".join(out)


def document_id(title: str, digest: str) -> str:
    """The id of a new document titled ``title``: its words in ASCII (:func:`ascii_words`) joined by
    ``-``, at most :data:`MAX_ID_CHARS` long; ``document-<12 hex digits of digest>`` when no letter or
    digit is left (or only the word "document")."""
    words = ascii_words(title).split()
    slug = ""
    for word in words:
        longer = f"{slug}-{word}" if slug else word
        if len(longer) > MAX_ID_CHARS:
            slug = slug or word[:MAX_ID_CHARS]
            break
        slug = longer
    return slug if slug and slug != "document" else f"document-{digest[:12]}"


def unique_id(base: str, taken: Container[str]) -> str:
    """``base``, or ``base-2``, ``base-3``… (kept within :data:`MAX_ID_CHARS`), the first not ``taken``."""
    if base not in taken:
        return base
    n = 2
    while True:
        suffix = f"-{n}"
        candidate = base[: MAX_ID_CHARS - len(suffix)].rstrip("-") + suffix
        if candidate not in taken:
            return candidate
        n += 1


def clean_new_title(raw: str) -> str:
    """A title an editor typed: spaces collapsed; a :class:`ValueError` when it is blank, longer than
    :data:`MAX_TITLE_CHARS` or holds control characters."""
    allowed = "\t\n\u200c\u200d"  # tabs and line breaks (made spaces), and the joiners of some scripts
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Cs", "Co", "Cn") and ch not in allowed for ch in raw):
        raise ValueError("title must not hold control or unassigned characters")
    title = _spaced(raw)
    if not title:
        raise ValueError("title must not be empty")
    if len(title) > MAX_TITLE_CHARS:
        raise ValueError(f"title is {len(title)} characters long; the limit is {MAX_TITLE_CHARS}")
    return title



def stem_id(stem: str) -> str:
    """The id of a corpus file without metadata, from its name's stem: lower-case letters (Latin, with
    accents dropped: beyoncé -> beyonce; Hangul and Cyrillic kept as they are) and digits joined by ``-``;
    "document" when none is left. The loader's rule and the store's (:func:`rag.ingest.store.file_id`)."""
    normal = "".join(
        strip_accents(ch) if unicodedata.name(ch, "").startswith("LATIN") else ch
        for ch in unicodedata.normalize("NFC", stem)
    )
    slug = re.sub(r"[^A-Za-z0-9가-힣А-Яа-яЁё]+", "-", normal).strip("-").lower()
    return slug or "document"
