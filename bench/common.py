"""Shared benchmark plumbing: timing, percentiles, tables, verdicts, process memory, questions, servers."""

from __future__ import annotations

import contextlib
import json
import os
import random
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import psutil

T = TypeVar("T")

ROOT = Path(__file__).resolve().parent.parent
CORPUS_DIR = ROOT / "corpus"
DEV_SET = ROOT / "eval" / "dev.jsonl"  # a copy of ../shared/eval/dev.jsonl, so a clone runs alone

# Used when the shared dev set is absent: questions the report answers, in its three languages.
BUILTIN_QUESTIONS: tuple[str, ...] = (
    "When did the Third Korea-Russia Forum take place?",
    "Which organizations cosponsored the forum?",
    "How many members did the Korean delegation have?",
    "How many Russian diplomats and academics took part?",
    "What topics did the participants exchange views on?",
    "When did Kim Jong-il visit Russia?",
    "What kind of world order should the international community share, according to Russia?",
    "What did the participants say about the gas pipeline?",
    "포럼은 언제 열렸습니까?",
    "Когда прошёл форум?",
)


# ---------------------------------------------------------------------------------------- statistics


def percentile(values: Sequence[float], q: float) -> float:
    """The ``q``-th percentile (0..100) by linear interpolation between order statistics (numpy's default)."""
    if not values:
        raise ValueError("percentile of an empty sequence")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(values)
    position = (len(ordered) - 1) * q / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass(frozen=True)
class Latency:
    """p50/p95 (and mean) of one series of timings, in seconds."""

    p50: float
    p95: float
    n: int
    mean: float = float("nan")

    @classmethod
    def of(cls, seconds: Sequence[float]) -> Latency:
        return cls(percentile(seconds, 50), percentile(seconds, 95), len(seconds), statistics.fmean(seconds))

    @classmethod
    def median_of(cls, runs: Sequence[Latency]) -> Latency:
        """The median p50, p95 and mean over repeated runs (each run a full series)."""
        if not runs:
            raise ValueError("no runs")
        return cls(
            statistics.median(r.p50 for r in runs),
            statistics.median(r.p95 for r in runs),
            sum(r.n for r in runs),
            statistics.median(r.mean for r in runs),
        )


def timed(fn: Callable[[], object]) -> float:
    """Seconds one call of ``fn`` takes (perf_counter)."""
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def in_thread(fn: Callable[[], T]) -> T:
    """Run ``fn`` in a fresh thread and return its result (or raise its exception).

    The server calls ``qa.answer`` from a threadpool thread, never the main thread; OpenMP (torch,
    FAISS) behaves differently there on a busy machine, so in-process timings are taken the same way.
    """
    result: list[T] = []
    error: list[BaseException] = []

    def target() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            error.append(exc)

    thread = threading.Thread(target=target, name="bench-worker")
    thread.start()
    thread.join()
    if error:
        raise error[0]
    return result[0]


def ms(seconds: float) -> str:
    """Seconds as milliseconds for a table cell (three decimals below 1 ms)."""
    if seconds < 0.001:
        return f"{seconds * 1000:.3f}"
    return f"{seconds * 1000:.1f}" if seconds < 10 else f"{seconds * 1000:.0f}"


def mb(n_bytes: float) -> str:
    """Bytes as MiB for a table cell."""
    return f"{n_bytes / 2**20:.0f}"


# ---------------------------------------------------------------------------------------- tables


def format_table(title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A plain-text table: a title line, a header, a rule, one line per row; columns padded to fit."""
    cells = [[str(h) for h in headers], *[[_cell(v) for v in row] for row in rows]]
    widths = [max(len(row[i]) if i < len(row) else 0 for row in cells) for i in range(len(headers))]
    lines = [f"== {title}"]
    for i, row in enumerate(cells):
        padded = [row[j].rjust(widths[j]) if j else row[j].ljust(widths[j]) for j in range(len(row))]
        lines.append("  ".join(padded).rstrip())
        if i == 0:
            lines.append("  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3f}" if abs(value) < 10 else f"{value:.1f}"
    return str(value)


@dataclass(frozen=True)
class Check:
    """One target: a measured value against a bound, with how it compares."""

    name: str
    value: float
    target: float
    higher_is_better: bool = False
    unit: str = ""

    @property
    def passed(self) -> bool:
        return self.value >= self.target if self.higher_is_better else self.value <= self.target

    @property
    def verdict(self) -> str:
        return "PASS" if self.passed else "MISS"

    def row(self) -> list[str]:
        bound = ">=" if self.higher_is_better else "<="
        return [
            self.name,
            f"{_cell(self.value)}{self.unit}",
            f"{bound} {_cell(self.target)}{self.unit}",
            self.verdict,
        ]


def checks_table(title: str, checks: Sequence[Check]) -> str:
    """The table of targets for a section: measured, target, PASS/MISS."""
    return format_table(title, ["target", "measured", "bound", "verdict"], [c.row() for c in checks])


@dataclass
class Report:
    """What a benchmark section printed and the targets it checked (collected for the summary)."""

    section: str
    tables: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def table(self, title: str, headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
        """Format, print (flushed, so progress shows) and keep a table."""
        text = format_table(title, headers, rows)
        self.tables.append(text)
        print(text + "\n", flush=True)
        return text

    def check(self, check: Check) -> Check:
        self.checks.append(check)
        return check

    def print_checks(self) -> None:
        if self.checks:
            text = checks_table(f"{self.section}: targets", self.checks)
            self.tables.append(text)
            print(text + "\n", flush=True)

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note: {text}", flush=True)


def log(message: str) -> None:
    """A progress line on stderr, so tables on stdout stay clean."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------- memory


@dataclass(frozen=True)
class Memory:
    """Resident memory of a set of processes: plain RSS, unique (USS) and proportional (PSS) shares."""

    processes: int
    rss: int
    uss: int
    pss: int


def memory_of(pids: Iterable[int]) -> Memory:
    """Summed RSS/USS/PSS of ``pids`` (USS/PSS fall back to RSS where the platform lacks them)."""
    rss = uss = pss = count = 0
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            info = proc.memory_full_info()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        count += 1
        rss += info.rss
        uss += getattr(info, "uss", info.rss)
        pss += getattr(info, "pss", info.rss)
    return Memory(count, rss, uss, pss)


def rss_bytes() -> int:
    """This process's resident set size."""
    return int(psutil.Process().memory_info().rss)


# ---------------------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Question:
    """A question to time, with the chat history it follows (role, content) pairs."""

    text: str
    history: tuple[tuple[str, str], ...] = ()
    lang: str = "en"


def dev_questions(limit: int | None = None, path: Path = DEV_SET) -> list[Question]:
    """The shared dev questions (with their histories), or :data:`BUILTIN_QUESTIONS` if the file is absent."""
    questions: list[Question] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError:
        lines = []
    for line in lines:
        if not line.strip():
            continue
        item = json.loads(line)
        history = tuple((t["role"], t["content"]) for t in item.get("history") or ())
        questions.append(Question(item["question"], history, item.get("lang", "en")))
    if not questions:
        questions = [Question(q, (), _lang_of(q)) for q in BUILTIN_QUESTIONS]
    return questions[:limit] if limit else questions


def _lang_of(text: str) -> str:
    if any("\uac00" <= ch <= "\ud7a3" for ch in text):
        return "ko"
    if any("\u0400" <= ch <= "\u04ff" for ch in text):
        return "ru"
    return "en"


_PREFIXES = (
    "",
    "Please tell me: ",
    "Quick question: ",
    "According to the report, ",
    "I would like to know: ",
    "Can you say ",
    "Briefly, ",
    "In the forum report, ",
)
_SUFFIXES = (
    "",
    " Thanks.",
    " Please answer briefly.",
    " Cite the report.",
    " I am curious.",
    " Answer from the report.",
    " Thank you!",
    " Be precise.",
)


def unique_variants(questions: Sequence[Question], count: int, shuffle: bool = False) -> list[Question]:
    """``count`` distinct questions made by wrapping ``questions`` in neutral phrases (defeats any cache).

    With ``shuffle`` the variants are drawn in a seeded random order, so any slice of them mixes the
    languages (and so the models) as the whole set does.
    """
    variants = _all_variants(questions)
    if shuffle:
        random.Random(0).shuffle(variants)
    if count > len(variants):
        raise ValueError(
            f"only {len(variants)} distinct variants can be made from {len(questions)} questions"
        )
    return variants[:count]


def _all_variants(questions: Sequence[Question]) -> list[Question]:
    """Every distinct prefix/suffix wrapping of ``questions``, the originals first."""
    out: list[Question] = []
    seen: set[tuple[str, tuple[tuple[str, str], ...]]] = set()
    for suffix in _SUFFIXES:
        for prefix in _PREFIXES:
            for q in questions:
                text = f"{prefix}{q.text}{suffix}"
                if (text, q.history) not in seen:
                    seen.add((text, q.history))
                    out.append(Question(text, q.history, q.lang))
    return out


# ---------------------------------------------------------------------------------------- index + servers


def bench_settings(index_dir: Path, **overrides: Any) -> Any:
    """Settings for the repository corpus and ``index_dir`` (imported lazily: rag pulls in FAISS)."""
    from rag.config import Settings

    return Settings(corpus_dir=CORPUS_DIR, index_dir=index_dir, **overrides)


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def server_command(port: int, index_dir: Path, workers: int = 1) -> list[str]:
    """The command line that starts the real server on loopback: ``forumqa serve``."""
    return [
        sys.executable,
        "-m",
        "rag.cli",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--index-dir",
        str(index_dir),
        "--corpus-dir",
        str(CORPUS_DIR),
        "--workers",
        str(workers),
    ]


def http_status(url: str, timeout: float = 2.0) -> int | None:
    """The HTTP status of a GET of ``url``, or ``None`` when nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, ValueError):
        return None


@dataclass
class Server:
    """A server subprocess started by :func:`start_server`; use as a context manager to stop it."""

    process: subprocess.Popen[bytes]
    port: int
    started: float
    log_path: Path

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def wait_ready(self, timeout: float = 120.0, interval: float = 0.02) -> float:
        """Poll /readyz until 200; seconds from process start to readiness. Raises if it dies or times out."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log: {self.tail_log()}")
            if http_status(self.base_url + "/readyz", timeout=1.0) == 200:
                return time.perf_counter() - self.started
            time.sleep(interval)
        raise TimeoutError(f"server not ready after {timeout:.0f}s; log: {self.tail_log()}")

    def wait_all_ready(self, consecutive: int = 20, timeout: float = 180.0) -> float:
        """Poll /readyz on fresh connections until ``consecutive`` 200s in a row (every worker loaded).

        With several workers each loads on its own and a single 200 may come from the first one ready.
        """
        deadline = time.monotonic() + timeout
        streak = 0
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited with {self.process.returncode}; log: {self.tail_log()}")
            streak = streak + 1 if http_status(self.base_url + "/readyz", timeout=1.0) == 200 else 0
            if streak >= consecutive:
                return time.perf_counter() - self.started
            time.sleep(0.02)
        raise TimeoutError(f"workers not all ready after {timeout:.0f}s; log: {self.tail_log()}")

    def pids(self) -> list[int]:
        """The server process and all its descendants (uvicorn workers)."""
        try:
            proc = psutil.Process(self.process.pid)
            return [proc.pid, *(c.pid for c in proc.children(recursive=True))]
        except psutil.NoSuchProcess:
            return []

    def worker_pids(self) -> list[int]:
        """Processes that serve requests: the workers when uvicorn forks them, else the server itself.

        With ``--workers N > 1`` uvicorn runs a supervisor plus N worker processes (and, on Python's
        spawn, a resource tracker); the workers are the children that hold the app.
        """
        try:
            proc = psutil.Process(self.process.pid)
            children = proc.children(recursive=False)
        except psutil.NoSuchProcess:
            return []
        workers = [c.pid for c in children if _is_worker(c)]
        return workers or [proc.pid]

    def tail_log(self, chars: int = 2000) -> str:
        try:
            return self.log_path.read_text(encoding="utf-8", errors="replace")[-chars:]
        except OSError:
            return "(no log)"

    def stop(self, timeout: float = 15.0) -> None:
        """SIGTERM the server (uvicorn stops its workers), then SIGKILL whatever is left."""
        pids = self.pids()
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
        for pid in pids[1:]:
            with contextlib.suppress(psutil.NoSuchProcess):
                psutil.Process(pid).kill()
        self.log_path.unlink(missing_ok=True)

    def __enter__(self) -> Server:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _is_worker(proc: psutil.Process) -> bool:
    try:
        cmdline = " ".join(proc.cmdline())
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False
    return "resource_tracker" not in cmdline


def start_server(index_dir: Path, workers: int = 1, env: dict[str, str] | None = None) -> Server:
    """Start the server (``forumqa serve``) on a free loopback port.

    Its output goes to a temporary log file, removed when the server is stopped.
    """
    port = free_port()
    fd, name = tempfile.mkstemp(prefix="forumqa-server-", suffix=".log")
    os.close(fd)
    log_file = Path(name)
    full_env = {
        **os.environ,
        "PYTHONUNBUFFERED": "1",
        "FORUMQA_INDEX_DIR": str(index_dir),
        "FORUMQA_CORPUS_DIR": str(CORPUS_DIR),
        **(env or {}),
    }
    with log_file.open("wb") as out:
        started = time.perf_counter()
        process = subprocess.Popen(
            server_command(port, index_dir, workers),
            cwd=ROOT,
            env=full_env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Server(process, port, started, log_file)


# ---------------------------------------------------------------------------------------- run context


@dataclass
class Context:
    """What the sections of one benchmark run share: the mode, a scratch folder and one built index."""

    quick: bool
    workdir: Path
    index_dir_override: Path | None = None
    _index_dir: Path | None = None
    _variants: dict[tuple[str, ...], Path] = field(default_factory=dict)

    def repeats(self, full: int, quick: int = 1) -> int:
        """How many times to repeat a measurement in this mode."""
        return quick if self.quick else full

    def scratch(self, name: str) -> Path:
        """A fresh folder under this run's scratch space."""
        return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=self.workdir))

    def adopt_index(self, index_dir: Path) -> None:
        """Use an index a section has already built for the later sections (unless one was given)."""
        if self.index_dir_override is None and self._index_dir is None:
            self._index_dir = index_dir

    def index_dir(self) -> Path:
        """A folder holding an up-to-date build of the repository corpus (built on first use)."""
        if self._index_dir is not None:
            return self._index_dir
        target = self.index_dir_override or self.scratch("index")
        from rag.index.build import build_index

        log(f"preparing the index in {target}")
        build_index(bench_settings(target), progress=False)
        self._index_dir = target
        return target

    def variant_index(self, embedders: Sequence[str]) -> Path:
        """A copy of the shared index rebuilt for ``embedders`` (reusing the embedding caches)."""
        key = tuple(embedders)
        if key not in self._variants:
            from rag.index.build import build_index

            target = self.scratch("index-" + "-".join(key))
            shutil.copytree(
                self.index_dir(),
                target,
                dirs_exist_ok=True,
                ignore=shutil.ignore_patterns(".lock"),
            )
            log(f"building an index for embedders {', '.join(key)}")
            build_index(bench_settings(target, embedders=list(key)), progress=False)
            self._variants[key] = target
        return self._variants[key]


def with_onnx(embedders: Sequence[str]) -> list[str]:
    """``embedders`` with the torch MiniLM replaced by its int8 ONNX twin."""
    return ["minilm-onnx" if name == "minilm" else name for name in embedders]


def embedders_env(embedders: Sequence[str]) -> dict[str, str]:
    """The environment that makes ``forumqa serve`` use ``embedders`` (pydantic-settings reads JSON lists)."""
    return {"FORUMQA_EMBEDDERS": json.dumps(list(embedders))}
