"""``python -m bench.rankers``: issue 24's ranker comparison, on held-out questions.

Which sentence does each ranker put first, and does what the answer quotes for it hold the evidence?
Compared on the questions the reader was not fitted on (eval/plain about the five held-out SQuAD
articles, eval/reports' held-out split, SQuAD's own questions about the held-out articles), each article
against an index of its own, with the candidates the service reads (its retrieval, its 10 chunks):

- **linear**: the shipped ranker's recipe (:func:`rag.train.reader.fit_ranker`) fitted on the training
  questions, with every feature;
- **linear without types**: the same without the answer-type agreement features;
- **cross-encoder**: MiniLM's first two layers fine-tuned here (:mod:`rag.train.ranker`, its
  deterministic fit), reranking the linear ranker's best 6 and the sentences after its best 2;
- **cross-encoder + linear**: the sum of the two scores over the same sentences.

Also the cross-encoder's cost per question (one thread). The fit takes tens of minutes on two cores;
``--groups N`` fits on N SQuAD questions (all the plain and report-like ones), as the README's figures do
(1,000). Needs ``../shared/eval/squad``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench.common import ROOT, format_table, log

HELD_OUT_SQUAD = (
    "ipod",
    "sino-tibetan-relations-during-the-ming-dynasty",
    "solar-energy",
    "the-legend-of-zelda-twilight-princess",
    "to-kill-a-mockingbird",
)
TYPED_FEATURES = ("typed_span", "next_typed_span", "prev_overlap", "typed_after_topic", "topic_before_answer")
RERANK = 6
RERANK_NEXT = 2


def _held_out(squad: Path, work: Path) -> dict[str, list]:  # type: ignore[type-arg]
    """The held-out sets' questions with their candidates (rag.train.reader.collect), by set."""
    import json

    from rag.config import Settings
    from rag.evaluation import load_questions
    from rag.train.reader import FIT_SPLIT, collect, prepare_squad

    questions = prepare_squad(squad, work / "squad")
    corpus = work / "squad" / "corpus"
    settings = Settings(index_dir=work / "indexes", embedders=["minilm", "e5"])
    plain_file = ROOT / "eval" / "plain" / "questions.jsonl"
    plain = [i for i in load_questions(plain_file) if i.article in HELD_OUT_SQUAD]
    crowd = [i for i in load_questions(questions) if i.article in HELD_OUT_SQUAD]
    reports = ROOT / "eval" / "reports"
    held = {
        json.loads(line)["id"]
        for line in (reports / "questions.jsonl").read_text(encoding="utf-8").splitlines()
        if line.strip() and json.loads(line).get("split") != FIT_SPLIT
    }
    report_items = [i for i in load_questions(reports / "questions.jsonl") if i.id in held]
    return {
        "plain (held-out articles)": collect(settings, plain, corpus, progress=True),
        "reports (held-out split)": collect(settings, report_items, reports / "corpus", progress=True),
        "SQuAD (held-out articles)": collect(settings, crowd, corpus, progress=True),
    }


def _answerable(data: Sequence) -> list:  # type: ignore[type-arg]
    return [d for d in data if d.item.answerable and d.overview is None]


def _pool(scores: np.ndarray, ids: Sequence[int]) -> list[int]:
    """The linear ranker's best RERANK candidates, and the sentences after its best RERANK_NEXT."""
    order = [int(i) for i in np.argsort(-scores, kind="stable")]
    pool = order[:RERANK]
    position = {sid: k for k, sid in enumerate(ids)}
    for k in order[:RERANK_NEXT]:
        after = position.get(ids[k] + 1)
        if after is not None and after not in pool:
            pool.append(after)
    return pool


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.rankers", description=__doc__.split("\n\n")[0])
    parser.add_argument("--squad", type=Path, default=ROOT.parent / "shared" / "eval" / "squad")
    parser.add_argument("--work-dir", type=Path, default=ROOT / "build" / "reader-train")
    parser.add_argument(
        "--groups", type=int, default=1000, help="SQuAD training questions the cross-encoder fits on"
    )
    parser.add_argument(
        "--fast",
        action="store_true",
        help="fit in this process with the machine's own kernels and threads: about three times faster, "
        "but not the same bytes on another machine (the README's figures were measured so)",
    )
    args = parser.parse_args(argv)

    from transformers import AutoTokenizer

    import rag.train.reader as reader_training
    from rag.answer.reader import SENTENCE_FEATURES, previous_in_section
    from rag.linear import LinearModel
    from rag.train import ranker
    from rag.train.reader import training_data

    log("collecting the training questions")
    data, documents = training_data(args.squad, args.work_dir, foreign=0)
    linear = reader_training.fit_ranker(data)
    kept = tuple(f for f in SENTENCE_FEATURES if f not in TYPED_FEATURES)
    columns = [SENTENCE_FEATURES.index(f) for f in kept]

    class Without:
        def __init__(self, d) -> None:  # type: ignore[no-untyped-def]
            self.features, self.labels = d.features[:, columns], d.labels

    saved = reader_training.SENTENCE_FEATURES
    reader_training.SENTENCE_FEATURES = kept
    try:
        untyped: LinearModel = reader_training.fit_ranker([Without(d) for d in data])
    finally:
        reader_training.SENTENCE_FEATURES = saved

    groups = ranker.groups_of(data)
    squad = [g for g in groups if not g.id.startswith(("p-", "r-"))]
    step = max(1, len(squad) // args.groups) if args.groups else 1
    chosen = sorted([g for g in groups if g.id.startswith(("p-", "r-"))] + squad[::step], key=lambda g: g.id)
    how = "in this process" if args.fast else "deterministic child process"
    log(f"fitting the cross-encoder on {len(chosen)} questions ({how})")
    if args.fast:
        model = ranker.fit(chosen, ranker.LAYERS, ranker.CONTEXT, ranker.EPOCHS, ranker.SEED, progress=True)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            weights, config = Path(tmp) / "ranker.safetensors", Path(tmp) / "ranker.json"
            ranker.fit_in_child(chosen, weights, config, metadata={"trained_on": list(documents)})
            model = ranker.load(weights, config)
    tokenizer = AutoTokenizer.from_pretrained(str(ranker.base_dir()))

    rows = []
    costs: list[float] = []
    for name, held in _held_out(args.squad, args.work_dir).items():
        questions = _answerable(held)
        right = {"linear": 0, "linear without types": 0, "cross-encoder": 0, "cross-encoder + linear": 0}
        for d in questions:
            state, _, cands = d.gate_state
            ids = [int(s) for s in cands.ids]
            scores = linear(d.features)
            right["linear"] += bool(d.labels[int(np.argmax(scores))])
            right["linear without types"] += bool(d.labels[int(np.argmax(untyped(d.features[:, columns])))])
            pool = _pool(scores, ids)
            sentences = [state.index.sentences[ids[k]].text for k in pool]
            before = [previous_in_section(state.index, ids[k]) for k in pool]
            started = time.perf_counter()
            logits = ranker.score(
                model,
                tokenizer,
                d.item.question,
                sentences,
                [None if b is None else state.index.sentences[b].text for b in before],
                ranker.CONTEXT,
            )
            costs.append((time.perf_counter() - started) * 1000)
            right["cross-encoder"] += bool(d.labels[pool[int(np.argmax(logits))]])
            mixed = logits + (scores[pool] - scores[pool].max())
            right["cross-encoder + linear"] += bool(d.labels[pool[int(np.argmax(mixed))]])
        rows.append([name, len(questions), *(f"{v / len(questions):.3f}" for v in right.values())])
    print(
        format_table(
            "what the answer quotes for the first sentence holds the evidence (answerable questions)",
            ["set", "n", "linear", "linear without types", "cross-encoder", "cross-encoder + linear"],
            rows,
        )
    )
    cost = statistics.median(costs)
    print(f"\ncross-encoder cost per question: p50 {cost:.1f} ms (one thread, torch fp32)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
