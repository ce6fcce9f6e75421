-- 0003: the attributes users set about themselves and that outlive their
-- sessions (docs/design/001-presence.md, "Attributes"): alias and
-- max-message-length. Presence, status and capabilities come from the
-- sessions and are never stored. A row goes with its account.
CREATE TABLE user_attrs (
    account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    name    TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 64),
    value   TEXT NOT NULL CHECK (length(value) >= 1),
    PRIMARY KEY (account, name)
) STRICT;
