"""The store interface (rag/store): one factory picks the store from the settings; both stores are Stores;
a database URL libpq would misread is refused before any connection, without echoing it."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr

from rag.config import Settings
from rag.store import Store, StoreUnavailable, open_store


def test_the_factory_picks_the_store_from_the_settings(tmp_path: Path) -> None:
    files = open_store(Settings(corpus_dir=tmp_path, index_dir=tmp_path / "index"))
    assert isinstance(files, Store) and files.kind == "files" and str(tmp_path) in files.where
    database = open_store(Settings(database_url=SecretStr("postgresql://forumqa:hunter2@127.0.0.1:1/qa")))
    assert isinstance(database, Store) and database.kind == "postgresql"
    assert database.where == "PostgreSQL at 127.0.0.1:1/qa"  # connects to nothing yet, shows no password


@pytest.mark.parametrize("password", ["Hunter2/abc", "Secret9@x", "pa#ss9word", "que?ry9pw", "50%off9"])
def test_a_url_libpq_would_misread_is_refused_without_echoing_it(password: str) -> None:
    url = f"postgresql://forumqa:{password}@db.internal:5432/forumqa"
    with pytest.raises(StoreUnavailable, match="percent-encode") as caught:
        open_store(Settings(database_url=SecretStr(url)))
    message = str(caught.value)
    assert password not in message and "db.internal" not in message
    for piece in password.replace("/", " ").replace("@", " ").replace("#", " ").replace("?", " ").split():
        assert len(piece) < 3 or piece not in message


def test_an_encoded_password_is_accepted_and_scrubbed() -> None:
    from rag.store.postgres.database import Database

    db = Database(SecretStr("postgresql://forumqa:Hunter2%2Fabc@127.0.0.1:5432/qa"))
    assert db.scrub("failed for Hunter2/abc and Hunter2%2Fabc") == "failed for *** and ***"
