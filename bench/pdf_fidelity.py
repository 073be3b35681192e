"""``python -m bench.pdf_fidelity``: how faithfully each PDF library extracts text whose source is known.

Why: the PDF loader's library was chosen on these numbers (issue 11), not by habit. For each PDF of
tests/data with a known source text (the report, in one and in two hyphenated columns, converted by
LibreOffice; Debian's shared-mime-info spec with its HTML source) and each library, it prints:

* ``words``: word-sequence similarity to the source (difflib ratio over words; order matters, so
  interleaved columns or lines lose), 1.0 = same words in the same order;
* ``chars``: the same over characters with white space collapsed;
* ``split``: words of the extraction cut by a line-end hyphen (``strengthen-`` ``ing``, or
  ``strengthen-ing``) per 1,000 source words: what a reader or a search for "strengthening" trips on;
* ``joined``: hard hyphens lost (``KoreaRussia`` printed as ``Korea-`` / ``Russia``) per 1,000 source
  words: what de-hyphenating without knowing soft from hard hyphens does;
* ``furniture``: lines of the running header/footer left in the text (before the loader removes
  repeated lines), per page;
* ``ms/page``: median extraction time of three runs.

pypdf, pdfminer.six and pypdfium2 are the candidates, each as its plain text call; ``rag.ingest.pdf``
is the loader built on the chosen one (child process included, furniture removed); poppler's
``pdftotext`` (when on PATH) is a reference, not a candidate (a program, not a library).
"""

from __future__ import annotations

import difflib
import itertools
import re
import shutil
import statistics
import subprocess
import sys
import time
import unicodedata
from collections.abc import Callable
from pathlib import Path

DATA = Path(__file__).resolve().parent.parent / "tests" / "data"
sys.path.insert(0, str(DATA))


def _pypdf(path: Path) -> list[str]:
    from pypdf import PdfReader

    return [page.extract_text() for page in PdfReader(path).pages]


def _pdfminer(path: Path) -> list[str]:
    from pdfminer.high_level import extract_pages
    from pdfminer.layout import LTTextContainer

    return [
        "".join(element.get_text() for element in page if isinstance(element, LTTextContainer))
        for page in extract_pages(path)
    ]


def _pdfium(path: Path) -> list[str]:
    import pypdfium2 as pdfium

    pdf = pdfium.PdfDocument(path)
    try:
        # U+FFFE is PDFium's mark for a hyphen it found at a line end (the line break dropped).
        return [pdf[i].get_textpage().get_text_range().replace("\ufffe", "-") for i in range(len(pdf))]
    finally:
        pdf.close()


def _pdftotext(path: Path) -> list[str]:
    out = subprocess.run(["pdftotext", "-enc", "UTF-8", str(path), "-"], capture_output=True, check=True)
    return out.stdout.decode("utf-8").split("\f")


def _loader(path: Path) -> list[str]:
    """The loader's text (pypdfium2 in its child process, furniture removed), cut at its page starts."""
    from rag.ingest.pdf import load_pdf

    extraction = load_pdf(path.read_bytes(), path)
    bounds = [*list(extraction.pages), len(extraction.text)]
    return [extraction.text[a:b] for a, b in itertools.pairwise(bounds)]


LIBRARIES: dict[str, Callable[[Path], list[str]]] = {
    "pypdf": _pypdf,
    "pdfminer.six": _pdfminer,
    "pypdfium2": _pdfium,
    "rag.ingest.pdf": _loader,
}
if shutil.which("pdftotext"):
    LIBRARIES["(pdftotext)"] = _pdftotext


def _normalize(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).replace("\u00ad", "")
    text = text.translate(str.maketrans("‘’“”–—", "''\"\"--"))
    return " ".join(text.split())


def _sources() -> dict[str, tuple[str, list[str]]]:
    """PDF name -> (source text, furniture line patterns)."""
    from make_files import FOOTER, HEADER, report_parts

    from rag.ingest.loading import _html_to_text

    title, parts = report_parts()
    report = "\n".join([title] + [text for text, _ in parts])
    furniture = [re.escape(HEADER), re.escape(FOOTER.strip()) + r"\s*\d+"]
    out = {"report.pdf": (report, furniture), "report-columns.pdf": (report, furniture)}
    html = DATA / "shared-mime-info-spec-html"
    if html.is_dir():
        # The HTML pages in reading order, without their Prev/Next navigation (not in the PDF).
        pages = [(html / f"{n}.html").read_text(encoding="utf-8") for n in ("index", "x34", "x497", "b518")]
        pages = [re.sub(r'(?is)<div\s+class="nav(header|footer)".*?</div\s*>', "", p) for p in pages]
        spec = "\n".join(_html_to_text(p)[0] for p in pages)
        out["shared-mime-info-spec.pdf"] = (spec, [r"Shared MIME-info Database"])
    return out


def _split_words(extracted: str, source_words: set[str]) -> int:
    """Words cut by a line-end hyphen: ``strengthen-`` ``ing`` or ``strengthen-ing`` (not Korea-Russia)."""
    tokens = [_edges(t) for t in extracted.split()]
    apart = sum(
        1
        for a, b in itertools.pairwise(tokens)
        if a.endswith("-") and a[:-1] + b in source_words and a + b not in source_words
    )
    together = sum(
        1
        for t in tokens
        if "-" in t.strip("-") and t not in source_words and t.replace("-", "") in source_words
    )
    return apart + together


def _edges(token: str) -> str:
    return token.strip(".,;:!?()[]\"'")


def measure(name: str, source: str, furniture: list[str]) -> list[tuple[str, ...]]:
    path = DATA / name
    src_norm = _normalize(source)
    src_words = src_norm.split()
    vocabulary = {_edges(w) for w in src_words}
    rows = []
    for library, extract in LIBRARIES.items():
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            pages = extract(path)
            times.append(time.perf_counter() - t0)
        text = "\n".join(pages)
        norm = _normalize(text)
        words = difflib.SequenceMatcher(None, src_words, norm.split(), autojunk=False).ratio()
        chars = (
            difflib.SequenceMatcher(None, src_norm, norm, autojunk=False).ratio()
            if len(src_norm) < 30000
            else float("nan")
        )
        split = _split_words(text, vocabulary) * 1000 / len(src_words)
        hard = {w.replace("-", ""): w for w in vocabulary if "-" in w.strip("-")}
        joined = sum(1 for t in norm.split() if _edges(t) in hard and _edges(t) not in vocabulary)
        joined_rate = joined * 1000 / len(src_words)
        lines = [line.strip() for line in text.splitlines()]
        leaked = sum(1 for line in lines for pattern in furniture if re.fullmatch(pattern, line))
        ms = statistics.median(times) * 1000 / max(1, len(pages))
        rows.append(
            (
                name,
                library,
                f"{words:.3f}",
                f"{chars:.3f}",
                f"{split:.1f}",
                f"{joined_rate:.1f}",
                f"{leaked / len(pages):.1f}",
                f"{ms:.1f}",
            )
        )
    return rows


def main() -> None:
    header = ("pdf", "library", "words", "chars", "split/1k", "joined/1k", "furniture/page", "ms/page")
    rows = [header]
    for name, (source, furniture) in _sources().items():
        rows.extend(measure(name, source, furniture))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header))]
    for i, row in enumerate(rows):
        print("| " + " | ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)) + " |")
        if i == 0:
            print("| " + " | ".join("-" * w for w in widths) + " |")


if __name__ == "__main__":
    main()
