"""Readers' feedback on answers: the record (``records``), and its file form (JSON lines in the index
folder); the database store keeps the same records in a table of its own."""
