#!/usr/bin/env python3
"""Validate the plain-question set (eval/plain/questions.jsonl) against the prepared SQuAD corpus.

The corpus is the directory ``prepare.py`` writes (``OUT_DIR/corpus/<article>.txt``)::

    python3 ../shared/eval/squad/prepare.py /tmp/plainprep
    python3 eval/plain/check.py /tmp/plainprep/corpus eval/plain/questions.jsonl

Checks (any failure makes the exit status 1):

* every line is a JSON object whose keys are exactly, and in this order,
  ``id, question, evidence, answerable, lang, article, kind`` plus ``yesno`` last for kind ``yesno``;
* ids are unique; ``kind`` is one of the known kinds; ``yesno`` is ``"yes"`` or ``"no"`` and present
  exactly when ``kind == "yesno"``;
* ``answerable`` is false exactly for kind ``unanswerable``, and then ``evidence`` is empty;
  answerable questions have at least one evidence phrase;
* each ``article`` names a corpus file, and every evidence phrase occurs in that article's text
  (case-folded, runs of white space folded to one space);
* each article has at least ``--min-unanswerable-per-article`` unanswerable questions, and the whole
  set has at least ``--min-total`` questions and ``--min-unanswerable`` unanswerable ones.

It prints a table of counts per article and kind.  With ``--show-overlap`` it also lists answerable
questions that copy four or more consecutive words from their article (a warning, not a failure).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

KINDS: tuple[str, ...] = (
    "overview", "yesno", "who", "when", "where", "howmany", "why",
    "what-happened", "which", "what", "unanswerable",
)
BASE_KEYS: list[str] = ["id", "question", "evidence", "answerable", "lang", "article", "kind"]
WORD_RE = re.compile(r"[\w'’]+")


def fold(text: str) -> str:
    """Case-fold and collapse every run of white space to a single space."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def load_corpus(corpus_dir: Path) -> dict[str, str]:
    """Map article slug (file stem) to its folded text."""
    texts = {p.stem: fold(p.read_text(encoding="utf-8")) for p in sorted(corpus_dir.glob("*.txt"))}
    if not texts:
        raise SystemExit(f"no *.txt files in {corpus_dir}")
    return texts


def four_gram_overlap(question: str, grams: set[tuple[str, ...]]) -> list[str]:
    """Return the 4-word sequences of the question that also occur in the article."""
    words = WORD_RE.findall(question.casefold())
    return [" ".join(words[i:i + 4]) for i in range(len(words) - 3) if tuple(words[i:i + 4]) in grams]


def check_row(row: Any, lineno: int, texts: dict[str, str]) -> list[str]:
    """Return the problems of one parsed line (empty list when it is valid)."""
    where = f"line {lineno}"
    if not isinstance(row, dict):
        return [f"{where}: not a JSON object"]
    errors: list[str] = []
    where = f"line {lineno} ({row.get('id', '?')})"
    kind = row.get("kind")
    expected = BASE_KEYS + (["yesno"] if kind == "yesno" else [])
    if list(row.keys()) != expected:
        errors.append(f"{where}: keys {list(row.keys())} != {expected}")
    if kind not in KINDS:
        errors.append(f"{where}: unknown kind {kind!r}")
    if kind == "yesno" and row.get("yesno") not in ("yes", "no"):
        errors.append(f"{where}: yesno must be 'yes' or 'no', got {row.get('yesno')!r}")
    if not isinstance(row.get("id"), str) or not row.get("id"):
        errors.append(f"{where}: id must be a non-empty string")
    if not isinstance(row.get("question"), str) or not row.get("question", "").strip():
        errors.append(f"{where}: question must be a non-empty string")
    if row.get("lang") != "en":
        errors.append(f"{where}: lang must be 'en'")
    answerable = row.get("answerable")
    evidence = row.get("evidence")
    if not isinstance(answerable, bool):
        errors.append(f"{where}: answerable must be a boolean")
    elif answerable == (kind == "unanswerable"):
        errors.append(f"{where}: answerable={answerable} does not fit kind {kind!r}")
    if not isinstance(evidence, list) or not all(isinstance(e, str) and e.strip() for e in evidence):
        errors.append(f"{where}: evidence must be a list of non-empty strings")
        return errors
    if answerable is False and evidence:
        errors.append(f"{where}: unanswerable question has evidence")
    if answerable is True and not evidence:
        errors.append(f"{where}: answerable question has no evidence")
    article = row.get("article")
    if article not in texts:
        errors.append(f"{where}: unknown article {article!r}")
        return errors
    for phrase in evidence:
        if fold(phrase) not in texts[article]:
            errors.append(f"{where}: evidence not found in {article}: {phrase!r}")
    return errors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Validate eval/plain/questions.jsonl against the prepared SQuAD corpus.")
    parser.add_argument("corpus", type=Path, help="corpus directory written by prepare.py (OUT_DIR/corpus)")
    parser.add_argument("questions", type=Path, help="the questions .jsonl file")
    parser.add_argument("--min-total", type=int, default=200, help="minimum number of questions (200)")
    parser.add_argument("--min-unanswerable", type=int, default=40,
                        help="minimum number of unanswerable questions in all (40)")
    parser.add_argument("--min-unanswerable-per-article", type=int, default=4,
                        help="minimum unanswerable questions per article (4)")
    parser.add_argument("--show-overlap", action="store_true",
                        help="list answerable questions sharing 4+ consecutive words with the article")
    args = parser.parse_args(argv)

    texts = load_corpus(args.corpus)
    errors: list[str] = []
    rows: list[dict[str, Any]] = []
    with args.questions.open(encoding="utf-8") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                errors.append(f"line {lineno}: invalid JSON ({exc})")
                continue
            problems = check_row(row, lineno, texts)
            errors.extend(problems)
            if isinstance(row, dict):
                rows.append(row)

    for qid, n in Counter(r.get("id") for r in rows).items():
        if n > 1:
            errors.append(f"duplicate id {qid!r} ({n} times)")

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    for r in rows:
        counts[str(r.get("article"))][str(r.get("kind"))] += 1

    kinds = [k for k in KINDS if any(c[k] for c in counts.values())]
    width = max([len(a) for a in counts] + [7])
    print(f"{'article':<{width}} " + " ".join(f"{k[:8]:>8}" for k in kinds) + f" {'total':>6}")
    for article in sorted(counts):
        c = counts[article]
        print(f"{article:<{width}} " + " ".join(f"{c[k]:>8}" for k in kinds) + f" {sum(c.values()):>6}")
        need = args.min_unanswerable_per_article
        if c["unanswerable"] < need:
            errors.append(f"{article}: {c['unanswerable']} unanswerable < {need}")
    total = Counter[str]()
    for c in counts.values():
        total.update(c)
    print(f"{'ALL':<{width}} " + " ".join(f"{total[k]:>8}" for k in kinds) + f" {sum(total.values()):>6}")

    if len(rows) < args.min_total:
        errors.append(f"{len(rows)} questions < {args.min_total}")
    if total["unanswerable"] < args.min_unanswerable:
        errors.append(f"{total['unanswerable']} unanswerable < {args.min_unanswerable}")
    missing_articles = sorted(set(texts) - set(counts))
    if missing_articles:
        print(f"note: corpus articles without questions: {', '.join(missing_articles)}")

    if args.show_overlap:
        for r in rows:
            slug = str(r.get("article"))
            if r.get("kind") == "unanswerable" or slug not in texts:
                continue
            words = WORD_RE.findall(texts[slug])
            grams = {tuple(words[i:i + 4]) for i in range(len(words) - 3)}
            overlap = four_gram_overlap(str(r.get("question", "")), grams)
            if overlap:
                print(f"overlap {r.get('id')}: {r.get('question')} {overlap}")

    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    print(f"{len(rows)} questions, {total['unanswerable']} unanswerable, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
