"""The ``forumqa`` command line: its parsing and help through click's ``CliRunner`` (cheap, in process),
and its commands as a subprocess of the venv's console script or through :func:`rag.cli.main`.

Commands that answer use the session index (built by the ``qa`` fixture), so they only load the models.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from core_support import CORPUS, FORUMQA, dev_records, has_evidence
from fastapi.testclient import TestClient

from api.main import create_app
from rag.cli import cli, main
from rag.config import Settings
from rag.evaluation import COLUMNS
from rag.index.publish import current_build_dir
from rag.qa import ForumQA

SUBCOMMANDS = ["build", "ask", "eval", "serve", "reload", "add", "remove", "db", "worker", "feedback",
               "train-reader", "train-short-answer", "train-grounding"]


def forumqa(*args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}  # argparse wraps help text to the terminal width
    return subprocess.run(
        [str(FORUMQA), *args], capture_output=True, text=True, timeout=timeout, check=False, env=env
    )


def index_args(settings: Settings) -> list[str]:
    return ["--index-dir", str(settings.index_dir), "--corpus-dir", str(CORPUS)]


def dev_item(item_id: str) -> dict[str, Any]:
    return next(r for r in dev_records() if r["id"] == item_id)


def invoke(*args: str) -> Any:
    """``forumqa ARGS`` in process through click's runner (no models load for parsing and help)."""
    return CliRunner().invoke(cli, list(args), prog_name="forumqa", terminal_width=200)


def test_top_level_help_lists_every_command() -> None:
    result = forumqa("--help")  # the console script itself, once
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage: forumqa")
    assert "Third Korea-Russia Forum" in result.stdout
    for command in SUBCOMMANDS:
        assert command in result.stdout


@pytest.mark.parametrize(
    ("command", "mentions"),
    [
        ("build", ["--force", "--quiet", "--answerable", "not re-embedded", "atomically"]),
        ("ask", ["--json", "--after", "--top-k", "citation"]),
        ("eval", ["hit@1", "MRR", "--verbose", "JSONL", "--per-article", "--reliability"]),
        ("serve", ["--host", "--port", "--workers"]),
        ("reload", ["FORUMQA_POLL_SECONDS", "no signal or pid file"]),
    ],
)
def test_each_command_explains_itself(command: str, mentions: list[str]) -> None:
    result = invoke(command, "--help")
    assert result.exit_code == 0, result.output
    assert result.output.startswith(f"Usage: forumqa {command}")
    text = " ".join(result.output.split())
    for word in ["--index-dir", "--corpus-dir", *mentions]:
        assert word in text, f"{command} --help does not mention {word}"


def test_the_training_commands_keep_their_flags() -> None:
    for command, flags in (
        ("train-reader", ["--squad", "--articles", "--work-dir", "--out", "--plain", "--no-plain",
                          "--max-questions", "--seed", "--quiet"]),
        ("train-short-answer", ["--squad", "--out"]),
        ("train-grounding", ["--squad", "--out"]),
    ):
        result = invoke(command, "--help")
        assert result.exit_code == 0, result.output
        for flag in flags:
            assert flag in result.output, (command, flag)


def test_verbose_logging_and_eval_verbose_are_two_options(tmp_path: Path) -> None:
    """`forumqa -v eval f --verbose`: -v is the group's (logging), --verbose eval's (one line per
    question); neither stands in for the other (argparse once gave both one destination)."""
    seen: dict[str, Any] = {}
    import rag.cli.answers as answers

    def capture(*args: Any, **kwargs: Any) -> None:
        seen.update(kwargs)

    original = answers.evaluate_command.callback
    answers.evaluate_command.callback = capture
    try:
        assert invoke("-v", "eval", "f.jsonl", "--verbose").exit_code == 0
        assert seen["per_question"] is True
        seen.clear()
        assert invoke("-v", "eval", "f.jsonl").exit_code == 0
        assert seen["per_question"] is False
    finally:
        answers.evaluate_command.callback = original


def test_ask_json_prints_the_answer_object(qa: ForumQA, settings: Settings) -> None:
    build_before = current_build_dir(settings.index_dir)
    record = dev_item("d15")
    result = forumqa("ask", "--json", *index_args(settings), "--top-k", "3", record["question"])
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    # The very object /api/answer returns for the same question, but for the time it took.
    with TestClient(create_app(qa.settings, qa)) as client:
        api = client.post("/api/answer", json={"question": record["question"], "top_k": 3}).json()
    assert {**payload, "took_ms": 0} == {**api, "took_ms": 0}
    assert payload["mode"] == "extractive" and payload["model"] is None and payload["dropped"] == []
    assert payload["question"] == record["question"]
    assert isinstance(payload["answerable"], bool) and 0 <= payload["confidence"] <= 1
    citations = payload["citations"]
    assert 1 <= len(citations) <= 3
    assert [c["n"] for c in citations] == list(range(1, len(citations) + 1))
    text = qa.index.documents["third-korea-russia-forum"].text
    for c in citations:
        assert c["doc_id"] == "third-korea-russia-forum"
        assert text[c["start"] : c["end"]] == c["text"]
        assert c["start"] <= c["highlight"]["start"] < c["highlight"]["end"] <= c["end"]
    assert any(has_evidence(c["text"], record["evidence"]) for c in citations)
    assert payload["answerable"] and "[1]" in payload["answer"]
    # The session index was used as it was: nothing was rebuilt.
    assert current_build_dir(settings.index_dir) == build_before


def test_ask_text_mode_with_a_follow_up(
    qa: ForumQA, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    """Text output, with --after for the history. In-process through ``rag.cli.main`` (what the console
    script runs) since the models are loaded here already."""
    code = main(
        ["ask", *index_args(settings), "--after", "What did the Duma approve?", "When will work on it start?"]
    )
    out = capsys.readouterr().out
    assert code == 0
    assert re.search(r"\((answered|uncertain|not covered), confidence ", out), out
    assert "[1] Third Korea-Russia Forum — " in out
    assert "commence" in out


@pytest.mark.parametrize("command", ["ask", "eval"])
def test_generative_mode_without_an_llm_is_refused_before_loading(
    command: str, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("FORUMQA_LLM_BASE_URL", "FORUMQA_LLM_MODEL"):
        monkeypatch.delenv(name, raising=False)
    missing_index = tmp_path / "never-built"  # refused before any index is looked for, let alone built
    target = "Who headed the Korean delegation?" if command == "ask" else str(tmp_path / "q.jsonl")
    (tmp_path / "q.jsonl").write_text('{"question": "Who?"}\n', encoding="utf-8")
    code = main([command, "--mode", "generative", "--index-dir", str(missing_index),
                 "--corpus-dir", str(CORPUS), target])
    captured = capsys.readouterr()
    assert code == (2 if command == "ask" else 1)
    assert "FORUMQA_LLM_BASE_URL" in captured.err and "FORUMQA_LLM_MODEL" in captured.err
    assert captured.out == "" and not missing_index.exists()


def test_eval_prints_the_metrics_table(qa: ForumQA, settings: Settings, tmp_path: Path) -> None:
    records = [dev_item(i) for i in ("d07", "d19", "u11")]
    questions = tmp_path / "small.jsonl"
    questions.write_text("".join(json.dumps(r) + "\n" for r in records), encoding="utf-8")
    result = forumqa("eval", str(questions), *index_args(settings), "--verbose")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("lang"))
    assert lines[header].split() == ["lang", *COLUMNS]
    end = lines.index("", header)  # the verdict table follows after a blank line
    rows = {line.split()[0]: line.split()[1:] for line in lines[header + 1 : end]}
    assert set(rows) == {"en", "all"}
    assert rows["all"][COLUMNS.index("n")] == "3"
    assert rows["all"][COLUMNS.index("hit@3")] == "1.000"
    for record in records:  # --verbose: one line per question
        assert any(record["id"] in line and record["question"] in line for line in lines[:header])


@pytest.mark.parametrize("question", ["", "   "])
def test_empty_question_is_refused(settings: Settings, question: str) -> None:
    result = forumqa("ask", *index_args(settings), question, timeout=60)
    assert result.returncode != 0
    assert "question must not be empty" in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["ask"], "Missing argument 'QUESTION...'"),
        (["ask", "--top-k", "0", "Who?"], "--top-k"),
        (["nonsense"], "No such command 'nonsense'"),
        ([], "Usage: forumqa"),
        (["db", "nonsense"], "No such command 'nonsense'"),
    ],
)
def test_bad_arguments_are_refused(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_eval_of_a_malformed_file_names_the_line(settings: Settings, tmp_path: Path) -> None:
    questions = tmp_path / "bad.jsonl"
    questions.write_text('{"question": "Fine?"}\n{oops\n', encoding="utf-8")
    result = forumqa("eval", str(questions), *index_args(settings), timeout=60)
    assert result.returncode == 1
    assert f"forumqa: error: {questions}:2" in result.stderr
    assert "Traceback" not in result.stderr


def test_eval_of_a_missing_file_is_refused(settings: Settings, tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    result = forumqa("eval", str(missing), *index_args(settings), timeout=60)
    assert result.returncode == 1
    assert str(missing) in result.stderr
    assert "Traceback" not in result.stderr


def test_missing_corpus_is_refused(tmp_path: Path) -> None:
    result = forumqa(
        "build", "--corpus-dir", str(tmp_path / "nowhere"), "--index-dir", str(tmp_path / "i"), timeout=120
    )
    assert result.returncode == 1
    assert "forumqa: error:" in result.stderr and str(tmp_path / "nowhere") in result.stderr
    assert "Traceback" not in result.stderr


def test_build_of_an_up_to_date_index_embeds_nothing(qa: ForumQA, settings: Settings) -> None:
    result = forumqa("build", *index_args(settings), "--quiet", timeout=120)
    assert result.returncode == 0, result.stderr
    assert qa.index.version in result.stdout and "up to date" in result.stdout


def test_eval_of_an_empty_question_file_fails_cleanly(
    qa: ForumQA, settings: Settings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """An empty question set is bad input: a non-zero exit and a message, not a crash. Run in-process
    through ``rag.cli.main`` (the models are already loaded here), exactly as the console script does."""
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    code = main(["eval", str(empty), *index_args(settings)])
    captured = capsys.readouterr()
    assert code != 0
    assert "error" in captured.err.lower()


def test_the_cli_leaves_sigpipe_as_it_found_it(tmp_path: Path) -> None:
    """`forumqa ask | head` ends quietly through SIGPIPE's default action; an in-process caller (or a
    server sharing the process) must get Python's handling back, or a hung-up socket would kill it."""
    before = signal.getsignal(signal.SIGPIPE)
    assert main(["eval", str(tmp_path / "missing.jsonl")]) == 1
    assert signal.getsignal(signal.SIGPIPE) == before
