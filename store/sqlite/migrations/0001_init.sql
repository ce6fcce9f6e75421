-- 0001: accounts, sessions, received-message claims, outbox, offline messages.
-- Times are INTEGER microseconds since the Unix epoch (UTC).

-- The users of the local domains. password is an argon2id hash in the PHC
-- string format (package store).
CREATE TABLE accounts (
    id       INTEGER PRIMARY KEY,
    domain   TEXT NOT NULL,
    local    TEXT NOT NULL,
    password TEXT NOT NULL,
    UNIQUE (domain, local)
) STRICT;

-- Remembered logins. token_hash is the SHA-256 of the token; the token
-- itself is never stored.
CREATE TABLE sessions (
    id         INTEGER PRIMARY KEY,
    account    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    token_hash BLOB NOT NULL UNIQUE,
    client     TEXT NOT NULL,
    created    INTEGER NOT NULL,
    expires    INTEGER NOT NULL
) STRICT;
CREATE INDEX sessions_account ON sessions (account);
CREATE INDEX sessions_expires ON sessions (expires);

-- Requests received, by origin and id, so that none is delivered twice.
-- status is NULL while the claim is in flight.
CREATE TABLE claims (
    origin   TEXT NOT NULL,
    id       BLOB NOT NULL,
    received INTEGER NOT NULL,
    status   INTEGER,
    count    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (origin, id)
) STRICT, WITHOUT ROWID;
CREATE INDEX claims_received ON claims (received);

-- Messages accepted from local senders that have no final result yet.
-- The rowid gives the insertion order among entries created at the same time.
CREATE TABLE outbox (
    seq          INTEGER PRIMARY KEY,
    id           BLOB NOT NULL UNIQUE,
    sender       TEXT NOT NULL,
    recipient    TEXT NOT NULL,
    mime         BLOB NOT NULL,
    created      INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    next_attempt INTEGER NOT NULL,
    last_error   TEXT NOT NULL DEFAULT ''
) STRICT;
CREATE INDEX outbox_due ON outbox (next_attempt);

-- Messages kept for offline recipients. AUTOINCREMENT: a seq is never
-- reused, so "delete up to seq" never reaches a message that arrived later.
CREATE TABLE offline (
    seq      INTEGER PRIMARY KEY AUTOINCREMENT,
    account  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    sender   TEXT NOT NULL,
    id       BLOB NOT NULL,
    mime     BLOB NOT NULL,
    received INTEGER NOT NULL,
    UNIQUE (account, sender, id)
) STRICT;
CREATE INDEX offline_account ON offline (account);
CREATE INDEX offline_received ON offline (received);
