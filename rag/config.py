"""Settings: every knob of forum-qa in one pydantic-settings class (env prefix ``FORUMQA_``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class LLMNotConfigured(ValueError):
    """Generative answers were asked for, but no LLM is configured."""

    def __init__(self) -> None:
        super().__init__(
            "mode 'generative' needs an LLM, and none is configured "
            "(FORUMQA_LLM_BASE_URL and FORUMQA_LLM_MODEL)"
        )


class Settings(BaseSettings):
    """Configuration read from the environment (``FORUMQA_*``) or passed in code."""

    model_config = SettingsConfigDict(env_prefix="FORUMQA_", extra="ignore", populate_by_name=True)

    # Where things live.
    corpus_dir: Path = Field(
        Path("corpus"), description="Folder of source documents (.txt, .md, .html, .pdf, .docx)."
    )
    index_dir: Path = Field(Path("index"), description="Folder of built index artifacts.")

    # Embedding models, by registry name (see rag.index.embedders.EMBEDDERS). Questions in Latin script
    # go to the English model(s); Korean, Russian and other scripts to the multilingual ones, fused.
    embedders: list[str] = Field(default_factory=lambda: ["minilm", "e5", "use"])
    # Models whose chunk vectors are the normalised mean of their sentences' vectors instead of embedded
    # from the chunk's text: a build then embeds sentences only. Measured per model on the dev set (see
    # README, "Building the index"): USE holds (ko/ru hit@1 rise, nothing falls); MiniLM (en hit@3
    # 1.000 -> 0.962) and e5 (ru hit@3 1.000 -> 0.750) do not, so they embed their chunks.
    derived_chunk_vectors: list[str] = Field(default_factory=lambda: ["use"])

    # Chunking: windows of sentences inside one section.
    chunk_sentences: int = Field(3, ge=1, le=20)
    chunk_overlap: int = Field(1, ge=0, le=19)

    # Retrieval and answers.
    candidates: int = Field(20, ge=1, le=200, description="Chunks each retriever contributes to fusion.")
    rrf_k: int = Field(60, ge=1)
    answer_threshold: float = Field(0.5, ge=0.0, le=1.0, description="Confidence below which we say 'no'.")
    cache_size: int = Field(1024, ge=0, description="LRU entries for answers and query embeddings.")

    # Serving.
    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    workers: int = Field(1, ge=1, le=64)
    max_question_chars: int = Field(1000, ge=1)
    max_body_bytes: int = Field(64 * 1024, ge=1024)
    api_key: str | None = None
    # Adding and removing documents over HTTP (POST/DELETE /api/documents) is off unless an API key
    # guards the API or this is set: an open server must not let anyone rewrite its corpus.
    allow_uploads: bool = Field(False, description="Allow uploads and removals without an API key.")
    max_upload_bytes: int = Field(
        10 * 1024 * 1024, ge=1024, le=20 * 1024 * 1024, description="Largest document file accepted."
    )
    # Readers' 👍/👎 on answers (POST /api/feedback), kept as JSON lines in the index folder: off unless
    # set, because it stores what users type on the server's disk.
    feedback: bool = Field(False, description="Accept feedback on answers (POST /api/feedback).")
    feedback_per_minute: int = Field(
        10, ge=1, le=10_000, description="Feedback posts per client per minute (per worker process)."
    )
    feedback_max_file_bytes: int = Field(
        32 * 1024 * 1024, ge=1024, description="Size at which the feedback file stops growing (503)."
    )
    # Accounts (rag/accounts/): kept by the store (the database's tables, or this SQLite file; default
    # index/accounts.sqlite3). Once one exists, /api and /v1 need a session, a token or a grant to '*'.
    accounts_file: Path | None = Field(None, description="The file store's accounts (SQLite).")
    session_hours: float = Field(12.0, gt=0, le=24 * 90, description="How long a sign-in lasts.")
    auth_cache_seconds: float = Field(
        2.0, ge=0, le=60, description="How long a server trusts what a session or token resolved to; a "
        "revocation, a disabled user or a changed grant holds on every replica within it."
    )
    cors_origins: list[str] = Field(default_factory=list)
    rate_limit_per_minute: int = Field(0, ge=0, description="Requests per client per minute; 0 = off.")
    threads: int = Field(
        0, ge=0, description="Threads per model call (ONNX, torch, FAISS, USE); 0 = the libraries' default."
    )
    build_threads: int = Field(
        0, ge=0, description="Threads per model call when embedding documents (a build, a job), which runs "
        "in the background of a server too: 0 = the libraries' default (every core), so an upload is "
        "answerable sooner; answering keeps FORUMQA_THREADS.",
    )
    query_encoder: Literal["onnx", "torch"] = Field(
        "onnx", description="Encode English queries with the int8 ONNX MiniLM (same vectors, ~4x faster)."
    )

    # How often every server process checks its store for a newer index (index/CURRENT, or the database's
    # generation) and swaps it in. FORUMQA_DB_POLL_SECONDS is its former name.
    poll_seconds: float = Field(
        1.0, gt=0, le=60, description="How often a server checks its store for a newer index.",
        validation_alias=AliasChoices("poll_seconds", "FORUMQA_POLL_SECONDS", "FORUMQA_DB_POLL_SECONDS"),
    )

    # The shared store (rag/store/postgres/): a PostgreSQL URL with pgvector switches documents, chunks,
    # vectors and build state into the database, shared by every replica; unset, the file store serves.
    # A secret: never logged, never echoed in errors (it may carry a password).
    database_url: SecretStr | None = Field(
        None, description="postgresql://user:password@host/db: the shared PostgreSQL + pgvector store."
    )
    db_lease_seconds: float = Field(
        10.0, ge=1, le=3600, description="Seconds a claimed embedding job stays a worker's unless renewed "
        "(renewed every third of it while the worker lives)."
    )
    db_max_attempts: int = Field(
        3, ge=1, le=100, description="Tries of an embedding job before it is marked failed."
    )
    db_write_connections: int = Field(
        4, ge=1, le=64, description="Connections this process keeps for database writes (uploads, removals, "
        "feedback); a write that finds them all busy, or the database down, fails at once with 503."
    )
    db_jobs: bool = Field(
        True, description="Serving replicas also run embedding jobs (a read-only role never does)."
    )
    db_connect_timeout: float = Field(5.0, gt=0, le=120, description="Seconds to connect to the database.")

    # An optional OpenAI-compatible LLM that writes answers from the cited passages (mode
    # "generative"); without a base URL every answer is extractive and nothing leaves the machine.
    llm_base_url: str | None = Field(
        None, description="e.g. http://127.0.0.1:11434/v1 (Ollama), http://127.0.0.1:8080/v1 (llama.cpp)."
    )
    llm_model: str | None = Field(None, description="The model name the LLM server knows.")
    llm_api_key: SecretStr | None = Field(None, description="Sent as a bearer token; never logged.")
    llm_timeout: float = Field(60.0, gt=0, le=600, description="Seconds for a whole generated answer.")
    llm_connect_timeout: float = Field(5.0, gt=0, le=60)
    llm_max_concurrent: int = Field(2, ge=1, le=64, description="LLM calls at once; others wait.")
    llm_queue_timeout: float = Field(5.0, ge=0, le=600, description="Seconds to wait for a free call.")
    llm_max_tokens: int = Field(300, ge=16, le=4096)
    llm_temperature: float = Field(0.0, ge=0.0, le=2.0)
    llm_regenerate_temperature: float = Field(
        0.7, ge=0.0, le=2.0,
        description="The LLM's temperature when an answer is regenerated (fresh), so it may be worded anew.",
    )

    @property
    def database(self) -> bool:
        """Whether the PostgreSQL store serves (FORUMQA_DATABASE_URL set) instead of the file store."""
        return self.database_url is not None and bool(self.database_url.get_secret_value())

    @property
    def llm_configured(self) -> bool:
        return bool(self.llm_base_url and self.llm_model)

    def check_mode(self, mode: str) -> None:
        """Raise :class:`LLMNotConfigured` when ``mode`` is "generative" and no LLM is configured.

        The one statement of the rule, for every way in (``ForumQA``, the API, the CLI); "auto" never
        fails, it answers extractively without an LLM.
        """
        if mode == "generative" and not self.llm_configured:
            raise LLMNotConfigured()

    @property
    def uploads_enabled(self) -> bool:
        """Whether documents may be added and removed over HTTP: with an API key, or when allowed."""
        return self.allow_uploads or bool(self.api_key)
