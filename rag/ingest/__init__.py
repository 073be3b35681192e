"""Stage 1, ingest: files to :class:`~rag.types.Document` objects and their chunks.

``filetypes`` (a file's kind, by its bytes) → ``loading`` (text, HTML, Markdown; dispatches to ``pdf`` and
``docx``, which share ``extraction``'s result type and refusals; ``pdf_worker`` is PDFium's child process)
→ ``chunking`` (sentences and overlapping sentence windows). ``naming`` (titles that name something, ASCII
ids, with ``transliteration``'s Cyrillic and Hangul spellings) is what ``loading`` and ``store`` call
documents; ``store`` adds, renames and removes files in the corpus folder. Imports nothing from a later
stage.
"""
