"""POST /api/feedback over real HTTP: off by default, validated, capped, rate-limited, never listed, and
stored whole as JSON lines in the index folder, also by two worker processes writing at once; and the
answer object's ``answer_id`` it refers to.

Servers with feedback on run over a private copy of the session's corpus and index (``copy_workspace``),
so the feedback file is written where a real server would write it: in its index folder.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from core_support import copy_workspace
from reliability.support import ServerProcess, clean_env
from server_support import LiveServer

from api.main import create_app
from api.schemas import MAX_FEEDBACK_BODY_BYTES, MAX_FEEDBACK_COMMENT_CHARS
from rag.config import Settings
from rag.feedback import jsonl as feedback
from rag.feedback import records as feedback_records
from rag.qa import ForumQA

QUESTION = "When did the Third Korea-Russia Forum take place?"


def error_of(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, (response.status_code, response.text)
    body = response.json()
    assert set(body) == {"error"} and body["error"]["message"], body
    return dict(body["error"])


def answer(url: str, question: str = QUESTION, **body: Any) -> dict[str, Any]:
    response = httpx.post(f"{url}/api/answer", json={"question": question, "mode": "extractive", **body},
                          timeout=60)
    assert response.status_code == 200, response.text
    return dict(response.json())


def rating_of(answered: dict[str, Any], rating: str = "up", **changes: Any) -> dict[str, Any]:
    """The body the chat page sends for ``answered``."""
    return {"question": answered["question"], "answer_id": answered["answer_id"],
            "answer": answered["answer"], "verdict": answered["verdict"], "rating": rating, **changes}


def stored(settings: Settings) -> list[dict[str, Any]]:
    path = feedback.feedback_file(settings.index_dir)
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


@pytest.fixture(scope="module")
def workspace(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    copied = copy_workspace(settings, tmp_path_factory.mktemp("feedback"))
    return copied.model_copy(update={"feedback": True, "feedback_per_minute": 1000})


@pytest.fixture(scope="module")
def on_url(workspace: Settings, qa: ForumQA) -> Iterator[str]:
    """A real server taking feedback (a generous rate, so only the rate-limit test meets it)."""
    with LiveServer(create_app(workspace, qa)) as server:
        yield server.url


# ------------------------------------------------------------------------------------- answer_id


def test_an_answer_has_a_stable_id_made_from_its_content(live_url: str) -> None:
    first = answer(live_url)
    assert re.fullmatch(r"[0-9a-f]{16}", first["answer_id"])
    repeat = answer(live_url)  # from the answer cache
    assert repeat["answer_id"] == first["answer_id"] and repeat["answer"] == first["answer"]
    streamed = httpx.post(f"{live_url}/api/answer/stream", json={"question": QUESTION, "mode": "extractive"},
                          timeout=60).text.splitlines()[-1]
    assert json.loads(streamed)["answer"]["answer_id"] == first["answer_id"]
    # Another conversation around the same question is another answer.
    followed = answer(live_url, history=[{"role": "user", "content": "Who led the Russian delegation?"}])
    other = answer(live_url, "Who led the Russian delegation?")
    assert len({first["answer_id"], followed["answer_id"], other["answer_id"]}) == 3


# ------------------------------------------------------------------------------------ off by default


def test_feedback_is_off_unless_enabled(live_url: str, settings: Settings) -> None:
    assert httpx.get(f"{live_url}/api/config").json()["feedback"] is False
    body = rating_of(answer(live_url))
    error = error_of(httpx.post(f"{live_url}/api/feedback", json=body), 403)
    assert error["type"] == "forbidden" and "FORUMQA_FEEDBACK" in error["message"]
    # Refused before its body is looked at: an invalid body is still the same 403.
    assert httpx.post(f"{live_url}/api/feedback", json={"rating": "meh"}).status_code == 403
    assert not feedback.feedback_file(settings.index_dir).exists()


# --------------------------------------------------------------------------------------------- on


def test_feedback_is_stored_as_a_json_line_in_the_index_folder(on_url: str, workspace: Settings) -> None:
    assert httpx.get(f"{on_url}/api/config").json()["feedback"] is True
    before = len(stored(workspace))
    answered = answer(on_url, "Who led the Russian delegation?",
                      history=[{"role": "user", "content": QUESTION}])
    comment = "Right person, but <b>which</b> ministry?\nSecond line — 한국어 too."
    history = [{"role": "user", "content": QUESTION}]
    body = rating_of(answered, "down", comment=f"  {comment} ", history=history)
    response = httpx.post(f"{on_url}/api/feedback", json=body)
    assert response.status_code == 201, response.text
    assert response.json() == {"stored": True}  # nothing of what was sent comes back
    records = stored(workspace)
    assert len(records) == before + 1
    record = records[-1]
    build_id = httpx.get(f"{on_url}/readyz").json()["build_id"]
    assert record == {
        "time": record["time"], "build_id": build_id, "answer_id": answered["answer_id"], "rating": "down",
        "verdict": answered["verdict"], "question": "Who led the Russian delegation?",
        "history": [{"role": "user", "content": QUESTION}], "answer": answered["answer"], "comment": comment,
    }
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", record["time"])
    raw = feedback.feedback_file(workspace.index_dir).read_text(encoding="utf-8")
    assert raw.endswith("\n") and raw.count("\n") == len(records)


def test_a_changed_rating_or_an_added_comment_supersedes_the_earlier_record(
    on_url: str, workspace: Settings
) -> None:
    """The page stores 👍 at once, then 👎 when the reader changes their mind, then the same 👎 with a
    comment: three lines of the same answer_id, the file only appended to; the export keeps the newest."""
    answered = answer(on_url, "How many members did the Korean delegation have?")
    before = len(stored(workspace))
    for body in (rating_of(answered, "up"), rating_of(answered, "down"),
                 rating_of(answered, "down", comment="It counts the Russians too.")):
        response = httpx.post(f"{on_url}/api/feedback", json=body)
        assert response.status_code == 201, response.text
    records = stored(workspace)[before:]
    assert [(r["answer_id"], r["rating"], r["comment"]) for r in records] == [
        (answered["answer_id"], "up", ""), (answered["answer_id"], "down", ""),
        (answered["answer_id"], "down", "It counts the Russians too."),
    ]
    exported = [r for r in feedback_records.eval_records(feedback.read(workspace.index_dir))
                if r["answer_id"] == answered["answer_id"]]
    assert [(r["rating"], r["comment"]) for r in exported] == [("down", "It counts the Russians too.")]


BAD_BODIES = [
    ({"rating": "meh"}, "rating"),
    ({"answer_id": "not-an-id"}, "answer_id"),
    ({"verdict": "great"}, "verdict"),
    ({"question": "   "}, "question"),
    ({"question": "x" * 1001}, "limit is 1000"),
    ({"answer": ""}, "answer"),
    ({"comment": "x" * (MAX_FEEDBACK_COMMENT_CHARS + 1)}, "comment"),
    ({"history": [{"role": "system", "content": "x"}]}, "history"),
    ({"stars": 5}, "stars"),  # an unknown field
    ({"rating": 1}, "rating"),
]


@pytest.mark.parametrize(("change", "named"), BAD_BODIES)
def test_bad_input_is_a_clear_422(
    on_url: str, workspace: Settings, change: dict[str, Any], named: str
) -> None:
    before = len(stored(workspace))
    body = {"question": QUESTION, "answer_id": "0123456789abcdef", "answer": "An answer. [1]",
            "verdict": "answered", "rating": "up", **change}
    error = error_of(httpx.post(f"{on_url}/api/feedback", json=body), 422)
    assert error["type"] == "invalid_request" and named in json.dumps(error), error
    assert len(stored(workspace)) == before


def test_malformed_json_and_oversized_bodies_are_refused(on_url: str, workspace: Settings) -> None:
    before = len(stored(workspace))
    bad = httpx.post(f"{on_url}/api/feedback", content=b'{"question": ',
                     headers={"content-type": "application/json"})
    assert bad.status_code == 400, bad.text
    missing = error_of(httpx.post(f"{on_url}/api/feedback", json={"rating": "up"}), 422)
    assert all(name in json.dumps(missing) for name in ("question", "answer_id", "verdict"))
    huge = {"question": QUESTION, "answer_id": "0123456789abcdef", "answer": "x" * MAX_FEEDBACK_BODY_BYTES,
            "verdict": "answered", "rating": "up"}
    error = error_of(httpx.post(f"{on_url}/api/feedback", json=huge), 413)
    assert "feedback" in error["message"]
    assert len(stored(workspace)) == before


def test_feedback_is_never_listed(on_url: str) -> None:
    assert httpx.get(f"{on_url}/api/feedback").status_code == 405
    assert httpx.get(f"{on_url}/api/feedback/0123456789abcdef").status_code == 404
    paths = httpx.get(f"{on_url}/openapi.json").json()["paths"]
    assert [p for p in paths if "feedback" in p] == ["/api/feedback"]
    assert set(paths["/api/feedback"]) == {"post"}


def test_feedback_is_rate_limited_per_client(workspace: Settings, qa: ForumQA) -> None:
    limited = workspace.model_copy(update={"feedback_per_minute": 3})
    with LiveServer(create_app(limited, qa)) as server:
        body = rating_of(answer(server.url))
        codes = [httpx.post(f"{server.url}/api/feedback", json=body).status_code for _ in range(4)]
        assert codes == [201, 201, 201, 429]
        refused = httpx.post(f"{server.url}/api/feedback", json=body)
        assert error_of(refused, 429)["type"] == "rate_limited" and int(refused.headers["retry-after"]) >= 1
        # The budget is feedback's own: questions still get answers.
        assert answer(server.url)["answer_id"] == body["answer_id"]


def test_a_full_feedback_file_stops_growing(settings: Settings, qa: ForumQA, tmp_path: Path) -> None:
    small = copy_workspace(settings, tmp_path)
    small = small.model_copy(update={"feedback": True, "feedback_max_file_bytes": 2048})
    with LiveServer(create_app(small, qa)) as server:
        body = rating_of(answer(server.url), comment="x" * 400)
        codes = [httpx.post(f"{server.url}/api/feedback", json=body).status_code for _ in range(4)]
        assert codes[0] == 201 and codes[-1] == 503, codes
        assert "full" in httpx.post(f"{server.url}/api/feedback", json=body).json()["error"]["message"]
    path = feedback.feedback_file(small.index_dir)
    assert path.stat().st_size <= 2048
    assert all(json.loads(line) for line in path.read_text().splitlines())


# ------------------------------------------------------------------------------------ two workers


def test_two_workers_append_whole_lines(settings: Settings, tmp_path: Path) -> None:
    """``forumqa serve --workers 2``: 120 feedback posts at once, 8 at a time, with long comments; every
    line of the file is one whole record and each post is there exactly once."""
    private = copy_workspace(settings, tmp_path / "workspace")
    env = clean_env(FORUMQA_WORKERS="2", FORUMQA_FEEDBACK="1", FORUMQA_FEEDBACK_PER_MINUTE="10000")
    with ServerProcess(private, tmp_path / "server.log", env) as server:
        server.wait_ready()
        answered = answer(server.url)

        def post(n: int) -> int:
            comment = f"post {n:03d} " + "é" * (MAX_FEEDBACK_COMMENT_CHARS - 9)
            body = rating_of(answered, "up" if n % 2 else "down", comment=comment)
            return httpx.post(f"{server.url}/api/feedback", json=body, timeout=60).status_code

        with ThreadPoolExecutor(max_workers=8) as pool:
            codes = list(pool.map(post, range(120)))
        import psutil

        workers = [c for c in psutil.Process(server.pid).children(recursive=True)
                   if "spawn_main" in " ".join(c.cmdline())]
    assert codes == [201] * 120
    assert len(workers) >= 2, "two worker processes served"
    lines = feedback.feedback_file(private.index_dir).read_text(encoding="utf-8").splitlines()
    records = [json.loads(line) for line in lines]
    assert sorted(r["comment"][:8] for r in records) == [f"post {n:03d}" for n in range(120)]
    assert {r["answer_id"] for r in records} == {answered["answer_id"]}
