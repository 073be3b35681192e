"""Ground: keep only the sentences of a generated answer that the passages they cite support.

An LLM's answer comes back as prose with ``[n]`` markers naming the passages it was given. Each sentence
is checked on its own:

- every ``[n]`` must name a passage that was given, or the sentence is dropped ("cites [7], which was
  not given");
- the sentence must be supported by the passage(s) it cites. The support score is a small logistic model
  (``rag/models/grounding.json``, fitted by ``python -m rag.train.grounding`` on supported and planted
  fabricated sentences of SQuAD articles; sha256 pinned here) over: the cosine of the sentence to the
  passage's best-matching sentence and to the whole passage (all-MiniLM-L6-v2), the share of the
  sentence's content words the passage holds, the numbers and the names the sentence states that the
  passage lacks (a swapped number, date or name is the commonest fabrication and similarity alone
  barely sees it), and a negation the passage's best sentence does not share;
- a sentence in another script than Latin (a Korean or Russian answer about English passages) is scored
  by the multilingual USE model's cosine to the passage's best sentence, with the same number and
  negation checks; its threshold is set on the report's sentences translated by hand (see
  ``eval/grounding-foreign.jsonl``), since no word of it can be matched to the English text;
- a sentence without a marker is checked against every passage, at a stricter threshold, and when one
  supports it, it is cited as that one (see ``UNMARKED`` for why, and for the other policies).

``check`` returns what was kept, what was dropped and why, and the answer rebuilt from the kept sentences
with valid markers only. This module only reads text; it never calls the LLM.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np

from rag.index.embedders import Embedder, load_pinned
from rag.ingest.chunking import split_sentences
from rag.linear import LinearModel, dump_model, read_model, rounded
from rag.text import NEGATION, fold_name, is_latin, names, numbers, terms

MODEL_PATH = Path(__file__).resolve().parent.parent / "models" / "grounding.json"
# The sha256 of the shipped model; `python -m rag.train.grounding` reproduces these bytes from the data.
MODEL_SHA256 = "60cfab0e9544b2c5e31a688d1e4c6fd41942e7cae7fe997b1f9d2e328670abb5"

FEATURES = (
    "dense_best",  # cosine to the cited passages' best-matching sentence
    "dense_passage",  # cosine to the best cited passage as a whole
    "overlap",  # share of the sentence's content terms (stemmed) that the cited passages hold
    "overlap_best",  # the same within the best-matching sentence alone
    "missing_numbers",  # numbers (digits, number words, years) the sentence states and the passages lack
    "missing_names",  # capitalised words (names, places, months) the sentence has and the passages lack
    "negation_flip",  # 1 when the sentence is negated and its best passage sentence is not, or vice versa
)

# How a sentence without any [n] is treated, decided on the held-out articles (rag.train.grounding's report):
# - "all": checked against every passage given, at the stricter ``unmarked_threshold``, and cited as the
#   passage that supports it best. Against four passages a fabrication finds a chance match more often
#   (93.1 % caught at the ordinary threshold, 97.6 % against its own passage); the unmarked threshold,
#   set on the training articles with four passages, restores 96.7 % caught and keeps 95.9 % of faithful
#   sentences, and it also keeps a faithful sentence whose passage no neighbour cites;
# - "neighbour": the next sentence's markers, else the previous one's ("X. Y [2]." cites [2] for both);
#   it drops a faithful sentence from another passage than its neighbour's, how often cannot be measured
#   without LLM answers;
# - "drop": every unmarked sentence is dropped ("no citation").
Unmarked = Literal["all", "neighbour", "drop"]
UNMARKED: Unmarked = "all"


class _Cited(Protocol):
    n: int
    text: str


# ------------------------------------------------------------------------------------ splitting

# [2], [1][3], [1, 3], [1-3]; two digits at most, so a year in brackets ("[2008]") stays text.
_MARKER = re.compile(r"\[\s*(\d{1,2}(?:\s*(?:[,;]|[-–])\s*\d{1,2})*)\s*\]")
_MARKERS_AFTER_END = re.compile(
    r"([.!?。！？][\"'”’)]*)((?:\s*\[\s*\d{1,2}(?:\s*(?:[,;]|[-–])\s*\d{1,2})*\s*\])+)"
)
_BULLET = re.compile(r"^\s*(?:[-*•·]|\d{1,2}[.)])\s+")
_END = re.compile(r"([.!?。！？][\"'”’)]*)?\s*$")


@dataclass(frozen=True, slots=True)
class AnswerSentence:
    """One sentence of a generated answer: its text without markers, and the passage numbers it cites."""

    text: str
    cited: tuple[int, ...]


def _marker_numbers(body: str) -> list[int]:
    out: list[int] = []
    for part in re.split(r"\s*[,;]\s*", body.strip()):
        bounds = re.split(r"\s*[-–]\s*", part)
        if len(bounds) == 2 and bounds[0].isdigit() and bounds[1].isdigit():
            lo, hi = int(bounds[0]), int(bounds[1])
            out.extend(range(lo, hi + 1) if 0 <= hi - lo <= 10 else (lo, hi))
        elif part.isdigit():
            out.append(int(part))
    return out


def split_answer(text: str) -> list[AnswerSentence]:
    """The sentences of ``text`` with the [n] markers each carries.

    A marker written after the full stop ("... delegation. [2]") belongs to the sentence before it;
    lines are sentences of their own (bullet lists), their bullets removed.
    """
    # Move markers that follow a sentence's end before it, so the sentence splitter keeps them inside.
    text = _MARKERS_AFTER_END.sub(lambda m: f"{m.group(2)}{m.group(1)}", text)
    out: list[AnswerSentence] = []
    for line in text.splitlines():
        line = _BULLET.sub("", line)
        for start, end in split_sentences(line):
            raw = line[start:end]
            cited: list[int] = []
            for m in _MARKER.finditer(raw):
                cited.extend(n for n in _marker_numbers(m.group(1)) if n not in cited)
            clean = re.sub(r"\s+", " ", _MARKER.sub(" ", raw)).strip()
            clean = re.sub(r"\s+([.,;:!?。！？])", r"\1", clean)
            if not any(ch.isalnum() for ch in clean):
                if cited and out:  # a stray marker alone: it belongs to the sentence before
                    prev = out[-1]
                    out[-1] = AnswerSentence(
                        prev.text, prev.cited + tuple(n for n in cited if n not in prev.cited)
                    )
                continue
            out.append(AnswerSentence(clean, tuple(cited)))
    return out


def with_markers(text: str, cited: Sequence[int]) -> str:
    """``text`` with its markers put back before the closing punctuation ("... delegation [2].")."""
    if not cited:
        return text
    marks = "".join(f"[{n}]" for n in cited)
    m = _END.search(text)
    end = m.group(1) if m and m.group(1) else ""
    body = text[: len(text) - len(end)].rstrip() if end else text.rstrip()
    return f"{body} {marks}{end}"


# ------------------------------------------------------------------------------------ features


_TOKEN = re.compile(r"[\w'’-]+")


def negation_scopes(text: str) -> list[set[str]]:
    """For each negation in ``text``, the content terms of the four words after it (what it negates)."""
    return [set(terms(" ".join(text[m.end() :].split()[:4]))) for m in NEGATION.finditer(text)]


def negation_flip(
    sentence: str,
    scopes: list[set[str]],
    passage_scopes: list[set[str]],
    passage_terms: set[str],
    latin: bool,
) -> bool:
    """Whether the sentence negates what its best passage sentence affirms, or the other way round.

    A negation counts where the other text speaks of what it negates (its scope shares a term), so a
    sentence that leaves out a negated clause of the passage ("..., and does not exhibit ...") is not
    flagged. Another script's words cannot be matched to English: there any difference counts.
    """
    if not latin:
        return bool(scopes) != bool(passage_scopes)
    sentence_terms = set(terms(sentence))
    for mine, other, other_terms in (
        (scopes, passage_scopes, passage_terms),
        (passage_scopes, scopes, sentence_terms),
    ):
        for scope in mine:
            if scope & other_terms and not any(scope & o for o in other):
                return True
    return False


class _Vocabulary:
    """The folded words of a passage and their five-letter prefixes ("Korean" meets "Korea")."""

    def __init__(self, text: str) -> None:
        self.words: set[str] = set()
        for w in _TOKEN.findall(text):  # not lexical.words, which splits "U2" and "MP3"
            w = fold_name(w).strip("'-")
            self.words.add(w)
            self.words.update(p for p in w.split("-") if p)
        self.prefixes = {w[:5] for w in self.words if len(w) >= 5}

    def has(self, word: str) -> bool:
        if word in self.words:
            return True
        parts = [p for p in word.split("-") if p]
        if len(parts) > 1 and all(p in self.words for p in parts):
            return True
        return len(word) >= 5 and word[:5] in self.prefixes


@dataclass(slots=True)
class _Passage:
    """A cited passage, split and tokenised once per check."""

    n: int
    text: str
    sentences: list[str]
    terms: set[str]
    sentence_terms: list[set[str]]
    numbers: set[str]
    vocabulary: _Vocabulary
    negated: list[list[set[str]]]  # each sentence's negation scopes

    @classmethod
    def of(cls, n: int, text: str) -> _Passage:
        sentences = [text[a:b] for a, b in split_sentences(text)] or [text]
        return cls(
            n,
            text,
            sentences,
            set(terms(text)),
            [set(terms(s)) for s in sentences],
            numbers(text, months=True),
            _Vocabulary(text),
            [negation_scopes(s) for s in sentences],
        )


@dataclass(frozen=True, slots=True)
class Support:
    """The evidence for one sentence against the passage(s) it is checked with."""

    features: dict[str, float]
    latin: bool
    best_passage: int  # the number of the cited passage holding the best-matching sentence
    best_sentence: str
    missing_numbers: tuple[str, ...]
    missing_names: tuple[str, ...]


def _features(
    sentence: str,
    vector: np.ndarray,
    passages: Sequence[_Passage],
    vectors: dict[str, np.ndarray],
    latin: bool,
) -> Support:
    best, best_p, best_i = -2.0, 0, 0
    whole = -2.0
    for p_i in range(len(passages)):
        sims = vectors["sentences"][p_i] @ vector
        i = int(np.argmax(sims))
        if float(sims[i]) > best:
            best, best_p, best_i = float(sims[i]), p_i, i
        whole = max(whole, float(vectors["passages"][p_i] @ vector))
    passage = passages[best_p]
    sentence_terms = set(terms(sentence))
    all_terms = set().union(*(p.terms for p in passages))
    overlap = len(sentence_terms & all_terms) / len(sentence_terms) if sentence_terms else 0.0
    overlap_best = (
        len(sentence_terms & passage.sentence_terms[best_i]) / len(sentence_terms) if sentence_terms else 0.0
    )
    passage_numbers = set().union(*(p.numbers for p in passages))
    missing_numbers = tuple(sorted(numbers(sentence) - passage_numbers))
    missing_names: tuple[str, ...] = ()
    if latin:
        missing_names = tuple(n for n in names(sentence) if not any(p.vocabulary.has(n) for p in passages))
    flip = negation_flip(
        sentence, negation_scopes(sentence), passage.negated[best_i], passage.sentence_terms[best_i], latin
    )
    features = {
        "dense_best": best,
        "dense_passage": whole,
        "overlap": overlap,
        "overlap_best": overlap_best,
        "missing_numbers": float(min(len(missing_numbers), 3)),
        "missing_names": float(min(len(missing_names), 3)),
        "negation_flip": float(flip),
    }
    return Support(features, latin, passage.n, passage.sentences[best_i], missing_numbers, missing_names)


# ------------------------------------------------------------------------------------ the model


@dataclass(frozen=True)
class GroundingModel:
    """The English logistic model and threshold, and the threshold for other scripts."""

    linear: LinearModel  # over FEATURES, by name
    threshold: float  # keep a Latin sentence when its support probability is at least this
    foreign_threshold: float  # keep another script's sentence when its USE cosine is at least this
    # A sentence without a marker is checked against every passage given: more chances of a chance match,
    # so a stricter threshold, set like ``threshold`` on the training articles with four passages each.
    unmarked_threshold: float
    metadata: dict[str, Any] = field(default_factory=dict)

    def probability(self, features: dict[str, float]) -> float:
        return self.linear.probability(features)

    def score(self, support: Support) -> float:
        """In [0, 1], kept at ``threshold`` and above, for either script."""
        if support.latin:
            return self.probability(support.features)
        if support.missing_numbers or support.features["negation_flip"]:
            return 0.0
        # A cosine mapped so that the foreign threshold lands on the English one.
        cos = support.features["dense_best"]
        scaled = self.threshold + (cos - self.foreign_threshold) * 2.0
        return max(0.0, min(1.0, scaled))

    def to_json(self) -> str:
        data = {
            **self.linear.to_dict(),
            "threshold": rounded([self.threshold], 4)[0],
            "foreign_threshold": rounded([self.foreign_threshold], 4)[0],
            "unmarked_threshold": rounded([self.unmarked_threshold], 4)[0],
            "metadata": self.metadata,
        }
        return dump_model(data)

    @classmethod
    def from_json(cls, text: str) -> GroundingModel:
        raw = read_model(text, "grounding model")
        return cls(
            LinearModel.from_dict(raw, FEATURES),
            float(raw["threshold"]),
            float(raw["foreign_threshold"]),
            float(raw["unmarked_threshold"]),
            dict(raw.get("metadata", {})),
        )


def load_model(path: Path | None = None, expected_sha256: str | None = MODEL_SHA256) -> GroundingModel:
    """The grounding model (the shipped one by default), its sha256 checked; a bad file raises
    :class:`ModelIntegrityError` naming it. ``expected_sha256=None`` skips the check (while training).
    """
    return load_pinned(
        path or MODEL_PATH,
        expected_sha256,
        "grounding model",
        "python -m rag.train.grounding",
        GroundingModel.from_json,
    )


@cache
def shipped_model() -> GroundingModel:
    """The shipped model, read and verified once per process."""
    return load_model()


# ------------------------------------------------------------------------------------ scoring


_BATCH = 16
CACHE_SIZE = 4096  # vectors kept (6 MB at 384 floats); a report's passages fit many times over


class Scorer:
    """Encodes sentences and passages with the English and the multilingual model, one batch each.

    ``embedders`` gives the embedder of a model name ("minilm", "use"): the service passes the one
    that already holds its models (:meth:`rag.qa.ForumQA`), so the check loads no model of its own;
    the multilingual one is asked for only when a sentence in another script is first checked.
    """

    def __init__(self, embedders: Callable[[str], Embedder], cache: int | None = CACHE_SIZE) -> None:
        self._embedders = embedders
        # Vectors by (script, text), least recently used dropped past ``cache`` entries (None: unbounded,
        # for training, where every text recurs; 0: none). The service retrieves the same passages for
        # many questions, so most passage sentences are encoded once and only the answer's are new.
        self._cache_size = cache
        self._cache: OrderedDict[tuple[bool, str], np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def embedder(self, latin: bool) -> Embedder:
        return self._embedders("minilm" if latin else "use")

    def encode(self, texts: list[str], latin: bool) -> np.ndarray:
        # encode_queries: MiniLM's int8 ONNX export, the same vector space as the full model without
        # importing torch; both sides go through it, so their cosines are comparable. Batches of texts
        # of similar length, since a batch is padded to its longest text.
        embedder = self.embedder(latin)
        out = np.zeros((len(texts), embedder.dim), dtype=np.float32)
        todo = []
        with self._lock:
            for i, text in enumerate(texts):
                hit = self._cache.get((latin, text))
                if hit is None:
                    todo.append(i)
                else:
                    out[i] = hit
                    self._cache.move_to_end((latin, text))
        todo.sort(key=lambda i: len(texts[i]))
        for start in range(0, len(todo), _BATCH):
            batch = todo[start : start + _BATCH]
            out[batch] = embedder.encode_queries([texts[i] for i in batch])
        if self._cache_size != 0:
            with self._lock:
                for i in todo:
                    self._cache[(latin, texts[i])] = out[i]
                while self._cache_size is not None and len(self._cache) > self._cache_size:
                    self._cache.popitem(last=False)
        return out

    def supports(self, sentences: Sequence[str], passage_sets: Sequence[Sequence[_Passage]]) -> list[Support]:
        """The support of each sentence against its own set of passages (one encode per script)."""
        latin = [is_latin(s) for s in sentences]
        out: list[Support | None] = [None] * len(sentences)
        for script in (True, False):
            idx = [i for i, flag in enumerate(latin) if flag is script]
            if not idx:
                continue
            passages = {id(p): p for i in idx for p in passage_sets[i]}
            texts: dict[str, int] = {}
            for s in (sentences[i] for i in idx):
                texts.setdefault(s, len(texts))
            for p in passages.values():
                texts.setdefault(p.text, len(texts))
                for s in p.sentences:
                    texts.setdefault(s, len(texts))
            vectors = self.encode(list(texts), script)
            for i in idx:
                ps = passage_sets[i]
                own = {
                    "sentences": [vectors[[texts[s] for s in p.sentences]] for p in ps],
                    "passages": [vectors[texts[p.text]] for p in ps],
                }
                out[i] = _features(sentences[i], vectors[texts[sentences[i]]], ps, own, script)  # type: ignore[arg-type]
        return [s for s in out if s is not None]


def support(
    sentence: str,
    passages: str | Sequence[str],
    scorer: Scorer,
    model: GroundingModel | None = None,
) -> float:
    """How well ``passages`` (one or several, taken together) support ``sentence``, in [0, 1]; the
    sentence is kept by :func:`check` at ``model.threshold`` and above.
    """
    texts = [passages] if isinstance(passages, str) else list(passages)
    parsed = [_Passage.of(i + 1, t) for i, t in enumerate(texts)]
    found = scorer.supports([sentence], [parsed])[0]
    return (model or shipped_model()).score(found)


# ------------------------------------------------------------------------------------ checking


@dataclass(frozen=True, slots=True)
class KeptSentence:
    text: str  # without markers
    cited: tuple[int, ...]  # valid passage numbers, as written (or added for an unmarked sentence)
    score: float


@dataclass(frozen=True, slots=True)
class DroppedSentence:
    text: str
    cited: tuple[int, ...]
    reason: str  # "cites [7], which was not given" | "not supported by [2]" | "no citation" | ...
    score: float | None  # None when no support was measured (an invalid marker)


@dataclass(frozen=True, slots=True)
class Grounding:
    """The result of checking a generated answer."""

    kept: tuple[KeptSentence, ...]
    dropped: tuple[DroppedSentence, ...]
    text: str  # the kept sentences with their valid markers; empty when nothing was kept

    @property
    def grounded(self) -> bool:
        """Something supported remains (else the caller falls back to the extractive answer)."""
        return bool(self.kept)

    @property
    def whole(self) -> bool:
        """Every sentence was kept."""
        return bool(self.kept) and not self.dropped

    def to_dict(self) -> dict[str, Any]:
        return {
            "grounded": self.grounded,
            "text": self.text,
            "kept": [{"text": k.text, "cited": list(k.cited), "score": round(k.score, 4)} for k in self.kept],
            "dropped": [
                {
                    "text": d.text,
                    "cited": list(d.cited),
                    "reason": d.reason,
                    "score": None if d.score is None else round(d.score, 4),
                }
                for d in self.dropped
            ],
        }


def _numbered(passages: Sequence[str | _Cited]) -> dict[int, str]:
    out: dict[int, str] = {}
    for i, p in enumerate(passages):
        if isinstance(p, str):
            out[i + 1] = p
        else:
            out[int(p.n)] = p.text
    return out


def _marks(numbers_: Sequence[int]) -> str:
    return "".join(f"[{n}]" for n in numbers_)


def check(
    answer_text: str,
    passages: Sequence[str | _Cited],
    scorer: Scorer,
    model: GroundingModel | None = None,
    unmarked: Unmarked = UNMARKED,
) -> Grounding:
    """Check every sentence of ``answer_text`` against the passages it cites.

    ``passages`` are the texts the LLM was given, numbered [1].. in order, or the answer's
    :class:`~rag.types.Citation` objects (numbered by their ``n``). Each sentence is routed by its own
    script (:func:`rag.text.is_latin`), since an answer in Korean may quote English names. ``scorer``
    encodes with the caller's embedders; ``model`` is the shipped one by default.
    """
    model = model or shipped_model()
    given = _numbered(passages)
    parsed = {n: _Passage.of(n, t) for n, t in given.items() if t.strip()}
    sentences = split_answer(answer_text)

    # Which passages each sentence is checked against, or why it is not checked at all.
    plans: list[tuple[AnswerSentence, tuple[int, ...], str | None]] = []
    for i, s in enumerate(sentences):
        invalid = [n for n in s.cited if n not in parsed]
        if invalid:
            plans.append((s, s.cited, f"cites {_marks(invalid)}, which was not given"))
        elif s.cited:
            plans.append((s, s.cited, None))
        elif not parsed or unmarked == "drop":
            plans.append((s, (), "no citation"))
        elif unmarked == "neighbour":
            after = [t.cited for t in sentences[i + 1 :] if t.cited]
            before = [t.cited for t in sentences[:i] if t.cited]
            inherited = after[0] if after else before[-1] if before else ()
            valid = tuple(n for n in inherited if n in parsed)
            plans.append((s, valid, None if valid else "no citation"))
        else:
            plans.append((s, tuple(parsed), None))

    to_score = [(s, cited) for s, cited, reason in plans if reason is None]
    supports = scorer.supports([s.text for s, _ in to_score], [[parsed[n] for n in c] for _, c in to_score])
    found = dict(zip((id(s) for s, _ in to_score), supports, strict=True))

    kept: list[KeptSentence] = []
    dropped: list[DroppedSentence] = []
    for s, cited, reason in plans:
        if reason is not None:
            dropped.append(DroppedSentence(s.text, s.cited, reason, None))
            continue
        evidence = found[id(s)]
        score = model.score(evidence)
        all_passages = not s.cited and unmarked == "all"
        if score >= (max(model.threshold, model.unmarked_threshold) if all_passages else model.threshold):
            # A sentence checked against every passage cites the one that supports it best.
            shown = s.cited if s.cited else (evidence.best_passage,)
            kept.append(KeptSentence(s.text, shown, score))
        else:
            dropped.append(DroppedSentence(s.text, s.cited, _why(s, cited, evidence, unmarked), score))
    text = " ".join(with_markers(k.text, k.cited) for k in kept)
    return Grounding(tuple(kept), tuple(dropped), text)


@dataclass(frozen=True)
class Checker:
    """The grounding check with its model and scorer bound: built once by ``ForumQA`` from the
    embedders it holds, and handed to generation."""

    model: GroundingModel
    scorer: Scorer

    def __call__(self, answer_text: str, passages: Sequence[str | _Cited]) -> Grounding:
        return check(answer_text, passages, self.scorer, self.model)


def _why(sentence: AnswerSentence, cited: tuple[int, ...], evidence: Support, unmarked: Unmarked) -> str:
    if sentence.cited:
        where = _marks(cited)
    elif unmarked == "all":
        where = "any passage"
    else:
        where = f"{_marks(cited)} (its neighbour's citation)"
    details = []
    if evidence.missing_numbers:
        details.append("states " + ", ".join(evidence.missing_numbers))
    if evidence.missing_names:
        details.append("names " + ", ".join(evidence.missing_names))
    if evidence.features["negation_flip"]:
        details.append("negation differs")
    suffix = f" ({'; '.join(details)}, which the passage does not)" if details else ""
    return f"not supported by {where}{suffix}"
