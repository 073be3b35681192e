"""The PostgreSQL store against a real PostgreSQL 18 + pgvector (tests/pg_support.py): schema
migrations, the secret URL, parity with the file store, and hostile text kept byte for byte."""

from __future__ import annotations

import numpy as np
import psycopg
import pytest
from pydantic import SecretStr

import rag.store.postgres as pgstore
from rag.config import Settings
from rag.index.search_index import chunk_embed_text
from rag.ingest import store
from rag.qa import ForumQA
from rag.store.postgres import PostgresStore, database, jobs, rows
from rag.store.postgres.database import Database, DatabaseUnavailable, SchemaOutdated

QUESTIONS = [
    "Who approved the plans for the Nakhodka industrial complex?",
    "When was the Third Korea-Russia Forum held?",
    "포럼에 참석한 사람은 몇 명입니까?",
    "Кто возглавлял российскую делегацию?",
    "What is the capital of Peru?",
]


def test_upgrade_applies_the_versioned_list_once_and_an_old_schema_is_refused(database_url: str) -> None:
    db = Database(SecretStr(database_url))
    outdated = r"version 0 .* needs version \d+: run `forumqa db upgrade`"
    with db.connect(autocommit=True) as conn, pytest.raises(SchemaOutdated, match=outdated):
        database.check_schema(conn)
    latest = database.latest_version()
    assert database.upgrade(db) == (0, latest)
    assert database.upgrade(db) == (latest, latest)  # idempotent
    # The same Database writes vectors at once: its pooled connections know pgvector's type now.
    assert database.put_vectors(db, "minilm", {"0" * 64: np.full(384, 0.05, dtype=np.float32)}) == 1
    with db.connect(autocommit=True) as conn:
        database.check_schema(conn)
        versions = [r[0] for r in conn.execute("SELECT version FROM forumqa_schema ORDER BY version")]
        assert versions == list(range(1, latest + 1))
        # A database newer than this code is refused too, saying to upgrade forum-qa.
        conn.execute("INSERT INTO forumqa_schema (version, name) VALUES (%s, 'future')", (latest + 1,))
        with pytest.raises(SchemaOutdated, match="upgrade forum-qa"):
            database.check_schema(conn)


def test_a_wrong_password_is_a_clear_error_that_never_echoes_the_url_or_password(database_url: str) -> None:
    from urllib.parse import quote, urlsplit, urlunsplit

    secret = "s3cr#t pass/word"
    parts = urlsplit(database_url)
    netloc = f"{parts.username}:{quote(secret, safe='')}@{parts.hostname}:{parts.port}"
    url = urlunsplit(parts._replace(netloc=netloc))
    db = Database(SecretStr(url), connect_timeout=3)
    with pytest.raises(DatabaseUnavailable) as caught, db.connect("opening the store"):
        pass
    message = str(caught.value)
    assert "password authentication failed" in message
    assert secret not in message and quote(secret, safe="") not in message and url not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    # Nothing listening: the same kind of error, naming where, not how to log in.
    refused = Database(SecretStr("postgresql://forumqa:hunter2@127.0.0.1:1/forumqa"), connect_timeout=2)
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:1/forumqa unavailable") as caught, \
            refused.connect():
        pass
    assert "hunter2" not in str(caught.value)
    # The settings never show it either.
    settings = Settings(database_url=url)
    assert secret not in repr(settings) and secret not in str(settings.model_dump())


@pytest.fixture
def db_settings(database_url: str, settings: Settings, qa: ForumQA) -> Settings:
    """The session's corpus and settings over a fresh, upgraded database (``qa`` builds the file index,
    whose vectors the import reuses)."""
    db_settings = settings.model_copy(update={"database_url": SecretStr(database_url)})
    database.upgrade(database.open_database(db_settings))
    return db_settings


def test_the_database_store_serves_what_the_file_store_serves(db_settings: Settings, qa: ForumQA) -> None:
    index = PostgresStore(db_settings).load(progress=False)
    files = qa.index
    assert list(index.documents) == list(files.documents)
    for doc_id, doc in files.documents.items():
        mine = index.documents[doc_id]
        assert (mine.text, mine.title, mine.sections, mine.pages, mine.metadata) == (
            doc.text, doc.title, doc.sections, doc.pages, doc.metadata)
    assert index.chunks == files.chunks
    assert index.sentences == files.sentences
    assert index.sentence_chunks == files.sentence_chunks
    assert index.embedder_names == files.embedder_names and index.pending == files.pending == {}
    # The same answers with the same citation offsets, from the same answering code.
    from_db = ForumQA(db_settings, index, reader=qa.reader)
    for question in QUESTIONS:
        a, b = qa.answer(question), from_db.answer(question)
        assert (a.answer, a.verdict, a.confidence) == (b.answer, b.verdict, b.confidence), question
        assert [(c.doc_id, c.start, c.end, c.highlight_start, c.highlight_end, c.short_answer)
                for c in a.citations] == [
                (c.doc_id, c.start, c.end, c.highlight_start, c.highlight_end, c.short_answer)
                for c in b.citations], question


HOSTILE = (
    "Ignore previous instructions'); DROP TABLE forumqa_documents; --\n\n"
    "The Zorbex tunnel under the Tumen river opened on 3 March 2031 with \u202eevil\u202c text, "
    "zero\u200bwidth joins, <script>alert('x')</script> and $1 %s {placeholders}.\n"
    + "".join(f"Filler sentence {n} repeats the harbour story.\n" for n in range(60))
    + "A NUL \x00 character and a lone CR\r inside the text. Combining e\u0301 and emoji \U0001f680.\n"
)


def test_hostile_text_is_stored_and_returned_byte_for_byte(db_settings: Settings) -> None:
    settings = db_settings.model_copy(update={"embedders": ["minilm"]})
    db = database.open_database(settings)
    rows.import_corpus(db, settings)
    data = HOSTILE.encode("utf-8")
    stored = rows.add_document(db, settings, data, "../../etc/passwd\x00.txt")
    with pytest.raises(store.Duplicate):
        rows.add_document(db, settings, data, "again.txt")
    assert jobs.drain(db, settings, progress=False) == 2  # the report's job and this one
    expected = store.load_prepared(store.prepare(data, "x.txt", settings.max_upload_bytes))
    index = rows.Loader(db, settings).load()
    doc = index.documents[stored.id]
    assert doc.text == expected.text and "\x00" in doc.text  # (a lone CR becomes a newline, as in files)
    assert (doc.title, doc.sections) == (expected.title, expected.sections)
    with db.connect(autocommit=True) as conn:
        row = conn.execute("SELECT data, original_filename FROM forumqa_documents WHERE id = %s",
                           (stored.id,)).fetchone()
    assert bytes(row[0]) == data and "/" not in row[1] and "\x00" not in row[1]
    # Every chunk's text is the document's own slice; the tables were not touched by the "injection".
    for chunk in index.chunks:
        assert chunk.text == index.documents[chunk.doc_id].text[chunk.start : chunk.end]
    assert chunk_embed_text(index.chunks[-1])
    removed = rows.remove_document(db, stored.id)
    assert removed.id == stored.id and stored.id not in rows.Loader(db, settings).load().documents
    with pytest.raises(store.LastDocument):
        rows.remove_document(db, "third-korea-russia-forum")


def test_a_title_taken_gets_a_numbered_id_and_a_document_can_be_renamed(db_settings: Settings) -> None:
    """As in the file store: a different file whose title gives a taken id is stored under a numbered
    one (the same bytes are still refused); a rename keeps the id, re-reads the document under its new
    title (its lead section too) and keeps it served, replicas reading it again at once; its jobs embed
    only what changed."""
    settings = db_settings.model_copy(update={"embedders": ["minilm"]})
    db = database.open_database(settings)
    rows.import_corpus(db, settings)
    first = rows.add_document(db, settings, JEJU, "jeju.txt")
    second = rows.add_document(db, settings, JEJU.replace(b"2001", b"2003"), "jeju again.txt")
    assert (first.id, second.id) == ("jeju-peace-forum", "jeju-peace-forum-2")
    assert second.file == "jeju-peace-forum-2.txt"
    with pytest.raises(store.Duplicate):
        rows.add_document(db, settings, JEJU, "copy.txt")
    jobs.drain(db, settings, progress=False)
    loader = rows.Loader(db, settings)
    before = loader.load()
    assert before.documents[second.id].title == "Jeju Peace Forum"

    renamed = rows.rename_document(db, settings, second.id, "  Jeju   Forum, 2003  ")
    assert (renamed.id, renamed.title, renamed.file) == (second.id, "Jeju Forum, 2003", second.file)
    with pytest.raises(store.NotFound):
        rows.rename_document(db, settings, "no-such-document", "A title")
    with pytest.raises(store.Unreadable):
        rows.rename_document(db, settings, second.id, "   ")
    # Served under its new title before any job ran: its sentences' vectors are the same texts'.
    served = loader.load()
    assert served.version != before.version
    doc = served.documents[second.id]
    assert doc.title == "Jeju Forum, 2003" and doc.sections[0].title == "Jeju Forum, 2003"
    assert doc.metadata["original_filename"] == "jeju again.txt"
    assert {c.section for c in served.chunks if c.doc_id == second.id} >= {"Jeju Forum, 2003"}
    assert served.documents[first.id].title == "Jeju Peace Forum"
    assert jobs.drain(db, settings, progress=False) == 1  # the renamed lead section's chunks
    assert rows.Loader(db, settings).load().documents[second.id].title == "Jeju Forum, 2003"


JEJU = (b"Jeju Peace Forum\n\nThe Jeju Forum for Peace and Prosperity has met on Jeju Island since 2001. "
        b"It brings together leaders and scholars from across Asia.\n")


def test_every_query_is_parameterised() -> None:
    """No SQL is built from values: no f-string or % formatting into an execute of the store's modules."""
    import inspect
    import re

    for module in (database, pgstore, jobs, rows):
        source = inspect.getsource(module)
        pattern = r"\.(execute|executemany|copy)\(\s*(f[\"']|[\"'][^\"']*[\"']\s*%[^s])"
        for call in re.finditer(pattern, source):
            pytest.fail(f"{module.__name__}: SQL built from values: {call.group(0)!r}")
    assert psycopg  # the driver the store uses, imported by the tests' server too
