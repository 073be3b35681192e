"""The PDF reader's child process: PDFium pulls text lines out of PDF bytes read from stdin.

Run only by :mod:`rag.ingest.pdf`, as ``python -I rag/ingest/pdf_worker.py MAX_PAGES MAX_CHARS MAX_BYTES
MAX_CPU_S``. It puts itself under that memory (address space) and CPU limit before reading a byte, so
a hostile PDF (a decompression bomb, a page tree of a billion pages, a file that crashes the C++
parser) costs a dead child and a clear refusal, never the server. It imports nothing from ``rag`` (it
runs as a script) and writes one JSON object to stdout:

    {"pages": [[[text, font_size, top, baseline, left, last_baseline, right, cut, hyphens], ...], ...],
     "outline": [[level, title, page]],
     "title": str}
or  {"error": "encrypted" | "unreadable" | "pages" | "chars", "detail": str}

Lines are PDFium's, in its reading order (the content stream's, which follows columns in the files
measured). A line-end hyphen PDFium recognises (it reports U+0002, shown as U+FFFE, and drops the line
break) is kept, and the word's rest joins it on that line: ``strengthen-ing``, ``Korean-Russian``. PDFium
cannot tell a soft hyphen from a hard one there, so removing it would corrupt the hard ones (a hard
hyphen is the more common in this corpus: Korea-Russia); keeping it loses no character the page shows.
"""

from __future__ import annotations

import ctypes
import json
import sys
from typing import Any


class _LineBuilder:
    """The characters of the line being read, with their boxes and a sample of their font sizes."""

    def __init__(self) -> None:
        self.chars: list[str] = []
        self.boxes: list[tuple[float, float, float, float]] = []
        self.sizes: list[float] = []
        self.hyphens: list[int] = []  # where in the line's text PDFium found line-end hyphens
        self.baseline = 0.0  # of the first glyph
        self.last_baseline = 0.0  # of the visual line the line ends on (after a line-end hyphen)
        self.continued = False  # a line-end hyphen was just read: the next glyph starts a visual line
        self.joining = False  # the rest of a hyphen-cut word is being read onto this line

    def close(self, lines: list[list[Any]], cut: bool = False) -> None:
        """Append the line (text, size, top, baseline, left, last baseline, right, cut, hyphens)."""
        text = "".join(self.chars).rstrip()
        if text.strip() and self.boxes:
            self.sizes.sort()
            size = self.sizes[len(self.sizes) // 2] if self.sizes else 0.0
            top = max(b[3] for b in self.boxes)
            left = min(b[0] for b in self.boxes)
            baselines = round(self.baseline, 2), round(self.last_baseline, 2)
            right = max(b[1] for b in self.boxes)
            edges = round(top, 2), baselines[0], round(left, 2), baselines[1], round(right, 2)
            lines.append([text, size, *edges, cut, list(self.hyphens)])
        self.joining = self.continued = False
        self.chars.clear()
        self.boxes.clear()
        self.sizes.clear()
        self.hyphens.clear()


def extract(data: bytes, max_pages: int, max_chars: int) -> dict[str, Any]:
    import pypdfium2 as pdfium
    import pypdfium2.raw as raw

    try:
        pdf = pdfium.PdfDocument(data)
    except pdfium.PdfiumError as exc:
        if "password" in str(exc).lower():
            return {"error": "encrypted", "detail": str(exc)}
        return {"error": "unreadable", "detail": str(exc)}
    n_pages = len(pdf)
    if n_pages > max_pages:
        return {"error": "pages", "detail": str(n_pages)}
    outline = []
    for bookmark in pdf.get_toc(max_depth=8):
        dest = bookmark.get_dest()
        page = dest.get_index() if dest is not None else None
        if page is not None:
            outline.append([bookmark.level, bookmark.get_title(), page])
    title = str(pdf.get_metadata_dict().get("Title") or "")
    pages: list[list[list[Any]]] = []
    total = 0
    left, right, bottom, top = (ctypes.c_double() for _ in range(4))
    for index in range(n_pages):
        textpage = pdf[index].get_textpage()
        count = textpage.count_chars()
        total += count
        if total > max_chars:
            return {"error": "chars", "detail": str(total)}
        lines: list[list[Any]] = []
        line = _LineBuilder()
        for i in range(count):
            code = raw.FPDFText_GetUnicode(textpage.raw, i)
            if code in (0x2, 0xFFFE):  # PDFium's line-end hyphen: keep it, and the word whole on one line
                line.hyphens.append(len("".join(line.chars)))
                line.chars.append("-")
                line.continued = line.joining = True
                continue
            char = chr(code) if 0 < code < 0x110000 and not 0xD800 <= code < 0xE000 else "\ufffd"
            if char in "\r\n":
                if char == "\n" or not raw.FPDFText_IsGenerated(textpage.raw, i):
                    line.close(lines)
                continue
            if line.joining and char.isspace():  # the cut word is whole: end the line after it
                line.close(lines, cut=True)  # (the next line goes on on the same visual line)
                continue
            if char.isspace():
                line.chars.append(char)
                continue
            byref = [ctypes.byref(v) for v in (left, right, bottom, top)]
            if not raw.FPDFText_GetCharBox(textpage.raw, i, *byref):
                line.chars.append(char)
                continue
            box = (left.value, right.value, bottom.value, top.value)
            if line.continued or not line.boxes:  # a visual line's baseline is its first glyph's origin
                raw.FPDFText_GetCharOrigin(textpage.raw, i, ctypes.byref(left), ctypes.byref(bottom))
                size = raw.FPDFText_GetFontSize(textpage.raw, i)
                drop = line.last_baseline - bottom.value
                if line.continued and not 0 < drop < 2.5 * max(size, 1.0):
                    # After the hyphen comes a footer, another column or page: not the word's rest.
                    line.close(lines)
                if not line.boxes:
                    line.baseline = bottom.value
                line.last_baseline = bottom.value
                line.continued = False
            line.chars.append(char)
            line.boxes.append(box)
            if len(line.boxes) % 4 == 1:  # a sample of sizes is enough for the line's median
                line.sizes.append(round(raw.FPDFText_GetFontSize(textpage.raw, i), 2))
        line.close(lines)
        pages.append(lines)
    return {"pages": pages, "outline": outline, "title": title}


def main() -> None:
    import resource

    max_pages, max_chars, max_bytes, max_cpu = (int(arg) for arg in sys.argv[1:5])
    # Set here, not by the parent's preexec_fn, which is unsafe in a threaded server.
    resource.setrlimit(resource.RLIMIT_AS, (max_bytes, max_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (max_cpu, max_cpu))
    data = sys.stdin.buffer.read()
    result = extract(data, max_pages, max_chars)
    sys.stdout.write(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    main()
