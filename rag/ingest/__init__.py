"""Stage 1, ingest: files to :class:`~rag.types.Document` objects and their chunks.

``filetypes`` (a file's kind, by its bytes) → ``loading`` (text, HTML, Markdown; dispatches to ``pdf`` and
``docx``, which share ``extraction``'s result type and refusals; ``pdf_worker`` is PDFium's child process)
→ ``chunking`` (sentences and overlapping sentence windows). ``store`` adds and removes files in the corpus
folder. Imports nothing from a later stage.
"""
