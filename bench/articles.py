"""The ten SQuAD articles of ``../shared/eval/squad`` as a corpus: builds measured in a child process.

A build runs in its own process (``python -m bench.articles CORPUS INDEX_DIR EMBEDDERS [--add FILE]``)
so its peak resident memory is that build's alone, models included; it prints one JSON object. With
``--add`` the child then copies FILE into the corpus and builds again with the models loaded, as a
server does: the one-document add time. :mod:`bench.index_build` and :mod:`bench.scale` use it.
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
    corpus: Path, index_dir: Path, embedders: list[str], add: Path | None = None
) -> dict[str, Any]:
    """Run a fresh build of ``corpus`` (then the ``add`` of one document) in a child process."""
    command = [sys.executable, "-m", "bench.articles", str(corpus), str(index_dir), json.dumps(embedders)]
    if add is not None:
        command += ["--add", str(add)]
    done = subprocess.run(command, check=True, capture_output=True, text=True, cwd=ROOT)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _child(argv: list[str]) -> dict[str, Any]:
    from rag.config import Settings
    from rag.index.build import build_index
    from rag.index.embedders import get_embedder

    corpus, index_dir, embedders = Path(argv[0]), Path(argv[1]), json.loads(argv[2])
    started = time.perf_counter()
    for name in embedders:
        get_embedder(name)
    load_s = time.perf_counter() - started
    settings = Settings(corpus_dir=corpus, index_dir=index_dir, embedders=embedders)
    cpu = time.process_time()
    build = build_index(settings, progress=False)
    result: dict[str, Any] = {
        "load_s": load_s,
        "build_s": build.seconds,
        "build_cpu_s": time.process_time() - cpu,
        "chunks": build.chunks,
        "sentences": build.sentences,
        "embedded": build.embedded,
        "embed_s": build.embed_seconds,
    }
    if len(argv) > 4 and argv[3] == "--add":
        shutil.copyfile(argv[4], corpus / Path(argv[4]).name)
        added = build_index(settings, progress=False)
        result.update(add_s=added.seconds, add_embedded=added.embedded, add_embed_s=added.embed_seconds)
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
