-- Teams and virtual keys. Secrets are never stored: only SHA-256 (hex) and a display prefix.
-- The same text runs on SQLite and PostgreSQL; JSON columns are TEXT for portability.
CREATE TABLE IF NOT EXISTS governance_teams (
    name        TEXT PRIMARY KEY,
    limits      TEXT NOT NULL,
    budgets     TEXT NOT NULL,
    created_ms  BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS governance_keys (
    id                       TEXT PRIMARY KEY,
    team                     TEXT NOT NULL REFERENCES governance_teams (name),
    name                     TEXT NOT NULL,
    prefix                   TEXT NOT NULL,
    secret_sha256            TEXT NOT NULL UNIQUE,
    previous_sha256          TEXT,
    previous_valid_until_ms  BIGINT,
    allowed_models           TEXT NOT NULL,
    data_class               TEXT NOT NULL,
    limits                   TEXT NOT NULL,
    budgets                  TEXT NOT NULL,
    store_bodies             BOOLEAN NOT NULL,
    created_ms               BIGINT NOT NULL,
    revoked_ms               BIGINT,
    UNIQUE (team, name)
);

CREATE INDEX IF NOT EXISTS governance_keys_previous ON governance_keys (previous_sha256);
