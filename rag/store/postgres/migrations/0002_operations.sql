-- forum-qa's PostgreSQL store, version 2: what operators and replicas need to see of the work.
--
-- Jobs: a job that keeps failing is marked failed after a few attempts (FORUMQA_DB_MAX_ATTEMPTS) instead
-- of being retried for ever; its progress (texts done of total) and when it started and was last renewed
-- are recorded, so every replica and `forumqa db status` show them.
ALTER TABLE forumqa_jobs DROP CONSTRAINT forumqa_jobs_state_check;
ALTER TABLE forumqa_jobs ADD CONSTRAINT forumqa_jobs_state_check CHECK (state IN ('queued', 'done', 'failed'));
ALTER TABLE forumqa_jobs
    ADD COLUMN done integer NOT NULL DEFAULT 0,
    ADD COLUMN total integer,
    ADD COLUMN started timestamptz,
    ADD COLUMN renewed timestamptz;

-- Documents: the generation at which each last changed (added, made ready, embedded by one more model),
-- so a replica reloads only the documents that changed since the generation it serves.
ALTER TABLE forumqa_documents ADD COLUMN changed bigint NOT NULL DEFAULT 0;

-- Readers' feedback (FORUMQA_FEEDBACK) in database mode: one row per rating, shared by every replica.
CREATE TABLE forumqa_feedback (
    id bigserial PRIMARY KEY,
    received timestamptz NOT NULL DEFAULT now(),
    record json NOT NULL                    -- the record `forumqa feedback export` reads (json: keeps order)
);
