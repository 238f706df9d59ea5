-- One row per request; see crates/ledger/src/store/mod.rs (Row) for the meaning of each column.
CREATE TABLE ledger_records (
    seq                 INTEGER PRIMARY KEY,
    prev_hash           TEXT    NOT NULL,
    hash                TEXT    NOT NULL,
    request_id          TEXT    NOT NULL,
    time_ms             INTEGER NOT NULL,
    key_id              TEXT,
    team                TEXT,
    model               TEXT    NOT NULL,
    deployment          TEXT,
    provider            TEXT,
    cloud               TEXT,
    region              TEXT,
    jurisdiction        TEXT,
    data_class          TEXT,
    attempts            TEXT    NOT NULL,
    input_tokens        INTEGER NOT NULL,
    output_tokens       INTEGER NOT NULL,
    cached_input_tokens INTEGER NOT NULL,
    cache_write_tokens  INTEGER NOT NULL,
    reasoning_tokens    INTEGER NOT NULL,
    cost_nanos          INTEGER NOT NULL,
    price_known         BOOLEAN NOT NULL,
    latency_ms          INTEGER NOT NULL,
    ttft_ms             INTEGER,
    outcome             TEXT    NOT NULL,
    stream              BOOLEAN NOT NULL,
    prompt_body         TEXT,
    response_body       TEXT
);
CREATE INDEX ledger_records_time ON ledger_records (time_ms);
CREATE INDEX ledger_records_request ON ledger_records (request_id);

-- The chain head: one row, locked by every append so appends form a single chain.
CREATE TABLE ledger_head (
    id   INTEGER PRIMARY KEY CHECK (id = 1),
    seq  INTEGER NOT NULL,
    hash TEXT    NOT NULL
);
INSERT INTO ledger_head (id, seq, hash)
VALUES (1, 0, '0000000000000000000000000000000000000000000000000000000000000000');
