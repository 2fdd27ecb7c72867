-- Banned addresses (package ban), as the release before kept them in
-- bans.db: one row per ban key (an IPv4 address, or the first address of an
-- IPv6 /64). Times are Unix nanoseconds. Rows outlive their ban by 30 days,
-- for escalation. On SQLite this migration also imports the rows of a
-- legacy bans.db beside the database file (see legacy.go).
CREATE TABLE bans (
    ip       TEXT    NOT NULL PRIMARY KEY,
    until_ns BIGINT  NOT NULL,
    times    INTEGER NOT NULL,
    reason   TEXT    NOT NULL
);
CREATE INDEX bans_until ON bans (until_ns);
