"""Stage 3, answer: from a question to a cited extractive answer.

``followup`` (a follow-up made standalone) → ``retrieval`` (dense + BM25 fused by RRF) → ``reader`` (which
sentences answer, and whether the documents answer at all) → ``short_answer`` (the words inside the
answering sentence) → ``compose`` (the answer text and its citations). Imports from ingest and index only.
"""
