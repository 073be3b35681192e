"""``forumqa add`` and ``forumqa remove``: store or delete documents, rebuild, and say what happened.

Run in-process through :func:`rag.cli.main` (the models are the session's), on a private copy of the
session's corpus and index.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from core_support import ROOT, copy_workspace

from rag.cli import main
from rag.config import Settings
from rag.index.publish import load_build as load_index
from rag.qa import ForumQA

DOCUMENT = (
    b"# Busan Port\n\nBusan Port handled 23 million containers in 2023, the most of any Korean port.\n"
)


@pytest.fixture
def workspace(settings: Settings, qa: ForumQA, tmp_path: Path) -> Settings:
    return copy_workspace(settings, tmp_path)


def args(workspace: Settings, *more: str) -> list[str]:
    folders = ["--corpus-dir", str(workspace.corpus_dir), "--index-dir", str(workspace.index_dir)]
    return [*more, *folders, "--quiet"]


@pytest.mark.parametrize(("command", "mentions"), [
    ("add", ["FILE", "title", "metadata", "bytes", "FORUMQA_POLL_SECONDS", "--no-build"]),
    ("remove", ["ID", "cannot be removed", "FORUMQA_POLL_SECONDS", "--no-build"]),
])
def test_add_and_remove_explain_themselves(command: str, mentions: list[str]) -> None:
    result = subprocess.run([sys.executable, "-m", "rag.cli", command, "--help"], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False, env={"COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    for mention in mentions:
        assert mention in result.stdout, mention


def test_add_then_remove_rebuilds_each_time(workspace: Settings, tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    source = tmp_path / "notes" / "port.md"
    source.parent.mkdir()
    source.write_bytes(DOCUMENT)
    junk = tmp_path / "junk.docx"
    junk.write_bytes(b"PK\x03\x04 not a zip")

    assert main(["add", *args(workspace, str(source), str(junk))]) == 1  # one refused: status 1, other added
    out, err = capsys.readouterr()
    assert f"added {source} as 'busan-port' (md, {len(DOCUMENT)} bytes): Busan Port" in out
    assert f"{junk}: refused: not a document forum-qa can read: a damaged zip archive" in err
    assert "running servers serve it within" in out
    index = load_index(workspace.index_dir)
    assert "busan-port" in index.documents  # built before the command returned
    meta = json.loads((workspace.corpus_dir / "busan-port.meta.json").read_text(encoding="utf-8"))
    assert meta["original_filename"] == "port.md" and meta["kind"] == "md"

    assert main(["add", *args(workspace, str(source))]) == 1  # the same file again
    assert "already in the corpus as document 'busan-port'" in capsys.readouterr().err

    assert main(["remove", *args(workspace, "busan-port")]) == 0
    assert "removed 'busan-port' (busan-port.md): Busan Port" in capsys.readouterr().out
    assert "busan-port" not in load_index(workspace.index_dir).documents
    assert not (workspace.corpus_dir / "busan-port.meta.json").exists()


def test_remove_refuses_unknown_and_last_documents(
    workspace: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["remove", *args(workspace, "no-such-document", "--no-build")]) == 1
    assert "no document with id 'no-such-document'" in capsys.readouterr().err
    assert main(["remove", *args(workspace, "third-korea-russia-forum", "--no-build")]) == 1
    assert "is the only document" in capsys.readouterr().err
    assert (workspace.corpus_dir / "third-korea-russia-forum.txt").exists()
