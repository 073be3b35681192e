"""Make the PDF and DOCX fixtures of tests/data (committed, so CI needs no LibreOffice).

    python tests/data/make_files.py          # needs python-docx and LibreOffice (soffice) on PATH

What each file is:

* ``report.docx``, ``report.pdf``: the forum report (corpus/third-korea-russia-forum.txt) written as
  a Word document by python-docx (Title, Heading 1 for its sections, a running header and a footer
  with the page number), then converted by LibreOffice headless, the way a user's office suite
  would: the DOCX is LibreOffice's re-save, the PDF its export (with bookmarks from the headings).
* ``report-columns.pdf``: the same text in two justified columns with automatic hyphenation
  (LibreOffice, hyphen-en-us patterns), to measure reading order and de-hyphenation.
* ``scan.pdf``: page 1 of report.pdf rendered to a grey image and wrapped as an image-only PDF,
  what a scanner gives: no text layer.
* ``shared-mime-info-spec.pdf`` is not made here: it is copied from Debian's shared-mime-info
  package (/usr/share/doc/shared-mime-info/, GPL-2+, (C) Thomas Leonard), with its HTML source
  (its pages copied to ``shared-mime-info-spec-html/``): a PDF of foreign make (DocBook through
  LaTeX, pdfTeX: running headers, page numbers, bookmarks) whose text is known.

The hostile files (encrypted, truncated, bombs) are made at test time by the functions below, since
some are large once expanded and all are cheap to make.
"""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
REPORT = REPO / "corpus" / "third-korea-russia-forum.txt"
HEADER = "Korea Foundation Newsletter"
FOOTER = "Third Korea-Russia Forum · page "
FOREIGN_PDF = Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.pdf")
FOREIGN_HTML = Path("/usr/share/doc/shared-mime-info/shared-mime-info-spec.html")


def report_parts() -> tuple[str, list[tuple[str, bool]]]:
    """The report's title and its paragraphs as (text, is_heading), as the text loader reads them."""
    sys.path.insert(0, str(REPO))
    from rag.ingest.loading import load_document

    doc = load_document(REPORT)
    heading_starts = {s.start for s in doc.sections[1:]}
    parts: list[tuple[str, bool]] = []
    offset = 0
    for line in doc.text.split("\n"):
        if line.strip() and offset > 0:
            parts.append((line.strip(), offset in heading_starts))
        offset += len(line) + 1
    return doc.title, parts


def _add_field(paragraph: object, instruction: str) -> None:
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls

    paragraph._p.append(  # type: ignore[attr-defined]
        parse_xml(
            f'<w:fldSimple {nsdecls("w")} w:instr="{instruction}"><w:r><w:t>1</w:t></w:r></w:fldSimple>'
        )
    )


def write_source_docx(path: Path, columns: int = 1) -> None:
    """The report as python-docx writes it: the input LibreOffice converts."""
    import docx
    from docx.enum.text import WD_ALIGN_PARAGRAPH
    from docx.oxml import parse_xml
    from docx.oxml.ns import nsdecls
    from docx.shared import Pt

    title, parts = report_parts()
    document = docx.Document()
    document.styles["Normal"].font.size = Pt(10 if columns > 1 else 11)
    section = document.sections[0]
    section.header.paragraphs[0].text = HEADER
    footer = section.footer.paragraphs[0]
    footer.text = FOOTER
    _add_field(footer, "PAGE")
    if columns > 1:
        section._sectPr.append(parse_xml(f'<w:cols {nsdecls("w")} w:num="{columns}" w:space="454"/>'))
        settings = document.settings.element
        settings.append(parse_xml(f'<w:autoHyphenation {nsdecls("w")} w:val="true"/>'))
    document.add_paragraph(title, style="Title")
    for text, is_heading in parts:
        if is_heading:
            document.add_heading(text, level=1)
        else:
            paragraph = document.add_paragraph(text)
            if columns > 1:
                paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
    document.core_properties.title = title
    document.save(str(path))


def soffice(source: Path, target_format: str, out_dir: Path) -> Path:
    """Convert with LibreOffice headless; returns the file it wrote."""
    exe = shutil.which("soffice") or shutil.which("libreoffice")
    if exe is None:
        raise SystemExit("LibreOffice (soffice) is needed: apt-get install libreoffice-writer-nogui")
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                exe,
                f"-env:UserInstallation=file://{profile}",
                "--headless",
                "--convert-to",
                target_format,
                "--outdir",
                str(out_dir),
                str(source),
            ],
            check=True,
            capture_output=True,
            timeout=180,
        )
    suffix = "." + target_format.split(":")[0]
    return out_dir / (source.stem + suffix)


# ------------------------------------------------------------------------- raw PDF for the odd files


def raw_pdf(objects: list[bytes], root: int = 1) -> bytes:
    """A PDF from numbered object bodies (object i+1 is objects[i]) with a correct xref table."""
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root %d 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, root, xref)
    )
    return out.getvalue()


def _stream(data: bytes, extra: bytes = b"", compress: bool = True) -> bytes:
    if compress:
        data = zlib.compress(data, 9)
        extra += b" /Filter /FlateDecode"
    return b"<< /Length %d%s >>\nstream\n" % (len(data), extra) + data + b"\nendstream"


def image_only_pdf(gray: bytes, width: int, height: int) -> bytes:
    """One page showing a grey image and nothing else: no fonts, no text operators."""
    content = b"q %d 0 0 %d 0 0 cm /Im0 Do Q" % (width, height)
    image = _stream(
        gray,
        b" /Type /XObject /Subtype /Image /Width %d /Height %d /ColorSpace /DeviceGray"
        b" /BitsPerComponent 8" % (width, height),
    )
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 %d %d] /Contents 4 0 R"
            b" /Resources << /XObject << /Im0 5 0 R >> >> >>" % (width, height),
            _stream(content),
            image,
        ]
    )


def page_tree_bomb(fanout: int = 10, depth: int = 9) -> bytes:
    """A few hundred bytes that claim ``fanout ** depth`` pages: each level's Kids repeat one node."""
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>"]
    count = fanout**depth
    for level in range(depth):
        number = 2 + level
        kids = b" ".join([b"%d 0 R" % (number + 1)] * fanout)
        parent = b"" if level == 0 else b" /Parent %d 0 R" % (number - 1)
        objects.append(b"<< /Type /Pages /Kids [%s] /Count %d%s >>" % (kids, count, parent))
        count //= fanout
    leaf = 2 + depth
    font = leaf + 2
    objects.append(
        b"<< /Type /Page /Parent %d 0 R /MediaBox [0 0 200 200] /Contents %d 0 R"
        b" /Resources << /Font << /F1 %d 0 R >> >> >>" % (leaf - 1, leaf + 1, font)
    )
    objects.append(_stream(b"BT /F1 12 Tf 20 100 Td (Same page again.) Tj ET"))
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    return raw_pdf(objects)


def many_pages_pdf(pages: int) -> bytes:
    """A valid PDF of ``pages`` small pages (all showing one shared content stream)."""
    first_page = 5
    kids = b" ".join(b"%d 0 R" % (first_page + i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
        _stream(b"BT /F1 12 Tf 20 100 Td (Another page.) Tj ET"),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    page = (
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 3 0 R"
        b" /Resources << /Font << /F1 4 0 R >> >> >>"
    )
    objects.extend([page] * pages)
    return raw_pdf(objects)


def deflate_bomb(expanded_mb: int = 400) -> bytes:
    """One page whose content stream inflates to ``expanded_mb`` MB of text-showing operators."""
    line = b"(All work and no play makes a dull report.) Tj T*\n"
    compressor = zlib.compressobj(9)
    block = line * (1024 * 1024 // len(line) + 1)
    body = compressor.compress(b"BT /F1 12 Tf 14 TL 20 180 Td\n")
    for _ in range(expanded_mb):
        body += compressor.compress(block)
    body += compressor.compress(b"ET") + compressor.flush()
    return raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R"
            b" /Resources << /Font << /F1 5 0 R >> >> >>",
            _stream(body, compress=False).replace(b"<< /Length", b"<< /Filter /FlateDecode /Length", 1),
            b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
        ]
    )


def encrypted_pdf(source: Path, password: str = "secret") -> bytes:
    """``source`` locked with a user password (pypdf, AES-256), as a protected download would be."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter(clone_from=PdfReader(source))
    writer.encrypt(user_password=password, owner_password=password + "-owner", algorithm="AES-256")
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def docx_zip_bomb(source: Path, expanded_mb: int = 300) -> bytes:
    """``source`` with one extra part that inflates to ``expanded_mb`` MB of zeros."""
    out = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as bomb:
        for item in original.infolist():
            bomb.writestr(item, original.read(item))
        with bomb.open("word/media/padding.bin", "w", force_zip64=True) as member:
            zeros = bytes(1024 * 1024)
            for _ in range(expanded_mb):
                member.write(zeros)
    return out.getvalue()


def docx_with_doctype(source: Path, kind: str) -> bytes:
    """``source`` whose document.xml declares a DTD: ``laughs`` (an entity bomb) or ``external``."""
    dtds = {
        "laughs": '<!DOCTYPE w:document [<!ENTITY a "ha ha ha ha ha ha ha ha ha ha">'
        + "".join(f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">' for i in range(9))
        + "]>",
        "external": '<!DOCTYPE w:document [<!ENTITY secret SYSTEM "file:///etc/passwd">]>',
    }
    use = {"laughs": "&j;", "external": "&secret;"}[kind]
    out = io.BytesIO()
    with zipfile.ZipFile(source) as original, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as changed:
        for item in original.infolist():
            data = original.read(item)
            if item.filename == "word/document.xml":
                text = data.decode("utf-8")
                head, _, rest = text.partition("?>")
                text = head + "?>" + dtds[kind] + rest
                text = text.replace("<w:t>", f"<w:t>{use} ", 1)
                data = text.encode("utf-8")
            changed.writestr(item, data)
    return out.getvalue()


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for name, columns in (("report", 1), ("report-columns", 2)):
            source = tmp / "source" / f"{name}.docx"
            source.parent.mkdir(exist_ok=True)
            write_source_docx(source, columns)
            pdf = soffice(source, "pdf:writer_pdf_Export", tmp)
            shutil.copy(pdf, HERE / f"{name}.pdf")
            if columns == 1:
                resaved = soffice(source, "docx:MS Word 2007 XML", tmp)
                shutil.copy(resaved, HERE / f"{name}.docx")
    import pypdfium2 as pdfium

    page = pdfium.PdfDocument(HERE / "report.pdf")[0]
    bitmap = page.render(scale=60 / 72, grayscale=True)
    pixels = bitmap.to_numpy()
    height, width = pixels.shape[:2]
    (HERE / "scan.pdf").write_bytes(
        image_only_pdf(pixels.reshape(height, width, -1)[:, :, 0].tobytes(), width, height)
    )
    if FOREIGN_PDF.exists():
        shutil.copy(FOREIGN_PDF, HERE / FOREIGN_PDF.name)
        shutil.copytree(FOREIGN_HTML, HERE / "shared-mime-info-spec-html", dirs_exist_ok=True)
    for path in sorted(HERE.glob("*.pdf")) + sorted(HERE.glob("*.docx")):
        print(f"{path.name}: {path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
