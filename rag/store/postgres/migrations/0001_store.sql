-- forum-qa's PostgreSQL store, version 1: documents, their chunks and sentences, vectors per model,
-- embedding jobs, and the generation counter replicas poll. Applied by `forumqa db upgrade`.

CREATE EXTENSION IF NOT EXISTS vector;

-- One row per document: the original bytes and what the loader made of them. `ready` turns true when
-- the job of its first model (the fast stage) is done; only ready documents are served. Text that comes
-- from a document (its text, title and section titles) is stored as UTF-8 bytes (bytea) and its
-- structures as json (not jsonb): PostgreSQL's text and jsonb refuse NUL characters, which a document may
-- hold, and json keeps key order, so what comes back is what went in, byte for byte.
CREATE TABLE forumqa_documents (
    id text PRIMARY KEY,
    sort_key text NOT NULL UNIQUE,          -- the file name it has (or would have) in a corpus folder
    title bytea NOT NULL,
    source text NOT NULL DEFAULT '',
    kind text NOT NULL,
    original_filename text NOT NULL DEFAULT '',
    sha256 text NOT NULL UNIQUE,            -- of `data`: the same bytes twice are refused
    data bytea NOT NULL,
    text bytea NOT NULL,
    sections json NOT NULL,                -- [{"title", "start", "end"}]
    pages integer[] NOT NULL DEFAULT '{}',  -- offsets where each page starts (PDF)
    metadata json NOT NULL DEFAULT '{}',
    chunking json NOT NULL,                -- {"sentences", "overlap"} the chunks were cut with
    ready boolean NOT NULL DEFAULT false,
    added timestamptz NOT NULL DEFAULT now()
);

-- Sentences and chunks, numbered inside their document (ord); offsets index forumqa_documents.text.
CREATE TABLE forumqa_sentences (
    doc_id text NOT NULL REFERENCES forumqa_documents (id) ON DELETE CASCADE,
    ord integer NOT NULL,
    section bytea NOT NULL,
    start_at integer NOT NULL,
    end_at integer NOT NULL,
    PRIMARY KEY (doc_id, ord)
);

CREATE TABLE forumqa_chunks (
    doc_id text NOT NULL REFERENCES forumqa_documents (id) ON DELETE CASCADE,
    ord integer NOT NULL,
    section bytea NOT NULL,
    start_at integer NOT NULL,
    end_at integer NOT NULL,
    sentence_ords integer[] NOT NULL,       -- forumqa_sentences.ord of the same document
    PRIMARY KEY (doc_id, ord)
);

-- Passage vectors by the sha256 of the text embedded and the model that embedded it: the build state
-- ("which texts are embedded by which model"), shared by every document holding the same text.
-- Untyped `vector` so that models of any width share the table; the HNSW indexes below are partial,
-- one per model, on the width that model has.
CREATE TABLE forumqa_embeddings (
    model text NOT NULL,
    text_sha256 text NOT NULL,
    encoder jsonb NOT NULL,                 -- model id, weights sha256, passage encoder
    embedding vector NOT NULL,
    PRIMARY KEY (model, text_sha256)
);
CREATE INDEX forumqa_embeddings_minilm_hnsw ON forumqa_embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE model = 'minilm';
CREATE INDEX forumqa_embeddings_e5_hnsw ON forumqa_embeddings
    USING hnsw ((embedding::vector(384)) vector_cosine_ops) WHERE model = 'e5';
CREATE INDEX forumqa_embeddings_use_hnsw ON forumqa_embeddings
    USING hnsw ((embedding::vector(512)) vector_cosine_ops) WHERE model = 'use';

-- Embedding work: one job per document and model, claimed with FOR UPDATE SKIP LOCKED under a lease.
CREATE TABLE forumqa_jobs (
    id bigserial PRIMARY KEY,
    doc_id text NOT NULL REFERENCES forumqa_documents (id) ON DELETE CASCADE,
    model text NOT NULL,
    stage integer NOT NULL,                 -- lower first: the fast model before e5 and USE
    state text NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'done')),
    lease_owner text,
    lease_until timestamptz,
    attempts integer NOT NULL DEFAULT 0,
    last_error text,
    created timestamptz NOT NULL DEFAULT now(),
    finished timestamptz,
    UNIQUE (doc_id, model)
);
CREATE INDEX forumqa_jobs_queued ON forumqa_jobs (stage, id) WHERE state = 'queued';

-- The generation: bumped whenever the set of served documents changes; replicas poll it.
CREATE TABLE forumqa_state (
    id integer PRIMARY KEY CHECK (id = 1),
    generation bigint NOT NULL
);
INSERT INTO forumqa_state (id, generation) VALUES (1, 0);
