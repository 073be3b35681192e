#!/usr/bin/env python3
"""Validate the report-question set (eval/reports/questions.jsonl) against its corpus (eval/reports/corpus).

Usage, from the repository root::

    python3 eval/reports/check.py eval/reports/corpus eval/reports/questions.jsonl
    python3 eval/reports/check.py eval/reports/corpus eval/reports/questions.jsonl --show-overlap
    python3 eval/reports/check.py eval/reports/corpus eval/reports/questions.jsonl --markdown

Checks (any failure makes the exit status 1):

* every document in the corpus is listed in ``DOC_KINDS`` below, has its title on the first line, a blank
  second line, and between ``--min-words`` and ``--max-words`` words;
* every line of the questions file is a JSON object whose keys are exactly, and in this order,
  ``id, question, evidence, answerable, lang, article, kind, answer, after_topic, split``;
* ids are unique, have the form ``r-<short name>-NN``, one short name per article, numbered 01, 02, ...
  within each article in the order overview, yes/no, factual, unanswerable;
* ``kind`` is known; ``answerable`` is false exactly for kind ``unanswerable``, and then ``evidence`` is
  empty; answerable questions have at least one evidence phrase of 3 to 12 words;
* every evidence phrase occurs in its document (case-folded, runs of white space folded to one space);
* ``answer`` is ``yes``, ``no`` or ``unsettled`` for kind yesno; a non-empty span for who, when, where,
  howmany, howmuch and which; empty otherwise.  A span answer must occur in the document, inside the
  sentence of one of the question's evidence phrases (or inside the phrase itself);
* ``after_topic`` is 0, 1 or 2, and 0 for overview and unanswerable questions;
* ``split`` is ``fit`` or ``held-out`` and the same for all questions of a document; each split holds
  exactly one forum report, one set of minutes, one annual report, one status report, and one of the
  site visit and the workshop (the site visit in one split, the workshop in the other);
* each document has at least ``--min-overview`` overview and ``--min-unanswerable`` unanswerable questions
  and at least one yes/no question answered "no"; each set of minutes and each status report has at least
  one yes/no question answered "unsettled";
* the whole set has at least ``--min-total`` questions, and at least ``--min-after-topic`` (a fraction) of
  the answerable factual questions (kinds other than overview and yesno) have ``after_topic`` >= 1.

It prints a table of counts per document and kind.  ``--show-overlap`` lists answerable questions that
share four or more consecutive words with their document (a warning, not a failure), ``--show-topic``
prints, for every question with ``after_topic`` >= 1, the topic sentence and the answering sentence
with the question words each contains, and ``--markdown`` prints the counts table in Markdown.
Standard library only; Python 3.11 or later.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter, defaultdict
from pathlib import Path
from typing import Any

KEYS: list[str] = ["id", "question", "evidence", "answerable", "lang", "article", "kind", "answer",
                   "after_topic", "split"]
KINDS: tuple[str, ...] = (
    "overview", "yesno", "who", "when", "where", "howmany", "howmuch", "why", "what-decided",
    "what-next", "which", "what", "unanswerable",
)
SPAN_KINDS = {"who", "when", "where", "howmany", "howmuch", "which"}
FACTUAL_KINDS = set(KINDS) - {"overview", "yesno", "unanswerable"}
YESNO_ANSWERS = ("yes", "no", "unsettled")
SPLITS = ("fit", "held-out")
# Order of kinds within a document: overview, yes/no, factual, unanswerable.
KIND_RANK = {k: (0 if k == "overview" else 1 if k == "yesno" else 3 if k == "unanswerable" else 2)
             for k in KINDS}

# The kind of each document, for the split rule.
DOC_KINDS: dict[str, str] = {
    "danube-agrifood-forum": "forum",
    "nordic-rural-emergency-conference": "forum",
    "kilbarrow-council-minutes": "minutes",
    "mlima-coffee-board-minutes": "minutes",
    "wirrabee-libraries-annual-report": "annual",
    "kvarner-ferries-annual-report": "annual",
    "azores-registry-migration-status": "status",
    "malaya-bridge-status-report": "status",
    "lunsemba-minigrid-site-visit": "site-visit",
    "kutaisi-museum-digitisation-workshop": "workshop",
}
PAIRED_KINDS = ("forum", "minutes", "annual", "status")
SINGLE_KINDS = ("site-visit", "workshop")

WORD_RE = re.compile(r"[\w'’]+")
ID_RE = re.compile(r"^r-([a-z0-9]+(?:-[a-z0-9]+)*)-(\d{2})$")
# A sentence ends at . ! or ? (optionally followed by a closing quote or bracket) and white space,
# unless the word before the full stop is a known abbreviation or a single initial.
BOUNDARY_RE = re.compile(r"[.!?][\"”’)]*\s+")
ABBREVIATIONS = {"dr", "mr", "mrs", "ms", "prof", "engr", "cllr", "cr", "st", "no", "nos", "vs", "etc",
                 "e.g", "i.e", "approx", "min", "jr", "sr", "co", "ltd", "inc"}


def fold(text: str) -> str:
    """Case-fold and collapse every run of white space to a single space."""
    return re.sub(r"\s+", " ", text).strip().casefold()


def split_sentences(text: str) -> list[str]:
    """Split a document into sentences: every line is split on its own (headings and titles stand alone)."""
    sentences: list[str] = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        start = 0
        for m in BOUNDARY_RE.finditer(line):
            before = line[start:m.start()].split()
            last = before[-1].casefold().rstrip(".") if before else ""
            if line[m.start()] == "." and (last in ABBREVIATIONS or re.fullmatch(r"[^\W\d_]", last)):
                continue
            sentences.append(line[start:m.end()].strip())
            start = m.end()
        if line[start:].strip():
            sentences.append(line[start:].strip())
    return sentences


def words(text: str) -> list[str]:
    return WORD_RE.findall(text.casefold())


STOPWORDS = set("""a an the of in on at to for from by with and or but is are was were be been being has have had
do does did will would can could should may might what who whom whose when where which why how many much
this that these those it its their there they them he she his her i you we our your as into about after
before than then so not no yes any all more most up out over under new get got give me tell""".split())


def content_words(text: str) -> set[str]:
    return {w.rstrip("s") for w in words(text) if w not in STOPWORDS and len(w) > 2}


class Doc:
    def __init__(self, path: Path) -> None:
        self.slug = path.stem
        self.raw = path.read_text(encoding="utf-8")
        self.folded = fold(self.raw)
        self.sentences = split_sentences(self.raw)
        self.folded_sentences = [fold(s) for s in self.sentences]
        toks = words(self.raw)
        self.grams = {tuple(toks[i:i + 4]) for i in range(len(toks) - 3)}
        self.n_words = len(self.raw.split())

    def sentence_index(self, phrase: str) -> int | None:
        """Index of the first sentence that contains the phrase, or None if it spans sentences."""
        p = fold(phrase)
        for i, s in enumerate(self.folded_sentences):
            if p in s:
                return i
        return None


def check_docs(docs: dict[str, Doc], min_words: int, max_words: int) -> list[str]:
    errors: list[str] = []
    for slug, doc in docs.items():
        if slug not in DOC_KINDS:
            errors.append(f"{slug}: document not listed in DOC_KINDS")
        lines = doc.raw.splitlines()
        if len(lines) < 3 or not lines[0].strip() or lines[1].strip():
            errors.append(f"{slug}: first line must be the title and the second line blank")
        if not min_words <= doc.n_words <= max_words:
            errors.append(f"{slug}: {doc.n_words} words, outside {min_words}-{max_words}")
    for slug in DOC_KINDS:
        if slug not in docs:
            errors.append(f"{slug}: listed in DOC_KINDS but not in the corpus")
    return errors


def check_row(row: Any, lineno: int, docs: dict[str, Doc]) -> list[str]:
    """Return the problems of one parsed line (empty list when it is valid)."""
    where = f"line {lineno}"
    if not isinstance(row, dict):
        return [f"{where}: not a JSON object"]
    errors: list[str] = []
    where = f"line {lineno} ({row.get('id', '?')})"
    if list(row.keys()) != KEYS:
        errors.append(f"{where}: keys {list(row.keys())} != {KEYS}")
    kind = row.get("kind")
    if kind not in KINDS:
        errors.append(f"{where}: unknown kind {kind!r}")
    if not isinstance(row.get("id"), str) or not ID_RE.match(row.get("id", "")):
        errors.append(f"{where}: id must look like r-<short name>-NN")
    question = row.get("question")
    if not isinstance(question, str) or not question.strip():
        errors.append(f"{where}: question must be a non-empty string")
    if row.get("lang") != "en":
        errors.append(f"{where}: lang must be 'en'")
    if row.get("split") not in SPLITS:
        errors.append(f"{where}: split must be one of {SPLITS}")
    after = row.get("after_topic")
    if not isinstance(after, int) or isinstance(after, bool) or after not in (0, 1, 2):
        errors.append(f"{where}: after_topic must be 0, 1 or 2")
    elif kind in ("overview", "unanswerable") and after != 0:
        errors.append(f"{where}: after_topic must be 0 for kind {kind}")
    answerable = row.get("answerable")
    if not isinstance(answerable, bool):
        errors.append(f"{where}: answerable must be a boolean")
    elif answerable == (kind == "unanswerable"):
        errors.append(f"{where}: answerable={answerable} does not fit kind {kind!r}")
    evidence = row.get("evidence")
    if not isinstance(evidence, list) or not all(isinstance(e, str) and e.strip() for e in evidence):
        errors.append(f"{where}: evidence must be a list of non-empty strings")
        return errors
    if answerable is False and evidence:
        errors.append(f"{where}: unanswerable question has evidence")
    if answerable is True and not evidence:
        errors.append(f"{where}: answerable question has no evidence")
    for phrase in evidence:
        n = len(phrase.split())
        if not 3 <= n <= 12:
            errors.append(f"{where}: evidence phrase of {n} words (3-12 allowed): {phrase!r}")
    answer = row.get("answer")
    if not isinstance(answer, str):
        errors.append(f"{where}: answer must be a string")
        return errors
    if kind == "yesno":
        if answer not in YESNO_ANSWERS:
            errors.append(f"{where}: yesno answer must be one of {YESNO_ANSWERS}, got {answer!r}")
    elif kind in SPAN_KINDS:
        if not answer.strip():
            errors.append(f"{where}: kind {kind} needs a verbatim answer span")
    elif answer:
        errors.append(f"{where}: kind {kind} must have an empty answer")
    article = row.get("article")
    if article not in docs:
        errors.append(f"{where}: unknown article {article!r}")
        return errors
    doc = docs[article]
    for phrase in evidence:
        if fold(phrase) not in doc.folded:
            errors.append(f"{where}: evidence not found in {article}: {phrase!r}")
    if kind in SPAN_KINDS and answer.strip():
        a = fold(answer)
        if a not in doc.folded:
            errors.append(f"{where}: answer not found in {article}: {answer!r}")
        else:
            places = []
            for phrase in evidence:
                places.append(fold(phrase))
                idx = doc.sentence_index(phrase)
                if idx is not None:
                    places.append(doc.folded_sentences[idx])
            if not any(a in p for p in places):
                errors.append(f"{where}: answer {answer!r} is not in the sentence of any evidence phrase")
    return errors


def check_ids_and_order(rows: list[dict[str, Any]]) -> list[str]:
    errors: list[str] = []
    for qid, n in Counter(r.get("id") for r in rows).items():
        if n > 1:
            errors.append(f"duplicate id {qid!r} ({n} times)")
    by_article: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for r in rows:
        by_article[str(r.get("article"))].append(r)
    shorts: dict[str, str] = {}
    for article, rs in by_article.items():
        names = set()
        for expected, r in enumerate(rs, 1):
            m = ID_RE.match(str(r.get("id", "")))
            if not m:
                continue
            names.add(m.group(1))
            if int(m.group(2)) != expected:
                errors.append(f"{r.get('id')}: expected number {expected:02d} (ids run 01, 02, ... per article)")
        if len(names) > 1:
            errors.append(f"{article}: several short names in its ids: {sorted(names)}")
        for name in names:
            if name in shorts and shorts[name] != article:
                errors.append(f"short name {name!r} used for {shorts[name]} and {article}")
            shorts[name] = article
        ranks = [KIND_RANK.get(str(r.get("kind")), 9) for r in rs]
        if ranks != sorted(ranks):
            errors.append(f"{article}: questions not in the order overview, yes/no, factual, unanswerable")
    return errors


def check_splits(rows: list[dict[str, Any]]) -> tuple[list[str], dict[str, str]]:
    errors: list[str] = []
    split_of: dict[str, str] = {}
    for r in rows:
        a, s = str(r.get("article")), str(r.get("split"))
        if a in split_of and split_of[a] != s:
            errors.append(f"{a}: questions in both splits ({split_of[a]} and {s}) at {r.get('id')}")
        split_of.setdefault(a, s)
    singles = []
    for split in SPLITS:
        kinds = Counter(DOC_KINDS.get(a, "?") for a, s in split_of.items() if s == split)
        for k in PAIRED_KINDS:
            if kinds[k] != 1:
                errors.append(f"split {split}: {kinds[k]} {k} document(s), need exactly 1")
        single = [k for k in SINGLE_KINDS if kinds[k]]
        if sum(kinds[k] for k in SINGLE_KINDS) != 1:
            errors.append(f"split {split}: needs exactly one of {SINGLE_KINDS}, has {dict(kinds)}")
        singles.extend(single)
        other = set(kinds) - set(PAIRED_KINDS) - set(SINGLE_KINDS)
        if other:
            errors.append(f"split {split}: documents of unknown kind {sorted(other)}")
    if sorted(singles) != sorted(SINGLE_KINDS):
        errors.append(f"the site visit and the workshop must be in different splits (got {singles})")
    return errors, split_of


def four_gram_overlap(question: str, grams: set[tuple[str, ...]]) -> list[str]:
    """Return the 4-word sequences of the question that also occur in the document."""
    toks = words(question)
    return [" ".join(toks[i:i + 4]) for i in range(len(toks) - 3) if tuple(toks[i:i + 4]) in grams]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Validate eval/reports/questions.jsonl against its corpus.")
    parser.add_argument("corpus", type=Path, help="the corpus directory (eval/reports/corpus)")
    parser.add_argument("questions", type=Path, help="the questions .jsonl file")
    parser.add_argument("--min-total", type=int, default=200, help="minimum number of questions (200)")
    parser.add_argument("--min-unanswerable", type=int, default=3,
                        help="minimum unanswerable questions per document (3)")
    parser.add_argument("--min-overview", type=int, default=2, help="minimum overview questions per document (2)")
    parser.add_argument("--min-after-topic", type=float, default=0.40,
                        help="minimum share of answerable factual questions with after_topic >= 1 (0.40)")
    parser.add_argument("--min-words", type=int, default=500, help="minimum words per document (500)")
    parser.add_argument("--max-words", type=int, default=1300, help="maximum words per document (1300)")
    parser.add_argument("--show-overlap", action="store_true",
                        help="list answerable questions sharing 4+ consecutive words with their document")
    parser.add_argument("--show-topic", action="store_true",
                        help="show topic and answer sentences of the after_topic questions")
    parser.add_argument("--markdown", action="store_true", help="also print the counts table in Markdown")
    args = parser.parse_args(argv)

    paths = sorted(args.corpus.glob("*.txt"))
    if not paths:
        raise SystemExit(f"no *.txt files in {args.corpus}")
    docs = {p.stem: Doc(p) for p in paths}
    errors: list[str] = check_docs(docs, args.min_words, args.max_words)
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
            errors.extend(check_row(row, lineno, docs))
            if isinstance(row, dict):
                rows.append(row)

    errors.extend(check_ids_and_order(rows))
    split_errors, split_of = check_splits(rows)
    errors.extend(split_errors)

    counts: dict[str, Counter[str]] = defaultdict(Counter)
    yesno: dict[str, Counter[str]] = defaultdict(Counter)
    after: dict[str, Counter[int]] = defaultdict(Counter)
    for r in rows:
        a = str(r.get("article"))
        counts[a][str(r.get("kind"))] += 1
        if r.get("kind") == "yesno":
            yesno[a][str(r.get("answer"))] += 1
        if isinstance(r.get("after_topic"), int):
            after[a][r["after_topic"]] += 1

    for a in sorted(set(docs) | set(counts)):
        c = counts[a]
        if c["overview"] < args.min_overview:
            errors.append(f"{a}: {c['overview']} overview questions < {args.min_overview}")
        if c["unanswerable"] < args.min_unanswerable:
            errors.append(f"{a}: {c['unanswerable']} unanswerable questions < {args.min_unanswerable}")
        if yesno[a]["no"] < 1:
            errors.append(f"{a}: no yes/no question answered 'no'")
        if DOC_KINDS.get(a) in ("minutes", "status") and yesno[a]["unsettled"] < 1:
            errors.append(f"{a}: minutes and status reports need a yes/no question answered 'unsettled'")

    kinds = [k for k in KINDS if any(c[k] for c in counts.values())]
    header = ["document", "kind", "split"] + kinds + ["total", "after1", "after2", "yes/no/unsettled"]
    table: list[list[str]] = []
    total = Counter[str]()
    total_after = Counter[int]()
    total_yn = Counter[str]()
    for a in sorted(counts, key=lambda s: (SPLITS.index(split_of[s]) if split_of.get(s) in SPLITS else 9, s)):
        c = counts[a]
        total.update(c)
        total_after.update(after[a])
        total_yn.update(yesno[a])
        table.append([a, DOC_KINDS.get(a, "?"), split_of.get(a, "?")] + [str(c[k]) for k in kinds]
                     + [str(sum(c.values())), str(after[a][1]), str(after[a][2]),
                        f"{yesno[a]['yes']}/{yesno[a]['no']}/{yesno[a]['unsettled']}"])
    table.append(["all", "", ""] + [str(total[k]) for k in kinds]
                 + [str(sum(total.values())), str(total_after[1]), str(total_after[2]),
                    f"{total_yn['yes']}/{total_yn['no']}/{total_yn['unsettled']}"])
    widths = [max(len(h), *(len(r[i]) for r in table)) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    for r in table:
        print("  ".join(v.ljust(w) for v, w in zip(r, widths)))
    if args.markdown:
        print()
        print("| " + " | ".join(header) + " |")
        print("|" + "---|" * len(header))
        for r in table:
            cells = [f"**{v}**" if r[0] == "all" and v else v for v in r]
            print("| " + " | ".join(cells) + " |")
        print()

    factual = [r for r in rows if r.get("kind") in FACTUAL_KINDS]
    with_after = [r for r in factual if isinstance(r.get("after_topic"), int) and r["after_topic"] >= 1]
    share = len(with_after) / len(factual) if factual else 0.0
    print(f"answerable factual questions: {len(factual)}, with after_topic >= 1: {len(with_after)} ({share:.0%}); "
          f"after_topic 1: {sum(1 for r in rows if r.get('after_topic') == 1)}, "
          f"after_topic 2: {sum(1 for r in rows if r.get('after_topic') == 2)} (all kinds)")
    for split in SPLITS:
        in_split = [a for a, s in split_of.items() if s == split]
        print(f"{split}: {', '.join(sorted(in_split))} "
              f"({sum(1 for r in rows if r.get('split') == split)} questions)")
    if share < args.min_after_topic:
        errors.append(f"only {share:.0%} of answerable factual questions have after_topic >= 1 "
                      f"(need {args.min_after_topic:.0%})")
    if len(rows) < args.min_total:
        errors.append(f"{len(rows)} questions < {args.min_total}")
    long_q = [r for r in rows if len(str(r.get("question", "")).split()) > 12]
    for r in long_q:
        print(f"note: {r.get('id')} has {len(str(r.get('question')).split())} words: {r.get('question')}")

    if args.show_overlap:
        for r in rows:
            a = str(r.get("article"))
            if r.get("kind") == "unanswerable" or a not in docs:
                continue
            overlap = four_gram_overlap(str(r.get("question", "")), docs[a].grams)
            if overlap:
                print(f"overlap {r.get('id')}: {r.get('question')} {overlap}")

    if args.show_topic:
        for r in rows:
            a = str(r.get("article"))
            k = r.get("after_topic")
            if a not in docs or not isinstance(k, int) or k < 1 or not r.get("evidence"):
                continue
            doc = docs[a]
            idx = doc.sentence_index(r["evidence"][0])
            if idx is None or idx - k < 0:
                print(f"topic {r.get('id')}: cannot place the evidence sentence")
                continue
            qw = content_words(str(r.get("question")))
            topic, ans = doc.sentences[idx - k], doc.sentences[idx]
            in_topic = sorted(qw & content_words(topic))
            in_ans = sorted(qw & content_words(ans))
            flag = "" if len(in_topic) >= len(in_ans) else "  <-- answer sentence has more question words"
            print(f"topic {r.get('id')} (+{k}): {r.get('question')}\n"
                  f"    topic  {in_topic}: {topic}\n    answer {in_ans}: {ans}{flag}")

    for e in errors:
        print(f"FAIL: {e}", file=sys.stderr)
    print(f"{len(rows)} questions, {total['unanswerable']} unanswerable, {len(errors)} problem(s)")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
