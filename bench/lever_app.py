"""An app factory for one lever: ``api.main.create_app`` with the int8 ONNX MiniLM on one ONNX Runtime thread.

``get_embedder`` builds ``OnnxMiniLMEmbedder()`` with Runtime's default thread count (one per core), and no
setting reaches it; this factory swaps in a one-thread subclass before the app loads, so the benchmark
can show what wiring ``Settings.threads`` to ONNX Runtime would give. Same weights, same index.
Run as ``python -m uvicorn bench.lever_app:create_app --factory`` (bench.common.start_server does).
"""

from __future__ import annotations

from typing import Any

APP = "bench.lever_app:create_app"


def create_app() -> Any:
    """The real app, with ``minilm-onnx`` built on one intra-op thread."""
    from api.main import create_app as real_create_app
    from rag import embedding

    class OneThreadOnnxMiniLM(embedding.OnnxMiniLMEmbedder):
        def __init__(self) -> None:
            super().__init__(threads=1)

    embedding.EMBEDDERS[embedding.OnnxMiniLMEmbedder.name] = OneThreadOnnxMiniLM
    return real_create_app()
