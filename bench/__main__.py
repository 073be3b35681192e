"""``python -m bench [--quick] [SECTION ...]``: run the speed and scale benchmarks and print their tables.

Sections, in the order they run: build, latency, levers, http, cold, scale, pgvector. Each prints tables
of medians over repeated runs beside the floor or baseline it is compared with, then PASS/MISS per target;
a summary of every target closes the run. The exit status is 0 unless a section crashed (or, with
``--strict``, a target was missed): a miss on a busy shared machine is a finding, not a failure.
"""

from __future__ import annotations

import argparse
import importlib
import os
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path

from bench.common import Check, Context, Report, checks_table, log

# section name -> module under bench/ with a ``run(ctx) -> Report`` function
SECTIONS: dict[str, str] = {
    "build": "bench.index_build",
    "latency": "bench.answer_latency",
    "levers": "bench.levers",
    "http": "bench.http_load",
    "cold": "bench.cold_start",
    "scale": "bench.scale",
    "pgvector": "bench.pgvector",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "sections", nargs="*", metavar="SECTION", help=f"sections to run (default all): {', '.join(SECTIONS)}"
    )
    parser.add_argument(
        "--quick", action="store_true", help="fewer repeats and smaller sizes (a few minutes)"
    )
    parser.add_argument(
        "--index-dir",
        type=Path,
        help="reuse (building if stale) this index for the sections that need one; "
        "default: a fresh build in a temporary folder",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder (its path is printed)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    unknown = [s for s in args.sections if s not in SECTIONS]
    if unknown:
        parser.error(f"unknown section(s) {', '.join(unknown)}; choose from {', '.join(SECTIONS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    wanted = [s for s in SECTIONS if not args.sections or s in args.sections]
    workdir = Path(tempfile.mkdtemp(prefix="forumqa-bench-"))
    ctx = Context(quick=args.quick, workdir=workdir, index_dir_override=args.index_dir)
    started = time.perf_counter()
    print(
        f"forum-qa benchmarks ({'quick' if args.quick else 'full'}): {', '.join(wanted)}; "
        f"{os.cpu_count()} CPUs, python {sys.version.split()[0]}\n",
        flush=True,
    )
    reports: list[Report] = []
    crashed: list[str] = []
    try:
        for name in wanted:
            log(f"section {name}")
            section_started = time.perf_counter()
            try:
                reports.append(importlib.import_module(SECTIONS[name]).run(ctx))
            except Exception:
                traceback.print_exc()
                crashed.append(name)
            log(f"section {name} took {time.perf_counter() - section_started:.0f}s")
    finally:
        if args.keep:
            print(f"scratch kept in {workdir}")
        else:
            shutil.rmtree(workdir, ignore_errors=True)
    checks: list[Check] = [c for r in reports for c in r.checks]
    print(
        checks_table(
            f"summary: all targets ({time.perf_counter() - started:.0f}s)",
            [
                Check(f"{r.section}: {c.name}", c.value, c.target, c.higher_is_better, c.unit)
                for r in reports
                for c in r.checks
            ],
        )
    )
    if crashed:
        print(f"\nsections that crashed: {', '.join(crashed)}")
        return 2
    if args.strict and not all(c.passed for c in checks):
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
