"""Stage 2, index: the searchable form of the ingested documents.

``embedders`` (text to unit vectors, models from PyPI packages, sha256 pinned) → ``vectors`` (FAISS) and
``lexical`` (BM25) → ``search_index`` (what answering reads, in memory). Building it: ``stages`` (the
stages as a value, their progress and work), ``fingerprint`` (what a build is made of), ``publish``
(build folders, published atomically, and loaded), ``build`` (the staged build of a corpus folder), with
``vector_cache`` keeping every vector made. Imports from ingest only.
"""
