-- 0002: contacts, approvals, blocks and presence subscriptions
-- (docs/design/001-presence.md). In each table, account is the local side
-- and goes with its account (ON DELETE CASCADE); the other address is any
-- address, local or remote, in its normalised form (addr.Address.String).
-- Times are INTEGER microseconds since the Unix epoch (UTC).

-- The contact lists, kept by the watcher's server: account watches contact.
CREATE TABLE contacts (
    account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    contact TEXT NOT NULL,
    alias   TEXT NOT NULL DEFAULT '',
    state   TEXT NOT NULL CHECK (state IN ('asked', 'approved', 'denied')),
    PRIMARY KEY (account, contact)
) STRICT;
CREATE INDEX contacts_contact ON contacts (contact);

-- The presentities' decisions, kept by the presentity's server: may
-- watcher watch account?
CREATE TABLE approvals (
    account  INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    watcher  TEXT NOT NULL,
    state    TEXT NOT NULL CHECK (state IN ('pending', 'approved', 'denied')),
    asked_at INTEGER NOT NULL,
    PRIMARY KEY (account, watcher)
) STRICT;

-- The block lists: pattern is 'user@domain' or '@domain'.
CREATE TABLE blocks (
    account INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    pattern TEXT NOT NULL,
    PRIMARY KEY (account, pattern)
) STRICT;

-- Subscriptions granted by the presentity's server: watcher receives the
-- presence of account until expires, if active (approved). The watcher is
-- kept as domain and local part so that the key orders the watchers of a
-- presentity by domain, the grouping of NOTIFY.
CREATE TABLE subs_in (
    account        INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    watcher_domain TEXT NOT NULL,
    watcher_local  TEXT NOT NULL,
    expires        INTEGER NOT NULL,
    active         INTEGER NOT NULL CHECK (active IN (0, 1)),
    PRIMARY KEY (account, watcher_domain, watcher_local)
) STRICT;
CREATE INDEX subs_in_expires ON subs_in (expires);

-- Subscriptions held for local watchers: account receives the presence of
-- presentity until expires, and renews at renew_at.
CREATE TABLE subs_out (
    account    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
    presentity TEXT NOT NULL,
    expires    INTEGER NOT NULL,
    renew_at   INTEGER NOT NULL,
    PRIMARY KEY (account, presentity)
) STRICT;
CREATE INDEX subs_out_renew_at ON subs_out (renew_at);
CREATE INDEX subs_out_expires ON subs_out (expires);
