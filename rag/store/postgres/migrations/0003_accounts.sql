-- forum-qa's PostgreSQL store, version 3: accounts (rag/accounts/). Users with their role and argon2
-- password hash, sessions and tokens by the sha256 of their secret, collections and grants, sign-in
-- failures (the growing delay), and the audit log. Times are Unix seconds, as in the file store's
-- SQLite file (rag/accounts/records.py holds the same tables for it).
CREATE TABLE forumqa_users (
    name text PRIMARY KEY,
    role text NOT NULL CHECK (role IN ('reader', 'editor', 'admin')),
    password_hash text NOT NULL,
    disabled boolean NOT NULL DEFAULT false,
    created double precision NOT NULL,
    changed double precision NOT NULL
);
CREATE TABLE forumqa_sessions (
    key_hash text PRIMARY KEY,
    user_name text NOT NULL REFERENCES forumqa_users (name) ON DELETE CASCADE,
    created double precision NOT NULL,
    expires double precision NOT NULL
);
CREATE TABLE forumqa_tokens (
    name text PRIMARY KEY,
    user_name text NOT NULL REFERENCES forumqa_users (name) ON DELETE CASCADE,
    key_hash text NOT NULL UNIQUE,
    created double precision NOT NULL
);
-- Every document belongs to one collection (its metadata's "collection"); those naming none to 'default'.
CREATE TABLE forumqa_collections (
    name text PRIMARY KEY,
    created double precision NOT NULL
);
INSERT INTO forumqa_collections (name, created) VALUES ('default', 0);
CREATE TABLE forumqa_grants (
    subject text NOT NULL,                  -- a user name, or '*' for everyone
    collection text NOT NULL REFERENCES forumqa_collections (name) ON DELETE CASCADE,
    level text NOT NULL CHECK (level IN ('read', 'write')),
    PRIMARY KEY (subject, collection)
);
CREATE TABLE forumqa_signin_failures (
    name text PRIMARY KEY,
    failures integer NOT NULL,
    last_failure double precision NOT NULL
);
CREATE TABLE forumqa_audit (
    id bigserial PRIMARY KEY,
    at double precision NOT NULL,
    actor text NOT NULL,
    action text NOT NULL,
    target text NOT NULL,
    detail text NOT NULL DEFAULT ''
);
