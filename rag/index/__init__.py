"""Stage 2, index: the searchable, on-disk form of the ingested documents.

``embedders`` (text to unit vectors, models from PyPI packages, sha256 pinned) → ``vectors`` (FAISS) and
``lexical`` (BM25) → ``build`` (build, save, load and swap an index atomically). ``rebuild`` runs builds
in the background after an upload; ``servers`` lists the server pids that ``forumqa reload`` signals.
Imports from ingest only.
"""
