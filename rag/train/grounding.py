"""Fit the grounding check (``python -m rag.train.grounding``): supported and planted fabricated sentences.

The data is generated, seeded, from text nobody wrote for this check:

- **passages**: windows of three consecutive sentences of a paragraph (what the LLM is given: the
  service's chunks are three-sentence windows too), from the ten SQuAD articles of ``shared/eval/squad``
  and the report (``corpus/third-korea-russia-forum.txt``);
- **supported** sentences citing their passage: one of its sentences verbatim, compressed (a clause or a
  parenthesis dropped), reordered (an opening phrase moved to the end), an answer-style sentence made of
  a crowd question and its short answer ("Who headed the delegation?" + "Lee In-ho" -> "Lee In-ho
  headed the delegation."), and a sentence citing its own passage and another one ([1][3]);
- **fabricated** sentences citing it: one of its sentences with a number, a date or a name swapped for
  one from elsewhere in the article, negated (or its negation removed), an invented fact (the sentence's
  subject with the predicate of a sentence of another article), a sentence of a far passage of the same
  article, and one of the adjacent passage (true of the article, wrong citation).

The model is fitted on the training articles of :mod:`rag.train.reader` (the same split); the threshold
is the lowest whose fabrications caught, averaged over the fabrication types, reach ``TARGET_CAUGHT`` on
those articles. The held-out articles and the report are only measured. Korean and Russian sentences
(``eval/grounding-foreign.jsonl``, written by hand from the report's facts) set the other scripts' threshold.

Reproducible: a fixed seed per article (crc32 of its name), features by the product's own code, a convex
fit from zero, rounded numbers; a rerun writes the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from rag.generate.grounding import (
    FEATURES,
    GroundingModel,
    Scorer,
    Support,
    _Passage,
    check,
    load_model,
)
from rag.index.embedders import get_embedder
from rag.ingest.chunking import split_sentences
from rag.linear import feature_matrix
from rag.text import names, numbers
from rag.train.reader import HELD_OUT_ARTICLES, TRAIN_ARTICLES, fit_logistic

ROOT = Path(__file__).resolve().parents[2]
REPORT = ROOT / "corpus" / "third-korea-russia-forum.txt"
REPORT_QUESTIONS = ROOT / "eval" / "dev.jsonl"
SQUAD = ROOT.parent / "shared" / "eval" / "squad"
MODEL_OUT = Path(__file__).resolve().parents[1] / "models" / "grounding.json"

SEED = 0
PASSAGES_PER_ARTICLE = 60  # about 550 examples an article; 8,000 texts to encode in all
TARGET_CAUGHT = 0.985  # on the training articles: held-out text then stays above 95 % with a margin
# For unmarked sentences checked against four passages: the catch rate there levels off near 99 %, and at
# 0.985 the threshold (0.97) kept a quarter of the faithful ones; at 0.97 it keeps most of them.
UNMARKED_TARGET_CAUGHT = 0.97
L2 = 1.0

SUPPORTED_KINDS = ("verbatim", "compressed", "reordered", "answer", "two_citations")
FABRICATED_KINDS = (
    "number_swap",
    "date_swap",
    "name_swap",
    "negation",
    "invented",
    "wrong_passage",
    "wrong_near",
)


@dataclass
class Article:
    name: str
    passages: list[list[str]]  # sentences of each passage
    paragraph_of: list[int]  # the paragraph of each passage
    # (question, short answer, evidence: the sentence or phrase of the article that holds the answer)
    questions: list[tuple[str, str, str]] = field(default_factory=list)

    def text(self, i: int) -> str:
        return " ".join(self.passages[i])


@dataclass
class Example:
    article: str
    kind: str
    supported: bool
    sentence: str
    cited: tuple[int, ...]  # passage indexes it cites
    origin: int  # the passage it came from (the one that supports it, if any)


# ------------------------------------------------------------------------------------ text


def _paragraphs(text: str) -> list[str]:
    """Body paragraphs: blank-line separated blocks without their heading lines (no closing stop)."""
    out = []
    for block in re.split(r"\n\s*\n", text):
        lines = [ln.strip() for ln in block.splitlines() if ln.strip()]
        body = [ln for ln in lines if ln.endswith((".", "?", "!", '"', "”")) or len(ln) > 120]
        if body:
            out.append(" ".join(body))
    return out


def article_of(name: str, text: str, questions: Sequence[tuple[str, str, str]] = ()) -> Article:
    """Passages of three sentences (non-overlapping, so that "another passage" never shares one)."""
    passages: list[list[str]] = []
    paragraph_of: list[int] = []
    for p_i, para in enumerate(_paragraphs(text)):
        sentences = [para[a:b] for a, b in split_sentences(para)]
        for w in range(0, len(sentences), 3):
            window = sentences[w : w + 3]
            if sum(len(s.split()) for s in window) >= 12:
                passages.append(window)
                paragraph_of.append(p_i)
    return Article(name, passages, paragraph_of, list(questions))


def squad_articles(squad_dir: Path = SQUAD) -> dict[str, Article]:
    with tempfile.TemporaryDirectory() as tmp:
        script = squad_dir / "prepare.py"
        if not script.is_file():
            raise FileNotFoundError(f"{script} not found: point --squad at shared/eval/squad")
        subprocess.run([sys.executable, str(script), tmp], check=True, capture_output=True)
        questions: dict[str, list[tuple[str, str, str]]] = {}
        for line in (Path(tmp) / "questions.jsonl").read_text(encoding="utf-8").splitlines():
            raw = json.loads(line)
            if raw.get("answerable") and raw.get("answers") and raw.get("evidence"):
                entry = (raw["question"], raw["answers"][0], raw["evidence"][0])
                questions.setdefault(raw["article"], []).append(entry)
        out = {}
        for path in sorted((Path(tmp) / "corpus").glob("*.txt")):
            body = path.read_text(encoding="utf-8").split("\n", 1)[1]  # the first line is the title
            out[path.stem] = article_of(path.stem, body, questions.get(path.stem, []))
    return out


def report_article(path: Path = REPORT, questions_path: Path = REPORT_QUESTIONS) -> Article:
    questions = []
    for line in questions_path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        if raw.get("lang") == "en" and raw.get("evidence") and not raw.get("history"):
            questions.append((raw["question"], raw["evidence"][0], raw["evidence"][0]))
    return article_of("report", path.read_text(encoding="utf-8"), questions)


# ------------------------------------------------------------------------------------ generators

_AUX = re.compile(
    r"\b(is|was|are|were|has|have|had|will|would|can|could|did|does|do|should|may|might|must)\b"
)
_VERB = re.compile(
    r"\b(is|was|are|were|has|have|had|will|would|can|could|became|becomes|remains|remained|"
    r"includes|included|began|led|made|said|won|called|described|received|released|announced|"
    r"\w+ed)\b"
)
_OPENER = re.compile(
    r"^(In|On|At|After|Before|During|Since|By|As|Although|When|While|Following|Despite|With|"
    r"Under|From|For|Throughout|Between|Later|Today|Currently|However|Meanwhile|Instead)\b"
)
_YEAR = re.compile(r"\b(1[0-9]{3}|20[0-9]{2})\b")
_MONTH = re.compile(
    r"\b(January|February|March|April|May|June|July|August|September|October|November|December)\b"
)
_NUMBER = re.compile(
    r"(?<![\w.,])(?!1[0-9]{3}\b|20[0-9]{2}\b)\d+(?:[.,]\d+)*(?![\w])|"
    r"\b(two|three|four|five|six|seven|eight|nine|ten|twelve|twenty|thirty|forty|fifty|hundred|thousand)\b",
    re.IGNORECASE,
)
_NAME_SPAN = re.compile(r"(?<=[a-z,;] )[A-Z][\w'’-]+(?: (?:of |de |the )?[A-Z][\w'’-]+)*")
_NEGATED = re.compile(r"\b(not|never|n't)\b ?", re.IGNORECASE)


def _ends(text: str) -> str:
    text = text.strip().rstrip(",;:")
    return text if text.endswith((".", "!", "?")) else text + "."


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]


def _decapital(text: str) -> str:
    first = text.split(" ", 1)[0]
    # Keep names and acronyms capitalised ("Apple", "NYC"): only lower a plain opening word.
    return text if first.isupper() or first.lower() not in _OPENER_WORDS else text[:1].lower() + text[1:]


_OPENER_WORDS = frozenset(
    re.findall(
        r"\w+",
        "in on at after before during since by as although when while following despite with under from "
        "for throughout between later today currently however meanwhile instead the a an this these it its "
        "they their he she his her there",
    )
)


def _clause_start(text: str) -> bool:
    """Whether ``text`` opens like a clause of its own ("they said...", "Apple released..."), not a
    relative clause or a list's tail ("which has...", "and media")."""
    first = text.split(" ", 1)[0]
    return first[:1].isupper() or first in {"the", "they", "he", "she", "it", "its", "their", "this", "these"}


def compressed(sentence: str, rng: random.Random) -> str | None:
    options = []
    no_paren = re.sub(r"\s*\([^)]*\)", "", sentence)
    if no_paren != sentence and len(no_paren.split()) >= 6:
        options.append(no_paren)
    clauses = sentence.rstrip(".").split(", ")
    if len(clauses) >= 2:
        if len(clauses[0].split()) >= 6:
            options.append(clauses[0])
        if len(clauses[-1].split()) >= 6 and _clause_start(clauses[-1]):
            options.append(_capital(clauses[-1]))
        for i in range(1, len(clauses) - 1):
            options.append(", ".join(clauses[:i] + clauses[i + 1 :]))
    halves = sentence.rstrip(".").split(" and ", 1)
    if len(halves) == 2 and len(halves[0].split()) >= 6:
        options.append(halves[0])
    return _ends(rng.choice(options)) if options else None


def reordered(sentence: str) -> str | None:
    body = sentence.rstrip(".")
    m = _OPENER.match(body)
    if m and ", " in body:
        opener, rest = body.split(", ", 1)
        if len(opener.split()) <= 10 and len(rest.split()) >= 4:
            return _ends(f"{_capital(rest)} {_decapital(opener)}")
    halves = body.split(", and ", 1)
    if len(halves) == 2 and len(halves[1].split()) >= 4 and _clause_start(halves[1]):
        return _ends(f"{_capital(halves[1])}, and {_decapital(halves[0])}")
    return None


def answer_style(question: str, answer: str) -> str | None:
    """A declarative sentence from a question and its short answer, as an LLM's answer reads."""
    q = question.strip().rstrip("?").strip()
    a = answer.strip().rstrip(".")
    rules = (
        (r"(?i)^who (was|is|were|are) (.+)$", lambda m: f"{a} {m[1]} {m[2]}"),
        (r"(?i)^who (\w+) (.+)$", lambda m: f"{a} {m[1]} {m[2]}"),
        (r"(?i)^(?:what|which) (?:\w+ )?(was|is|were|are) (.+)$", lambda m: f"{_capital(m[2])} {m[1]} {a}"),
        (
            r"(?i)^(?:when|in what year|what year) (?:did|was|were|is|does|do) (.+)$",
            lambda m: f"{_capital(m[1])} in {a}",
        ),
        (r"(?i)^where (?:did|was|were|is|does|do) (.+)$", lambda m: f"{_capital(m[1])} in {a}"),
        (
            r"(?i)^how (many|much) (.+?) (?:did|do|does|were|are|was|is|have|has) (.+)$",
            lambda m: f"{_capital(m[3])} {a} {m[2]}",
        ),
    )
    for pattern, make in rules:
        m = re.match(pattern, q)
        if m:
            return _ends(make(m))
    return None  # no template: "What did X do: Y" is no sentence an LLM writes


def negated(sentence: str) -> str | None:
    if _NEGATED.search(sentence):
        out = _NEGATED.sub("", sentence, count=1)
        return out if out != sentence else None
    m = _AUX.search(sentence)
    if m and m.start() > 0:
        return sentence[: m.end()] + " not" + sentence[m.end() :]
    m = re.search(r"(?<=\w )(\w+ed)\b", sentence)
    if m:
        return sentence[: m.start()] + "never " + sentence[m.start() :]
    return None


def invented(sentence: str, other: str) -> str | None:
    """The subject of ``sentence`` with the predicate of ``other`` (a sentence of another article)."""
    m = _VERB.search(sentence)
    n = _VERB.search(other)
    if not m or not n or m.start() < 3 or len(other[n.start() :].split()) < 4:
        return None
    return _ends(sentence[: m.start()].rstrip(", ") + " " + other[n.start() :].rstrip("."))


def _swap(
    sentence: str, pattern: re.Pattern[str], pool: Sequence[str], absent: set[str], rng: random.Random
) -> str | None:
    spots = list(pattern.finditer(sentence))
    if not spots:
        return None
    spot = rng.choice(spots)
    old = spot.group(0)
    choices = [p for p in pool if p.lower() != old.lower() and p.lower() not in absent]
    if not choices:
        return None
    new = rng.choice(choices)
    return sentence[: spot.start()] + new + sentence[spot.end() :]


def _pools(article: Article) -> dict[str, list[str]]:
    text = " ".join(s for p in article.passages for s in p)
    return {
        "year": sorted(set(_YEAR.findall(text))),
        "month": sorted(set(_MONTH.findall(text))),
        "number": sorted({m.group(0) for m in _NUMBER.finditer(text) if m.group(0)[:1].isdigit()}),
        "name": sorted({m.group(0) for m in _NAME_SPAN.finditer(text)}),
    }


def generate(
    article: Article, others: Sequence[Article], limit: int = PASSAGES_PER_ARTICLE, seed: int = SEED
) -> list[Example]:
    """Supported and fabricated examples for up to ``limit`` passages of ``article`` (seeded by its name)."""
    rng = random.Random(seed * 1_000_003 + zlib.crc32(article.name.encode()))
    pools = _pools(article)
    foreign = [s for a in others if a.name != article.name for p in a.passages for s in p]
    questions: dict[int, list[tuple[str, str]]] = {}
    for q, a, evidence in article.questions:
        for i in range(len(article.passages)):  # the passage holding the evidence, not any with the answer
            text = article.text(i).lower()
            if evidence.lower()[:80] in text and a.lower() in text:
                questions.setdefault(i, []).append((q, a))
                break
    chosen = list(range(len(article.passages)))
    rng.shuffle(chosen)
    out: list[Example] = []
    n = len(article.passages)
    for i in sorted(chosen[:limit]):
        sentences = [s for s in article.passages[i] if 6 <= len(s.split()) <= 70]
        if not sentences:
            continue
        target = rng.choice(sentences)
        passage_words = {w.lower() for w in re.findall(r"[\w'’-]+", article.text(i))}
        passage_numbers = numbers(article.text(i), months=True)

        def add(
            kind: str, supported: bool, text: str | None, cited: tuple[int, ...] = (i,), origin: int = i
        ) -> None:
            if text and text.strip() and len(text.split()) >= 4:
                out.append(Example(article.name, kind, supported, text.strip(), cited, origin))

        add("verbatim", True, target)
        add("compressed", True, compressed(rng.choice(sentences), rng))
        add("reordered", True, reordered(target) or reordered(rng.choice(sentences)))
        if i in questions:
            add("answer", True, answer_style(*rng.choice(questions[i])))
        other = rng.choice([j for j in range(n) if j != i]) if n > 1 else None
        if other is not None:
            add("two_citations", True, target, tuple(sorted((i, other))))
        # Fabrications: each must differ from the passage in a way the passage itself shows.
        swapped = _swap(target, _NUMBER, pools["number"], {x.lower() for x in passage_numbers}, rng)
        if swapped and not (numbers(swapped) <= passage_numbers):
            add("number_swap", False, swapped)
        date = _swap(target, _YEAR, pools["year"], passage_numbers, rng) or _swap(
            target, _MONTH, pools["month"], passage_words, rng
        )
        add("date_swap", False, date)
        name = _swap(target, _NAME_SPAN, pools["name"], passage_words, rng)
        vocabulary = _Passage.of(i + 1, article.text(i)).vocabulary
        if name and any(not vocabulary.has(w) for w in names(name)):  # a name the passage lacks
            add("name_swap", False, name)
        add("negation", False, negated(target))
        if foreign:
            add("invented", False, invented(target, rng.choice(foreign)))
        far = [j for j in range(n) if abs(j - i) > 2]
        if far:
            j = rng.choice(far)
            add("wrong_passage", False, rng.choice(article.passages[j]), (i,), j)
        near = [j for j in (i + 1, i - 1) if 0 <= j < n]
        if near:
            j = near[0]
            add("wrong_near", False, rng.choice(article.passages[j]), (i,), j)
    return out


# ------------------------------------------------------------------------------------ Korean, Russian

FOREIGN_SET = ROOT / "eval" / "grounding-foreign.jsonl"


def foreign_examples(report: Article, path: Path = FOREIGN_SET) -> list[tuple[str, str, str, int, bool]]:
    """Korean and Russian sentences about the report, written by hand from its facts (the author reads
    both languages), each with the report passage it cites: (language, kind, sentence, passage, supported).
    A "wrong_passage" sentence is true of the report but cites a passage about something else.
    """
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        raw = json.loads(line)
        phrase = raw["cites"]
        hits = [i for i in range(len(report.passages)) if phrase.lower() in report.text(i).lower()]
        if not hits:
            raise ValueError(f"no report passage holds {phrase!r}")
        out.append((raw["lang"], raw["kind"], raw["sentence"], hits[0], bool(raw["supported"])))
    return out


def choose_foreign_threshold(cosines: np.ndarray, ruled_out: np.ndarray, supported: np.ndarray) -> float:
    """The cosine threshold with the best balanced accuracy (kept + caught) / 2; the lowest such one."""
    candidates = sorted({round(float(c), 4) for c in cosines} | {0.0})
    best, best_t = -1.0, 0.0
    for t in candidates:
        keep = (cosines >= t) & ~ruled_out
        score = keep[supported].mean() + (~keep[~supported]).mean()
        if score > best + 1e-9:
            best, best_t = score, t
    return best_t


# ------------------------------------------------------------------------------------ features and fit


def features(examples: Sequence[Example], articles: dict[str, Article], scorer: Scorer) -> list[Support]:
    parsed: dict[tuple[str, int], _Passage] = {}

    def passage(a: str, i: int) -> _Passage:
        if (a, i) not in parsed:
            parsed[(a, i)] = _Passage.of(i + 1, articles[a].text(i))
        return parsed[(a, i)]

    sets = [[passage(e.article, j) for j in e.cited] for e in examples]
    # One call: every sentence and passage text is encoded once (passage sentences recur as examples).
    return scorer.supports([e.sentence for e in examples], sets)


def matrix(supports: Sequence[Support]) -> np.ndarray:
    return feature_matrix([s.features for s in supports], FEATURES)


def caught_by_kind(examples: Sequence[Example], keep: np.ndarray) -> dict[str, float]:
    out = {}
    for kind in FABRICATED_KINDS + SUPPORTED_KINDS:
        mask = np.array([e.kind == kind for e in examples])
        if mask.any():
            rate = keep[mask].mean()
            out[kind] = float(rate if kind in SUPPORTED_KINDS else 1 - rate)
    return out


def choose_threshold(examples: Sequence[Example], probs: np.ndarray, target: float = TARGET_CAUGHT) -> float:
    """The lowest threshold whose mean share of fabrications caught over the kinds reaches ``target``."""
    for t in np.round(np.arange(0.01, 1.0, 0.01), 2):
        rates = caught_by_kind(examples, probs >= t)
        if statistics.mean(rates[k] for k in FABRICATED_KINDS if k in rates) >= target:
            return float(t)
    return 0.99


def train(
    train_examples: Sequence[Example],
    train_supports: Sequence[Support],
    unmarked_supports: Sequence[Support],
    foreign_threshold: float,
    articles: Sequence[str],
) -> GroundingModel:
    """Fit the logistic model and set its thresholds on these examples: checked against their own
    passage (``train_supports``) and against four passages (``unmarked_supports``, see :func:`widened`)."""
    x = matrix(train_supports)
    y = np.array([e.supported for e in train_examples])
    linear = fit_logistic(x, y, FEATURES, L2)
    model = GroundingModel(linear, 0.5, foreign_threshold, 0.5)
    threshold = choose_threshold(
        train_examples, np.array([model.probability(s.features) for s in train_supports])
    )
    unmarked = choose_threshold(
        train_examples,
        np.array([model.probability(s.features) for s in unmarked_supports]),
        UNMARKED_TARGET_CAUGHT,
    )
    metadata = {
        "trained_on": sorted(articles),
        "examples": len(train_examples),
        "supported": int(y.sum()),
        "target_caught": TARGET_CAUGHT,
        "unmarked_target_caught": UNMARKED_TARGET_CAUGHT,
        "l2": L2,
        "seed": SEED,
        "passages_per_article": PASSAGES_PER_ARTICLE,
        "foreign_set": FOREIGN_SET.name,
        "command": "python -m rag.train.grounding",
    }
    return GroundingModel(linear, threshold, foreign_threshold, unmarked, metadata)


def widened(examples: Sequence[Example], seed: int = SEED) -> list[Example]:
    """Each example checked against four passages, as a sentence without a marker is: the one it cites
    (its origin when it is supported) and three others that the examples use, never its origin."""
    rng = random.Random(seed)
    used: dict[str, list[int]] = {}
    for e in examples:
        used.setdefault(e.article, [])
        for j in (*e.cited, e.origin):
            if j not in used[e.article]:
                used[e.article].append(j)
    out = []
    for e in examples:
        own = e.origin if e.supported else e.cited[0]
        others = sorted(j for j in used[e.article] if j != own and j != e.origin)
        extra = rng.sample(others, min(3, len(others)))
        out.append(
            Example(e.article, e.kind, e.supported, e.sentence, tuple(sorted([own, *extra])), e.origin)
        )
    return out


# ------------------------------------------------------------------------------------ report


def table(title: str, examples: Sequence[Example], keep: np.ndarray) -> str:
    rates = caught_by_kind(examples, keep)
    counts = {k: sum(e.kind == k for e in examples) for k in rates}
    lines = [f"### {title}", "", "| kind | n | rate |", "| --- | ---: | ---: |"]
    for k in FABRICATED_KINDS:
        if k in rates:
            lines.append(f"| fabricated: {k} (caught) | {counts[k]} | {rates[k]:.1%} |")
    fab = np.array([not e.supported for e in examples])
    lines.append(f"| **fabricated, all (caught)** | {int(fab.sum())} | {(~keep[fab]).mean():.1%} |")
    for k in SUPPORTED_KINDS:
        if k in rates:
            lines.append(f"| supported: {k} (kept) | {counts[k]} | {rates[k]:.1%} |")
    lines.append(f"| **supported, all (kept)** | {int((~fab).sum())} | {keep[~fab].mean():.1%} |")
    return "\n".join(lines)


def unmarked_policy(
    examples: Sequence[Example], articles: dict[str, Article], scorer: Scorer, model: GroundingModel
) -> str:
    """Policy "all": held-out sentences checked against four passages, at the ordinary threshold and at
    the unmarked one (set on the training articles, checked the same way)."""
    supports = features(widened(examples), articles, scorer)
    scores = np.array([model.score(s) for s in supports])
    parts = []
    for name, t in (("the ordinary", model.threshold), ("the unmarked", model.unmarked_threshold)):
        title = f"policy 'all': unmarked sentences checked against 4 passages, {name} threshold {t}"
        parts.append(table(title, examples, scores >= t))
    return "\n\n".join(parts)


def timing(model: GroundingModel, article: Article, runs: int = 20) -> dict[str, tuple[float, float]]:
    """Median and 90th percentile ms of ``check`` on a 3-sentence answer over 4 passages of ``article``:
    "cold", every text encoded (no cache), and "warm", the passages seen before (as the service retrieves
    the same passages for many questions) and only the answer's sentences new."""
    passages = [article.text(i) for i in range(4)]

    def answer(k: int) -> str:
        # Three sentences of passages 1, 2 and 4, made new on every run so the answer is never cached.
        picked = (article.passages[0][0], article.passages[1][-1], article.passages[3][0])
        return " ".join(f"{s.rstrip('.')} (run {k}) [{n}]." for s, n in zip(picked, (1, 2, 4), strict=True))

    out = {}
    for name, scorer in (("cold", Scorer(get_embedder, cache=0)), ("warm", Scorer(get_embedder))):
        check(answer(-1), passages, scorer, model)  # loads the model, fills the warm cache
        times = []
        for k in range(runs):
            t = time.perf_counter()
            check(answer(k), passages, scorer, model)
            times.append((time.perf_counter() - t) * 1000)
        times.sort()
        out[name] = (statistics.median(times), times[int(0.9 * (len(times) - 1))])
    return out


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--squad", type=Path, default=SQUAD, help="shared/eval/squad (with prepare.py)")
    parser.add_argument("--out", type=Path, default=MODEL_OUT, help="where to write the model JSON")
    parser.add_argument("--report", type=Path, default=None, help="also write the results tables here")
    parser.add_argument("--dump", type=Path, default=None, help="write examples, features, scores (JSONL)")
    parser.add_argument("--timing", action="store_true", help="only time check() with the shipped model")
    args = parser.parse_args(argv)
    if args.timing:
        for name, (median, p90) in timing(load_model(), report_article()).items():
            print(f"check(), 3-sentence answer, 4 passages, {name}: median {median:.1f} ms, p90 {p90:.1f} ms")
        return 0

    articles = squad_articles(args.squad)
    report = report_article()
    articles["report"] = report
    everything = list(articles.values())
    examples = {name: generate(a, everything) for name, a in articles.items()}
    scorer = Scorer(get_embedder, cache=None)
    supports = {name: features(ex, articles, scorer) for name, ex in examples.items()}

    fx = foreign_examples(report)
    f_passages = [[_Passage.of(i + 1, report.text(i))] for _, _, _, i, _ in fx]
    f_supports = scorer.supports([s for _, _, s, _, _ in fx], f_passages)
    cos = np.array([s.features["dense_best"] for s in f_supports])
    ruled = np.array([bool(s.missing_numbers) or bool(s.features["negation_flip"]) for s in f_supports])
    ok = np.array([sup for *_, sup in fx])
    langs = np.array([lang for lang, *_ in fx])
    foreign_threshold = choose_foreign_threshold(cos, ruled, ok)

    train_ex = [e for a in TRAIN_ARTICLES for e in examples[a]]
    train_sup = [s for a in TRAIN_ARTICLES for s in supports[a]]
    train_wide = features(widened(train_ex), articles, scorer)
    model = train(train_ex, train_sup, train_wide, foreign_threshold, TRAIN_ARTICLES)
    args.out.write_text(model.to_json(), encoding="utf-8")
    model = load_model(args.out, expected_sha256=None)

    def keep_of(names_: Sequence[str]) -> tuple[list[Example], np.ndarray]:
        ex = [e for a in names_ for e in examples[a]]
        sup = [s for a in names_ for s in supports[a]]
        return ex, np.array([model.score(s) >= model.threshold for s in sup])

    if args.dump:
        with args.dump.open("w", encoding="utf-8") as out:
            for name in examples:
                for e, s in zip(examples[name], supports[name], strict=True):
                    row = {"article": name, "kind": e.kind, "supported": e.supported, "sentence": e.sentence}
                    row |= {"score": round(model.score(s), 4), "best": s.best_sentence, **s.features}
                    out.write(json.dumps(row, ensure_ascii=False) + "\n")

    parts = [
        f"threshold {model.threshold} (support probability); "
        f"other scripts: USE cosine threshold {model.foreign_threshold}"
    ]
    for title, names_ in (
        ("training articles (fitted here)", TRAIN_ARTICLES),
        ("held-out SQuAD articles", HELD_OUT_ARTICLES),
        ("the report (held out)", ("report",)),
    ):
        ex, keep = keep_of(names_)
        parts.append(table(title, ex, keep))
    held = [e for a in HELD_OUT_ARTICLES for e in examples[a]]
    parts.append(unmarked_policy(held, articles, scorer, model))

    lines = [
        "### Korean and Russian (hand-written; threshold chosen on one language, measured on the other)",
        "",
    ]
    lines += [
        "| language | threshold from the other | supported kept | fabricated caught |",
        "| --- | ---: | ---: | ---: |",
    ]
    for lang in ("ko", "ru"):
        mine = langs == lang
        t = choose_foreign_threshold(cos[~mine], ruled[~mine], ok[~mine])
        keep = (cos >= t) & ~ruled
        lines.append(
            f"| {lang} | {t:.3f} | {keep[mine & ok].mean():.0%} of {int((mine & ok).sum())} | "
            f"{(~keep[mine & ~ok]).mean():.0%} of {int((mine & ~ok).sum())} |"
        )
    keep_all = (cos >= model.foreign_threshold) & ~ruled
    lines.append(
        f"| both, shipped threshold | {model.foreign_threshold:.3f} | {keep_all[ok].mean():.0%} | "
        f"{(~keep_all[~ok]).mean():.0%} |"
    )
    missed = [fx[i][2] for i in range(len(fx)) if not ok[i] and keep_all[i]]
    lost = [fx[i][2] for i in range(len(fx)) if ok[i] and not keep_all[i]]
    lines += ["", f"missed fabrications: {missed}", f"lost faithful sentences: {lost}"]
    parts.append("\n".join(lines))

    for name, (median, p90) in timing(model, report).items():
        parts.append(
            f"check(), 3-sentence answer, 4 passages, {name}: median {median:.1f} ms, p90 {p90:.1f} ms"
        )
    parts.append(
        "coefficients: "
        + ", ".join(f"{f} {c:+.3f}" for f, c in zip(FEATURES, model.linear.coef, strict=True))
    )
    text = "\n\n".join(parts)
    print(text)
    if args.report:
        args.report.write_text(text + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
