"""Train the reader (``forumqa train-reader``): fit the sentence ranker and the gate on SQuAD 2.0 articles.

Reproducible by construction: the articles and questions are read in a fixed order, the indexes are
built by the product's own code, both models are convex fits (L-BFGS from zero, no sampling), and the
written numbers are rounded, so a rerun on the same data writes the same bytes.

Data: ``prepare.py`` of ``../shared/eval/squad`` turns the SQuAD articles into a corpus folder and
questions with short ``answers``. Each training article gets an index of its own (SQuAD's setting);
each question is retrieved as the service retrieves it, and every sentence of the retrieved chunks
becomes a candidate, labelled right when it holds one of the crowd's short answers. The gate learns
from all questions, answerable or not; its inputs come from a ranker fitted without the question's
own article (cross-fitting), so the gate sees the ranker as it behaves on unseen text.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.optimize import minimize
from tqdm import tqdm

from rag.answer.compose import lead
from rag.answer.question import Kind, QuestionForm, kind_of, question_form
from rag.answer.reader import (
    GATE_FEATURES,
    SENTENCE_FEATURES,
    Candidates,
    ReaderModel,
    ReaderState,
    candidates,
    gate_features,
    runs_on_to,
)
from rag.answer.retrieval import Retriever
from rag.answer.short_answer import ShortAnswerFinder, shipped_model
from rag.config import Settings
from rag.evaluation import EvalItem, article_settings, contains_evidence, load_questions
from rag.index.build import ensure_index
from rag.index.embedders import Embedder, embedder_fingerprint, get_embedder
from rag.index.vector_cache import VectorCache
from rag.linear import LinearModel, expit

log = logging.getLogger(__name__)

# Fitted on these; the other five SQuAD articles of shared/eval/squad are held out for evaluation.
TRAIN_ARTICLES = (
    "2008-sichuan-earthquake",
    "beyonce",
    "frederic-chopin",
    "new-york-city",
    "spectre-2015-film",
)
HELD_OUT_ARTICLES = (
    "ipod",
    "sino-tibetan-relations-during-the-ming-dynasty",
    "solar-energy",
    "the-legend-of-zelda-twilight-princess",
    "to-kill-a-mockingbird",
)
FOREIGN_PER_ARTICLE = 100  # questions of another article asked of each training article
POOL = 10  # chunks whose sentences the reader considers: top_k (5) plus 5, as the service does
RANKER_L2 = 1.0
GATE_L2 = 1.0
SECOND_RATIOS = (1.01, 0.8, 0.6, 0.5, 0.4, 0.3, 0.2)  # 1.01: never add a runner-up
# Plain questions (eval/plain, ids "p-..."), written the way a first-time reader asks, about the same
# training articles: few beside SQuAD's crowd questions, so each counts this much in the gates' fits.
PLAIN_QUESTIONS = Path("eval/plain/questions.jsonl")
PLAIN_PREFIX = "p-"
PLAIN_WEIGHT = 3.0
# Report-like documents and plain questions about them (eval/reports): only the documents of the "fit"
# split are read; the others are held out. They count as much as plain questions in the gates' fits.
REPORTS = Path("eval/reports")
REPORT_PREFIX = "r-"
FIT_SPLIT = "fit"
COVER_MISSED = 0.01  # the share of answerable training questions the cover threshold may call not covered
TRAIN_EMBEDDERS = ("minilm", "e5")


class CachedQueries:
    """An embedder whose question vectors are kept on disk by the sha256 of the question: training asks
    the same few thousand questions on every run, and the query encoders (e5 above all) are most of a
    rerun's time. Passages go through the index's own cache; only ``encode_queries`` is wrapped."""

    def __init__(self, embedder: Embedder, root: Path, query_encoder: str) -> None:
        self._embedder = embedder
        fingerprint = {**embedder_fingerprint(embedder), "queries": query_encoder}
        self._cache = VectorCache(root, embedder.name, fingerprint, embedder.dim).load()
        self.name, self.dim = embedder.name, embedder.dim

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        keys = [hashlib.sha256(t.encode("utf-8")).hexdigest() for t in texts]
        missing = [i for i, k in enumerate(keys) if k not in self._cache]
        if missing:
            made = self._embedder.encode_queries([texts[i] for i in missing])
            for i, vector in zip(missing, made, strict=True):
                self._cache.put(keys[i], vector)
            self._cache.maybe_flush()
        return np.stack([self._cache.get(k) for k in keys]) if keys else np.zeros((0, self.dim), np.float32)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._embedder.encode_passages(texts)

    def flush(self) -> None:
        self._cache.flush()


@dataclass
class QuestionData:
    """One question's candidates, their labels, and what the gate needs."""

    item: EvalItem
    features: np.ndarray  # candidate sentence features
    labels: np.ndarray  # 1 where the sentence holds a short answer
    gate_state: tuple[ReaderState, str, Candidates]  # to recompute gate features for any ranker
    # For an overview question (answered with the document's lead, not by the ranker): whether the
    # lead holds its answer. None for every other question.
    overview: bool | None = None
    weight: float = 1.0  # how much the question counts in the gates' fits


def prepare_squad(squad_dir: Path, out_dir: Path) -> Path:
    """Run SQuAD's own ``prepare.py`` into ``out_dir``; the questions file it wrote."""
    script = squad_dir / "prepare.py"
    if not script.is_file():
        raise FileNotFoundError(f"{script} not found: point --squad at shared/eval/squad")
    subprocess.run([sys.executable, str(script), str(out_dir)], check=True, capture_output=True)
    return out_dir / "questions.jsonl"


def foreign_questions(items: Sequence[EvalItem], per_article: int) -> dict[str, list[EvalItem]]:
    """For each article, answerable questions written for the next article (in name order), relabelled
    unanswerable: the questions a user asks that a document does not cover at all, which SQuAD's own
    unanswerable questions (written to look answerable by the same text) do not teach.
    """
    by_article: dict[str, list[EvalItem]] = {}
    for item in items:
        if item.answerable:
            by_article.setdefault(item.article, []).append(item)
    names = sorted(by_article)
    out: dict[str, list[EvalItem]] = {}
    for i, article in enumerate(names):
        source = by_article[names[(i + 1) % len(names)]] if len(names) > 1 else []
        step = max(1, len(source) // per_article) if per_article else 0
        picked = source[::step][:per_article] if step else []
        out[article] = [
            EvalItem(f"{q.id}@{article}", q.question, [], False, q.lang, [], [], article) for q in picked
        ]
    return out


def collect(
    settings: Settings,
    items: Sequence[EvalItem],
    corpus_dir: Path,
    progress: bool = True,
    foreign: int = 0,
) -> list[QuestionData]:
    """Candidates and labels for every question, each article retrieved from an index of its own.

    With ``foreign``, each article is also asked that many questions of another article (unanswerable).
    """
    by_article: dict[str, list[EvalItem]] = {}
    for item in items:
        by_article.setdefault(item.article, []).append(item)
    for article, extra in foreign_questions(items, foreign).items():
        by_article[article].extend(extra)
    out: list[QuestionData] = []
    total = sum(len(g) for g in by_article.values())
    root = settings.index_dir.parent / "query-vectors"
    finder = ShortAnswerFinder(shipped_model())
    encoder = settings.query_encoder
    queries = {
        name: CachedQueries(get_embedder(name, settings.threads, encoder), root, encoder)
        for name in settings.embedders
    }
    bar = tqdm(total=total, desc="reading questions", unit="q", disable=not progress)
    for article, group in sorted(by_article.items()):
        own = article_settings(settings, corpus_dir, article)
        index = ensure_index(own, progress=progress)
        embedders = {n: queries[n] for n in index.embedder_names}
        # The retriever only asks its embedders for query vectors, which CachedQueries gives.
        retriever = Retriever(index, embedders, settings.rrf_k)  # type: ignore[arg-type]
        state = ReaderState.of(index, finder)
        titles = [doc.title for doc in index.documents.values()]
        for item in group:
            vectors = retriever.query_vectors(item.question)
            hits = retriever.retrieve(item.question, max(POOL, settings.candidates), vectors)[:POOL]
            cands = candidates(state, item.question, vectors, hits)
            bar.update(1)
            if cands is None:
                continue
            form = question_form(item.question)
            labels = np.array(
                [float(item.answerable and _holds(state, form, int(s), item)) for s in cands.ids]
            )
            overview = None
            if item.answerable and kind_of(item.question, titles) is Kind.OVERVIEW:
                doc_id = next(iter(index.documents))  # one article an index
                lead_text = " ".join(index.sentences[s].text for s in lead(index, doc_id))
                overview = contains_evidence(lead_text, item.expected)
            weight = PLAIN_WEIGHT if item.id.startswith((PLAIN_PREFIX, REPORT_PREFIX)) else 1.0
            out.append(
                QuestionData(item, cands.features, labels, (state, item.question, cands), overview, weight)
            )
    bar.close()
    for cached in queries.values():
        cached.flush()
    return out


def _holds(state: ReaderState, form: QuestionForm, sid: int, item: EvalItem) -> bool:
    """Whether what the answer quotes for sentence ``sid`` (it, and the sentences it runs on to:
    :func:`rag.answer.reader.runs_on_to`) holds the question's evidence: a topic named in one sentence
    and completed in the next is right."""
    index = state.index
    last = runs_on_to(state, form, sid) or sid
    return any(contains_evidence(index.sentences[s].text, item.expected) for s in range(sid, last + 1))


# ------------------------------------------------------------------------------------ fitting


def _standardiser(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-9] = 1.0
    return mean, scale


def conditional_logit(x: np.ndarray, y: np.ndarray, sizes: np.ndarray, l2: float, maxiter: int) -> np.ndarray:
    """Weights of a conditional logit over groups of rows (``sizes`` consecutive rows each, one group per
    question): maximise each group's softmax probability mass on its right rows (``y``), L2-penalised,
    from zero, no intercept (it cancels within a group). The ranker's and the short-answer finder's fit."""
    starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    group = np.repeat(np.arange(len(sizes)), sizes)

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        s = x @ w
        s = s - np.maximum.reduceat(s, starts)[group]
        e = np.exp(s)
        p = e / np.add.reduceat(e, starts)[group]
        pos = np.add.reduceat(p * y, starts)
        # -log of the probability mass on the right rows; its gradient is E_p[x] - E_{p|right}[x].
        nll = -float(np.log(pos).sum())
        grad = x.T @ (p - y * p / pos[group])
        return nll + 0.5 * l2 * float(w @ w), grad + l2 * w

    result = minimize(loss, np.zeros(x.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": maxiter})
    return np.asarray(result.x)


def fit_ranker(data: Sequence[QuestionData], l2: float = RANKER_L2) -> LinearModel:
    """Conditional logit: maximise the softmax probability of the right sentences among each question's."""
    groups = [d for d in data if d.labels.any() and not d.labels.all()]
    if not groups:
        raise ValueError("no question has both a right and a wrong candidate sentence to learn from")
    x_all = np.concatenate([d.features for d in groups])
    mean, scale = _standardiser(x_all)
    x = (x_all - mean) / scale
    y = np.concatenate([d.labels for d in groups])
    sizes = np.array([len(d.labels) for d in groups])
    weights = conditional_logit(x, y, sizes, l2, maxiter=500)
    return LinearModel(SENTENCE_FEATURES, mean, scale, weights)


def fit_logistic(
    x: np.ndarray,
    y: np.ndarray,
    features: tuple[str, ...],
    l2: float = GATE_L2,
    standardise: bool = True,
    weights: np.ndarray | None = None,
) -> LinearModel:
    """L2-regularised logistic regression (intercept not penalised), on standardised features, or on
    the raw ones (``standardise=False``: the penalty then weighs each feature in its own units); each
    example counts ``weights`` (default 1)."""
    mean, scale = _standardiser(x) if standardise else (np.zeros(x.shape[1]), np.ones(x.shape[1]))
    z = (x - mean) / scale
    t = y.astype(np.float64)
    s = np.ones(len(t)) if weights is None else np.asarray(weights, dtype=np.float64)

    def loss(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        logits = z @ w + b
        p = expit(logits)
        nll = float(np.sum(s * (np.logaddexp(0.0, logits) - t * logits)))
        diff = s * (p - t)
        grad = np.concatenate([z.T @ diff + l2 * w, [diff.sum()]])
        return nll + 0.5 * l2 * float(w @ w), grad

    result = minimize(loss, np.zeros(z.shape[1] + 1), jac=True, method="L-BFGS-B", options={"maxiter": 1000})
    return LinearModel(features, mean, scale, np.asarray(result.x[:-1]), float(result.x[-1]))


def gate_matrix(data: Sequence[QuestionData], rankers: dict[str, LinearModel]) -> np.ndarray:
    """Gate features of each question, from the ranker fitted without its article."""
    rows = []
    for d in data:
        state, query, cands = d.gate_state
        scores = rankers[d.item.id](d.features)
        rows.append(gate_features(state, query, cands, scores))
    return np.array(rows)


def _fold_of(d: QuestionData, articles: list[str], position: int) -> str:
    # By article when there are several, else by alternate question, so no question is scored by a
    # ranker fitted on it.
    return d.item.article if len(articles) > 1 else str(position % 2)


def cross_fitted_rankers(data: Sequence[QuestionData], l2: float = RANKER_L2) -> dict[str, LinearModel]:
    """For each question id, a ranker fitted without its fold (its article, or half the questions)."""
    articles = sorted({d.item.article for d in data})
    folds = [_fold_of(d, articles, i) for i, d in enumerate(data)]
    models = {
        f: fit_ranker([d for d, g in zip(data, folds, strict=True) if g != f], l2) for f in sorted(set(folds))
    }
    return {d.item.id: models[f] for d, f in zip(data, folds, strict=True)}


def choose_second_ratio(data: Sequence[QuestionData], rankers: dict[str, LinearModel]) -> float:
    """The largest ratio (fewest added sentences) whose answer accuracy is within 0.01 of the best."""
    answerable = [d for d in data if d.item.answerable and d.labels.size]
    if not answerable:
        return SECOND_RATIOS[0]
    accuracy = {}
    for ratio in SECOND_RATIOS:
        right = 0
        for d in answerable:
            scores = rankers[d.item.id](d.features)
            order = np.argsort(-scores, kind="stable")
            probs = np.exp(scores - scores.max())
            chosen = [order[0]]
            if len(order) > 1 and probs[order[1]] >= ratio * probs[order[0]]:
                chosen.append(order[1])
            right += bool(d.labels[chosen].any())
        accuracy[ratio] = right / len(answerable)
    best = max(accuracy.values())
    return next(r for r in SECOND_RATIOS if accuracy[r] >= best - 0.01)


def top_right(data: Sequence[QuestionData], rankers: dict[str, LinearModel]) -> np.ndarray:
    """Per question: the best sentence of its (cross-fitted) ranker holds the answer."""
    out = []
    for d in data:
        scores = rankers[d.item.id](d.features)
        out.append(bool(d.item.answerable and d.labels.size and d.labels[int(np.argmax(scores))]))
    return np.array(out)


def choose_cover_threshold(coverage: np.ndarray, native_answerable: np.ndarray) -> float:
    """The cover probability under which a question is "not covered": at most COVER_MISSED of the
    answerable questions fall under it ("not covered" is a strong claim), and never above 0.5."""
    values = np.sort(coverage[native_answerable])
    if not len(values):
        return 0.5
    k = int(np.floor(COVER_MISSED * len(values)))
    return float(min(0.5, values[k]))


def train(data: Sequence[QuestionData], articles: Sequence[str], seed: int = 0) -> ReaderModel:
    """Fit the shipped reader: the ranker on every training question, the gates on cross-fitted inputs.

    The gate learns whether the best sentence is right (unanswerable questions: never); the cover model
    learns the questions written for the article from those written for another one (``@`` in the id,
    :func:`foreign_questions`). Overview questions, answered with the document's lead, only set the
    confidence that lead answers carry.
    """
    np.random.seed(seed)  # nothing is sampled today; fixed so that any later sampling stays reproducible
    overviews = [d.overview for d in data if d.overview is not None]
    data = [d for d in data if d.overview is None]
    rankers = cross_fitted_rankers(data)
    x_gate = gate_matrix(data, rankers)
    weights = np.array([d.weight for d in data])
    y_right = top_right(data, rankers)
    gate = fit_logistic(x_gate, y_right, GATE_FEATURES, weights=weights)
    native = np.array(["@" not in d.item.id for d in data])
    cover = fit_logistic(x_gate, native, GATE_FEATURES, weights=weights)
    answerable = np.array([d.item.answerable for d in data])
    coverage = expit(cover(x_gate))
    cover_threshold = choose_cover_threshold(coverage, native & answerable)
    ranker = fit_ranker(data)
    second_ratio = choose_second_ratio(data, rankers)
    # Laplace's rule, so a handful of overview questions cannot claim certainty.
    overview_confidence = (sum(overviews) + 1) / (len(overviews) + 2)
    metadata = {
        "trained_on": sorted(articles),
        "questions": len(data),
        "overview_questions": len(overviews),
        "plain_questions": sum(1 for d in data if d.item.id.startswith(PLAIN_PREFIX)),
        "report_questions": sum(1 for d in data if d.item.id.startswith(REPORT_PREFIX)),
        "unanswerable": int((~answerable).sum()),
        "candidates": int(sum(len(d.labels) for d in data)),
        "ranker_l2": RANKER_L2,
        "gate_l2": GATE_L2,
        "plain_weight": PLAIN_WEIGHT,
        "cover_missed": COVER_MISSED,
        "foreign_unanswerable": int((~native).sum()),
        "seed": seed,
        "command": "forumqa train-reader",
    }
    return ReaderModel(
        ranker, gate, cover, cover_threshold, second_ratio, round(overview_confidence, 6), metadata
    )


def training_data(
    squad_dir: Path,
    work_dir: Path,
    articles: Sequence[str] | None = None,
    max_questions: int | None = None,
    progress: bool = True,
    foreign: int = FOREIGN_PER_ARTICLE,
    plain: Path | None = PLAIN_QUESTIONS,
    reports: Path | None = REPORTS,
) -> tuple[list[QuestionData], tuple[str, ...]]:
    """Every training question with its candidates: SQuAD's about each training article (each indexed
    with MiniLM and e5: what English questions use), the plain questions (``eval/plain``) about the same
    articles, and the report-like documents of ``reports``' fit split with their questions. Also the
    articles and documents they are about. What the reader and the cross-encoder are both fitted on."""
    articles = tuple(articles or TRAIN_ARTICLES)
    work_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=work_dir) as tmp:
        questions = prepare_squad(squad_dir, Path(tmp))
        items = [i for i in load_questions(questions) if i.article in set(articles)]
        missing = set(articles) - {i.article for i in items}
        if missing:
            raise ValueError(f"no questions for article(s) {', '.join(sorted(missing))} in {squad_dir}")
        if max_questions is not None:
            items = _first_per_article(items, max_questions)
        if plain is not None:
            asked = [i for i in load_questions(plain) if i.article in set(articles)]
            if not all(i.id.startswith(PLAIN_PREFIX) for i in asked):
                raise ValueError(f"{plain}: plain question ids must start with {PLAIN_PREFIX!r}")
            items += asked
        documents = articles
        if reports is not None:
            fitted = fit_reports(reports, Path(tmp) / "corpus")
            items += fitted
            documents += tuple(sorted({i.article for i in fitted}))
        settings = Settings(
            index_dir=work_dir / "indexes", embedders=list(TRAIN_EMBEDDERS), corpus_dir=Path(tmp) / "corpus"
        )
        data = collect(settings, items, Path(tmp) / "corpus", progress=progress, foreign=foreign)
    return data, documents


def train_from_squad(
    squad_dir: Path,
    work_dir: Path,
    articles: Sequence[str] | None = None,
    max_questions: int | None = None,
    seed: int = 0,
    progress: bool = True,
    foreign: int = FOREIGN_PER_ARTICLE,
    plain: Path | None = PLAIN_QUESTIONS,
    reports: Path | None = REPORTS,
) -> ReaderModel:
    """:func:`training_data`, then fit the reader on it."""
    data, documents = training_data(
        squad_dir, work_dir, articles, max_questions, progress, foreign, plain, reports
    )
    log.info("fitting the reader on %d questions of %d documents", len(data), len(documents))
    return train(data, documents, seed)


def fit_reports(folder: Path, corpus_dir: Path) -> list[EvalItem]:
    """The questions of ``folder``'s fit split (``questions.jsonl``, field ``split``), their documents
    (``corpus/<article>.txt``) copied into ``corpus_dir``, in id order."""
    wanted = set()
    for n, line in enumerate((folder / "questions.jsonl").read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            record = json.loads(line)
            if record.get("split") == FIT_SPLIT:
                if not str(record["id"]).startswith(REPORT_PREFIX):
                    raise ValueError(f"{folder}/questions.jsonl:{n}: ids must start with {REPORT_PREFIX!r}")
                wanted.add(record["id"])
    items = [i for i in load_questions(folder / "questions.jsonl") if i.id in wanted]
    for article in sorted({i.article for i in items}):
        shutil.copyfile(folder / "corpus" / f"{article}.txt", corpus_dir / f"{article}.txt")
    return items


def _first_per_article(items: Sequence[EvalItem], n: int) -> list[EvalItem]:
    seen: dict[str, int] = {}
    out = []
    for item in items:
        if seen.get(item.article, 0) < n:
            out.append(item)
            seen[item.article] = seen.get(item.article, 0) + 1
    return out
