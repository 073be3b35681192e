"""Content hashes (sha256) of files and texts: model weights, corpus files, index files, cache keys."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file's bytes, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    """Hex sha256 of ``text`` encoded as UTF-8."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def content_id(*parts: object) -> str:
    """A short stable id (16 hex digits of sha256) of ``parts``, written as JSON so that no two different
    lists of parts give the same text: e.g. an answer's id from its build, question, history and text."""
    text = json.dumps(parts, ensure_ascii=False, separators=(",", ":"), default=str)
    return sha256_text(text)[:16]
