"""The cross-encoder's fit (rag/train/ranker.py) writes the same bytes whatever the thread count of the
process that asks for it: the child it runs in fixes one thread and portable kernels (issue 24 point 8)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from rag.train.ranker import DETERMINISTIC_ENV, Group, fit_in_child, load, pair_text

GROUPS = [
    Group(
        "q1",
        "Who chaired the port meeting?",
        [
            "The Vladivostok Port Logistics Meeting took place on March 14 in Vladivostok.",
            "It was chaired by Igor Belov, deputy head of the transport department.",
            "Customs officers presented the results of a pilot.",
        ],
        [None, "The Vladivostok Port Logistics Meeting took place on March 14 in Vladivostok.", None],
        [0.0, 1.0, 0.0],
    ),
    Group(
        "q2",
        "What is the budget of the terminal?",
        [
            "The participants agreed to open a new container terminal at Cape Churkin.",
            "The budget for the project is 12 billion roubles.",
            "The next meeting will be held in September.",
        ],
        [None, "It will be run by Golden Horn Stevedoring.", None],
        [0.0, 1.0, 0.0],
    ),
]


def test_the_fit_writes_the_same_bytes_with_one_thread_or_two(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = []
    for threads in ("1", "2"):
        monkeypatch.setenv("OMP_NUM_THREADS", threads)
        monkeypatch.setenv("FORUMQA_THREADS", threads)
        out = tmp_path / f"threads-{threads}"
        out.mkdir()
        fit_in_child(GROUPS, out / "ranker.safetensors", out / "ranker.json", epochs=1, progress=False)
        written.append(((out / "ranker.safetensors").read_bytes(), (out / "ranker.json").read_bytes()))
    assert written[0] == written[1]
    model = load(tmp_path / "threads-1" / "ranker.safetensors", tmp_path / "threads-1" / "ranker.json")
    assert model is not None


def test_the_child_refuses_to_run_outside_its_environment() -> None:
    import subprocess
    import sys

    env = {**os.environ, **DETERMINISTIC_ENV}
    del env["ATEN_CPU_CAPABILITY"]  # AVX-512 kernels would round otherwise than another machine's
    done = subprocess.run(
        [sys.executable, "-m", "rag.train.ranker", "g.json", "{}", "w", "c"], env=env, capture_output=True
    )
    assert done.returncode != 0
    assert b"ATEN_CPU_CAPABILITY" in done.stderr


def test_a_sentence_is_read_after_the_one_before_it() -> None:
    assert pair_text("It was chaired by X.", "The meeting took place.", True) == (
        "The meeting took place. [SEP] It was chaired by X."
    )
    assert pair_text("It was chaired by X.", None, True) == "It was chaired by X."
    assert pair_text("It was chaired by X.", "The meeting took place.", False) == "It was chaired by X."
