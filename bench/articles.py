"""The ten SQuAD articles of ``../shared/eval/squad`` as a corpus: builds measured in a child process.

A build runs in its own process (``python -m bench.articles CORPUS INDEX_DIR EMBEDDERS [--add FILE]
[--baseline]``) so its peak resident memory is that build's alone, models included; it prints one JSON
object: the build's seconds, CPU seconds, the seconds until it answered (its first published stage), and
each stage's seconds, texts, texts/s and the peak memory so far when it ended. With ``--add`` the child
then copies FILE into the corpus and builds again with the models loaded, as a server does (the
one-document add), then removes it and builds again. ``--baseline`` builds as before staged builds: one
shot, every model embedding chunks and sentences, nothing served until every model is done.
:mod:`bench.index_build` and :mod:`bench.scale` use it.
"""

from __future__ import annotations

import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.common import ROOT

SQUAD_DIR = ROOT.parent / "shared" / "eval" / "squad"
# The document added to a built index of the nine others: 54 KB of text, the "one 50 KB document".
ADDED_ARTICLE = "to-kill-a-mockingbird"


def prepare(workdir: Path) -> Path | None:
    """Write the ten articles and their questions under ``workdir`` (None when the data is absent)."""
    script = SQUAD_DIR / "prepare.py"
    if not script.is_file():
        return None
    subprocess.run([sys.executable, str(script), str(workdir)], check=True, capture_output=True)
    return workdir


def copies(corpus: Path, target: Path, times: int) -> Path:
    """``corpus`` ``times`` over under distinct document ids (``<article>-<k>.txt``)."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(corpus.glob("*.txt")):
        for k in range(times):
            shutil.copyfile(path, target / f"{path.stem}-{k}{path.suffix}")
    return target


def without(corpus: Path, target: Path, article: str) -> Path:
    """``corpus`` less one article."""
    target.mkdir(parents=True, exist_ok=True)
    for path in sorted(corpus.glob("*.txt")):
        if path.stem != article:
            shutil.copyfile(path, target / path.name)
    return target


def measure_build(
    corpus: Path, index_dir: Path, embedders: list[str], add: Path | None = None, baseline: bool = False
) -> dict[str, Any]:
    """Run a fresh build of ``corpus`` (then the ``add`` of one document and its removal) in a child
    process; ``baseline``: one shot, chunks embedded by every model (as builds were before stages)."""
    command = [sys.executable, "-m", "bench.articles", str(corpus), str(index_dir), json.dumps(embedders)]
    if add is not None:
        command += ["--add", str(add)]
    if baseline:
        command += ["--baseline"]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


class _Timing:
    """Records a build's stages as they end (with the peak memory so far) and when it first answered."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.answerable_s: float | None = None
        self.stages: dict[str, dict[str, Any]] = {}

    def on_stage(self, stages: list[Any]) -> None:
        for stage in stages:
            if stage.state == "done" and stage.name not in self.stages:
                self.stages[stage.name] = {
                    "seconds": stage.seconds or 0.0,
                    "done": stage.done or 0,
                    "rate": stage.rate,
                    "peak_rss_bytes": peak_rss_bytes(),
                }

    def on_publish(self, build_dir: Path) -> None:
        if self.answerable_s is None:
            self.answerable_s = time.perf_counter() - self.started


def _build(settings: Any, baseline: bool) -> dict[str, Any]:
    from rag.index.build import build_index

    timing = _Timing()
    cpu = time.process_time()
    build = build_index(settings, progress=False, on_stage=timing.on_stage, on_publish=timing.on_publish)
    seconds = time.perf_counter() - timing.started
    return {
        "build_s": seconds,
        "build_cpu_s": time.process_time() - cpu,
        # Before staged builds nothing answered until the whole build was done.
        "answerable_s": seconds if baseline else timing.answerable_s,
        "chunks": build.chunks,
        "sentences": build.sentences,
        "embedded": build.embedded,
        "embed_s": build.embed_seconds,
        "stages": timing.stages,
    }


def _child(argv: list[str]) -> dict[str, Any]:
    from rag.config import Settings
    from rag.index.embedders import get_embedder

    corpus, index_dir, embedders = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    baseline = "--baseline" in argv
    started = time.perf_counter()
    for name in embedders:
        get_embedder(name)
    load_s = time.perf_counter() - started
    settings = Settings(corpus_dir=corpus, index_dir=index_dir, embedders=embedders)
    if baseline:
        settings = settings.model_copy(update={"derived_chunk_vectors": []})
    result: dict[str, Any] = {"load_s": load_s, **_build(settings, baseline)}
    if "--add" in argv:
        added = Path(argv[argv.index("--add") + 1])
        shutil.copyfile(added, corpus / added.name)
        add = _build(settings, baseline)
        result.update(
            add_s=add["build_s"],
            add_answerable_s=add["answerable_s"],
            add_embedded=add["embedded"],
            add_embed_s=add["embed_s"],
            add_stages=add["stages"],
        )
        (corpus / added.name).unlink()
        remove = _build(settings, baseline)
        result.update(
            remove_s=remove["build_s"],
            remove_answerable_s=remove["answerable_s"],
            remove_embedded=remove["embedded"],
        )
    result["peak_rss_bytes"] = peak_rss_bytes()
    return result


def peak_rss_bytes() -> int:
    """This process's peak resident memory since it started its program.

    ``VmHWM`` is the high-water mark of the process's own memory map, which exec replaces. Linux's
    ``ru_maxrss`` instead keeps the maximum across exec, so a child forked from a large process (a test
    session that loaded the models) would report its parent's peak.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


if __name__ == "__main__":
    print(json.dumps(_child(sys.argv[1:])))
