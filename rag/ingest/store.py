"""The document store: add a file to the corpus folder, or remove one, safely and atomically.

An upload is checked before it touches the corpus: its size, its kind (decided by its bytes, and refused
when its name says another kind, see :mod:`rag.ingest.filetypes`), and that the loader can read it (it is
loaded from a private temporary folder first). It is stored under a name forum-qa chooses (``<id><suffix>``,
the id made from its title by :mod:`rag.ingest.naming`, numbered when another document has it), never the
client's file name, which is kept only as metadata. Both files of a document (the document and its
``.meta.json``) are written to temporary names, fsynced and renamed into place; the document's own
rename is the moment it joins the corpus, and removal is the reverse (the document leaves the corpus by
one rename, then both files are deleted). The index is not touched here: callers rebuild it.

Every refusal is a :class:`DocumentError` subclass with a message meant for the person uploading.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import tempfile
import threading
import time
import unicodedata
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from rag.ingest import naming
from rag.ingest.extraction import CorpusError
from rag.ingest.filetypes import SUFFIX, UnsupportedFile, detect_kind, name_mismatch
from rag.ingest.loading import SUPPORTED_SUFFIXES, load_document
from rag.types import Document

#: Written into the ``.meta.json`` of every document this module stores (see :func:`sweep`).
STORED_BY = "forumqa-documents"
MAX_ID_CHARS = naming.MAX_ID_CHARS
_TEMP_PREFIXES = (".upload-", ".removed-")
SUFFIX_KIND = {".txt": "txt", ".md": "md", ".markdown": "md", ".html": "html", ".htm": "html",
               ".pdf": "pdf", ".docx": "docx"}
_KIND_NAMES = {"pdf": "PDF", "docx": "Word (DOCX)", "html": "HTML", "md": "Markdown", "txt": "plain text"}
_LOCK = threading.Lock()  # one change at a time in this process; the file lock covers other processes


class DocumentError(Exception):
    """A document change was refused; the message says why, for the person who asked."""


class TooLarge(DocumentError):
    """The file is larger than the upload cap."""


class UnsupportedKind(DocumentError):
    """The bytes are no kind of document forum-qa reads (or not one this installation loads)."""


class Unreadable(DocumentError):
    """The file looks like a document of a supported kind but cannot be read (damaged, empty, hostile)."""


class Duplicate(DocumentError):
    """A document with this id, or with exactly these bytes, is already in the corpus."""


class NotFound(DocumentError):
    """No document of the corpus has this id."""


class LastDocument(DocumentError):
    """Removing this document would leave the corpus empty, and an empty corpus cannot be indexed."""


@dataclass(frozen=True, slots=True)
class StoredDocument:
    """A document of the corpus folder as the store sees it."""

    id: str
    title: str
    kind: str
    size: int
    file: str  # its file name inside the corpus folder
    original_filename: str = ""
    page_count: int | None = None  # pages of a paged document (PDF)
    collection: str | None = None  # the collection its metadata names (None: the default one)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


# ---------------------------------------------------------------------------------------- reading


def document_files(corpus_dir: Path) -> list[Path]:
    """The document files of the corpus (what :func:`rag.ingest.loading.load_corpus` loads), by name."""
    if not corpus_dir.is_dir():
        return []
    return sorted(p for p in corpus_dir.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES)


def meta_path(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


def _read_json(path: Path) -> dict[str, Any]:
    try:
        meta = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


def _meta(path: Path) -> dict[str, Any]:
    """The metadata beside document ``path`` ({} when there is none or it is not a JSON object)."""
    return _read_json(meta_path(path))


def file_id(path: Path) -> str:
    """The id :func:`rag.ingest.loading.load_document` gives the document in ``path``, without loading it."""
    meta_id = _meta(path).get("id")
    return str(meta_id) if meta_id else slug(path.stem)


def collection_in(path: Path) -> str | None:
    """The collection the metadata of document ``path`` names (None: none)."""
    value = _meta(path).get("collection")
    return value if isinstance(value, str) and value else None


def corpus_ids(corpus_dir: Path) -> dict[str, Path]:
    """Document id -> file, for every document of the corpus folder (cheap: reads metadata only)."""
    return {file_id(p): p for p in document_files(corpus_dir)}


def describe(doc: Document) -> dict[str, Any]:
    """The kind, size in bytes and page count of a loaded document, for lists.

    Documents this store wrote carry them in their metadata; for others they come from the file
    (kind by its bytes, size on disk) or, when the file is gone, from the text.
    """
    meta = doc.metadata
    kind, size = meta.get("kind"), meta.get("size")
    path = Path(doc.path) if doc.path else None
    if (kind is None or size is None) and path is not None and path.is_file():
        with contextlib.suppress(OSError, UnsupportedFile):
            size = size if size is not None else path.stat().st_size
            with path.open("rb") as fh:
                kind = kind or detect_kind(fh.read(4096), path.name)
    pages = meta.get("page_count")
    return {
        "kind": str(kind) if kind else (path.suffix.lstrip(".").lower() if path else "txt"),
        "size": int(size) if isinstance(size, int) else len(doc.text.encode("utf-8")),
        "page_count": len(doc.pages) if doc.pages else pages if isinstance(pages, int) else None,
    }


# ---------------------------------------------------------------------------------------- names


def slug(name: str) -> str:
    """The id of a file without metadata, from its stem: the rule :mod:`rag.ingest.loading` uses
    (:func:`rag.ingest.naming.stem_id`)."""
    return naming.stem_id(name)


def clean_filename(name: str) -> str:
    """The client's file name as metadata: its last path part, printable, at most 200 characters."""
    last = re.split(r"[\\/]", name or "")[-1]
    printable = "".join(ch for ch in last if unicodedata.category(ch)[0] not in "CZ" or ch == " ")
    return printable.strip()[:200]


# ---------------------------------------------------------------------------------------- changes


@contextlib.contextmanager
def _corpus_lock(corpus_dir: Path) -> Iterator[None]:
    """One change at a time per corpus folder, across threads and processes (server, CLI).

    The lock is taken on the folder itself, so no lock file ever appears among the documents.
    """
    with _LOCK:
        fd = os.open(corpus_dir, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)  # closing releases the lock


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` at ``path``, never seen half-written: a hidden temporary file, fsync, rename."""
    tmp = path.with_name(f".upload-{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tmp.open("wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_kind(data: bytes, filename: str) -> str:
    """The kind of ``data``; :class:`UnsupportedKind` when it is none this installation loads."""
    try:
        kind = detect_kind(data, filename)
    except UnsupportedFile as exc:
        raise UnsupportedKind(f"not a document forum-qa can read: {exc}") from exc
    mismatch = name_mismatch(kind, filename)
    if mismatch:
        raise UnsupportedKind(mismatch)
    if SUFFIX[kind] not in SUPPORTED_SUFFIXES:
        raise UnsupportedKind(
            f"this is a {_KIND_NAMES[kind]} file, which this installation cannot read yet; "
            f"accepted: {', '.join(accepted_kinds())}"
        )
    return kind


def accepted_kinds() -> list[str]:
    """The kinds an upload may be, as lower-case names (pdf, docx, html, md, txt)."""
    return [kind for kind, suffix in SUFFIX.items() if suffix in SUPPORTED_SUFFIXES]


def _trial_load(data: bytes, kind: str, filename: str = "") -> Document:
    """Load ``data`` from a private temporary folder, proving it parses before it joins the corpus. The
    file there is named after the client's (so a document whose title field is junk may be named after it)."""
    stem = clean_filename(filename).rsplit(".", 1)[0].strip(". ")[:100] or "document"
    with tempfile.TemporaryDirectory(prefix="forumqa-upload-") as tmp:
        path = Path(tmp) / f"{stem}{SUFFIX[kind]}"
        path.write_bytes(data)
        try:
            return load_document(path)
        except CorpusError as exc:
            # The loader names the file; the temporary path means nothing to the person uploading.
            message = str(exc).replace(f"{path}: ", "").replace(str(path), "the file")
            raise Unreadable(f"the {_KIND_NAMES[kind]} file cannot be read: {message}") from exc
        except (ValueError, OSError, MemoryError, RecursionError) as exc:
            # A hostile file may trip a parser in ways no loader anticipated; it is refused all the same.
            raise Unreadable(f"the {_KIND_NAMES[kind]} file cannot be read: {type(exc).__name__}") from exc


@dataclass(frozen=True)
class Prepared:
    """An upload that passed every check, with the id, kind and metadata it is stored under."""

    id: str
    title: str
    kind: str
    data: bytes
    sha256: str
    original_filename: str
    page_count: int | None
    collection: str | None = None  # who may read it (rag/accounts); None: the default collection

    @property
    def file_name(self) -> str:
        """Its name in a corpus folder: ``<id><suffix>``."""
        return f"{self.id}{SUFFIX[self.kind]}"

    def meta(self) -> dict[str, Any]:
        """The ``.meta.json`` stored beside it."""
        return {
            "id": self.id,
            "title": self.title,
            "source": "uploaded",
            "kind": self.kind,
            "size": len(self.data),
            "sha256": self.sha256,
            "original_filename": self.original_filename,
            "added": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "stored_by": STORED_BY,
            **({"page_count": self.page_count} if self.page_count else {}),
            **({"collection": self.collection} if self.collection else {}),
        }

    def stored(self) -> StoredDocument:
        return StoredDocument(self.id, self.title, self.kind, len(self.data), self.file_name,
                              self.original_filename, self.page_count, self.collection)


def prepare(data: bytes, filename: str, max_bytes: int, collection: str | None = None) -> Prepared:
    """Check an upload (size, kind by its bytes, that it loads) and name it; the one set of checks of
    every store (this folder store and the database store of :mod:`rag.index.pgstore`). ``collection``
    goes into its metadata, so the document carries it from the moment it joins the corpus.

    Raises :class:`TooLarge`, :class:`UnsupportedKind` or :class:`Unreadable`.
    """
    if len(data) > max_bytes:
        raise TooLarge(
            f"the file is {len(data)} bytes; the limit is {max_bytes} bytes (FORUMQA_MAX_UPLOAD_BYTES)"
        )
    if not data:
        raise Unreadable("the file is empty")
    kind = check_kind(data, filename)
    document = _trial_load(data, kind, filename)
    digest = hashlib.sha256(data).hexdigest()
    return Prepared(naming.document_id(document.title, digest), document.title, kind, data, digest,
                    clean_filename(filename), len(document.pages) or None, collection)


def load_prepared(prepared: Prepared) -> Document:
    """The document exactly as the loader reads it from a corpus folder (file and metadata), with no path."""
    return load_stored(prepared.data, prepared.file_name, prepared.meta())


def load_stored(data: bytes, file_name: str, meta: dict[str, Any]) -> Document:
    """The document the loader reads from file ``file_name`` holding ``data`` with metadata ``meta``
    (in a private temporary folder), with no path."""
    with tempfile.TemporaryDirectory(prefix="forumqa-upload-") as tmp:
        path = Path(tmp) / file_name
        meta_path(path).write_text(json.dumps(meta, ensure_ascii=False, indent=2), encoding="utf-8")
        path.write_bytes(data)
        return replace(load_document(path), path="")


def free_id(prepared: Prepared, ids: set[str], names: set[str]) -> Prepared:
    """``prepared`` under an id no other document has (``ids``) and whose file name is not taken
    (``names``: stems of the corpus's files): its own, else numbered (``about-blank-2``). A different
    file is never refused for its title."""
    doc_id = naming.unique_id(prepared.id, ids | names)
    return prepared if doc_id == prepared.id else replace(prepared, id=doc_id)


def add(corpus_dir: Path, data: bytes, filename: str, max_bytes: int,
        collection: str | None = None) -> StoredDocument:
    """Store ``data`` (named ``filename`` by the client) in ``corpus_dir``, in ``collection``; the new
    document.

    Raises :class:`TooLarge`, :class:`UnsupportedKind`, :class:`Unreadable` or :class:`Duplicate` (the
    same bytes are already there; nothing is written then). A different file whose title gives an id
    already used gets a numbered one (:func:`free_id`).
    """
    prepared = prepare(data, filename, max_bytes, collection)
    digest = prepared.sha256
    with _corpus_lock(corpus_dir):
        existing = corpus_ids(corpus_dir)
        for other_id, path in existing.items():
            if path.stat().st_size == len(data) and hashlib.sha256(path.read_bytes()).hexdigest() == digest:
                raise Duplicate(f"this file is already in the corpus as document {other_id!r}")
        prepared = free_id(prepared, set(existing), {p.stem for p in document_files(corpus_dir)})
        path = corpus_dir / prepared.file_name
        # The metadata first: the document's rename is the moment it joins the corpus, complete.
        meta = json.dumps(prepared.meta(), ensure_ascii=False, indent=2)
        _write_atomically(meta_path(path), meta.encode("utf-8"))
        _write_atomically(path, data)
        _fsync_dir(corpus_dir)
    return prepared.stored()


def remove(corpus_dir: Path, doc_id: str) -> StoredDocument:
    """Remove document ``doc_id`` (its file and its ``.meta.json``) from ``corpus_dir``.

    Raises :class:`NotFound`, or :class:`LastDocument` when it is the only document.
    """
    with _corpus_lock(corpus_dir):
        existing = corpus_ids(corpus_dir)
        path = existing.get(doc_id)
        if path is None:
            raise NotFound(f"no document with id {doc_id!r} in the corpus")
        if len(existing) == 1:
            raise LastDocument(
                f"{doc_id!r} is the only document; add another before removing it (an empty corpus "
                "cannot be indexed)"
            )
        meta = _meta(path)
        size = path.stat().st_size
        kind = str(meta.get("kind") or SUFFIX_KIND.get(path.suffix.lower(), "txt"))
        trash = path.with_name(f".removed-{uuid.uuid4().hex[:12]}.tmp")
        # One rename takes the document out of the corpus; its metadata alone is ignored by the loader.
        os.replace(path, trash)
        meta_path(path).unlink(missing_ok=True)
        trash.unlink(missing_ok=True)
        _fsync_dir(corpus_dir)
    return stored_document(doc_id, str(meta.get("title") or doc_id), kind, size, path.name, meta)


def stored_document(doc_id: str, title: str, kind: str, size: int, file: str, meta: object,
                    original_filename: str | None = None) -> StoredDocument:
    """The document as a store reports it, its pages, collection and (unless given) original file name read
    from its metadata; both stores report removals and renames through it."""
    meta = meta if isinstance(meta, dict) else {}
    pages = meta.get("page_count")
    collection = meta.get("collection")
    original = str(meta.get("original_filename", "")) if original_filename is None else original_filename
    return StoredDocument(doc_id, title, kind, size, file, original,
                          pages if isinstance(pages, int) else None,
                          collection if isinstance(collection, str) and collection else None)


def new_title(title: str) -> str:
    """``title`` as a rename stores it (:func:`rag.ingest.naming.clean_new_title`); :class:`Unreadable`
    when it is blank, overlong or holds control characters. Both stores' renames check it so."""
    try:
        return naming.clean_new_title(title)
    except ValueError as exc:
        raise Unreadable(str(exc)) from None


def rename(corpus_dir: Path, doc_id: str, title: str) -> StoredDocument:
    """Give document ``doc_id`` the title ``title`` (its id stays): written to its ``.meta.json`` (made
    when it has none), which a rebuild reads. Raises :class:`NotFound`, or :class:`Unreadable` for a
    blank or overlong title (:func:`new_title`)."""
    title = new_title(title)
    with _corpus_lock(corpus_dir):
        path = corpus_ids(corpus_dir).get(doc_id)
        if path is None:
            raise NotFound(f"no document with id {doc_id!r} in the corpus")
        meta = {**_meta(path), "id": doc_id, "title": title}
        _write_atomically(meta_path(path), json.dumps(meta, ensure_ascii=False, indent=2).encode("utf-8"))
        _fsync_dir(corpus_dir)
        size = path.stat().st_size
    kind = str(meta.get("kind") or SUFFIX_KIND.get(path.suffix.lower(), "txt"))
    return stored_document(doc_id, title, kind, size, path.name, meta)


def sweep(corpus_dir: Path) -> list[str]:
    """Delete what an interrupted change left behind: temporary files, and metadata this store wrote
    for a document that never arrived (or was removed). Returns the names deleted."""
    if not corpus_dir.is_dir():
        return []
    removed = []
    with _corpus_lock(corpus_dir):
        documents = {p.stem for p in document_files(corpus_dir)}
        for path in corpus_dir.iterdir():
            orphan = (
                path.name.endswith(".meta.json")
                and path.name.removesuffix(".meta.json") not in documents
                and _read_json(path).get("stored_by") == STORED_BY
            )
            if path.is_file() and (path.name.startswith(_TEMP_PREFIXES) or orphan):
                path.unlink(missing_ok=True)
                removed.append(path.name)
    return removed
