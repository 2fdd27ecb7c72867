-- Ferry's user accounts: the table of the release before internal/db,
-- unchanged, so that its users.db is this schema at version 1. Booleans are
-- INTEGER 0/1 and times BIGINT microseconds since the Unix epoch (UTC), so
-- that SQLite and PostgreSQL read and write them the same way.
CREATE TABLE users (
    name          TEXT    NOT NULL PRIMARY KEY, -- case-sensitive
    password_hash TEXT    NOT NULL,             -- PHC argon2id, or bcrypt
    home          TEXT    NOT NULL,             -- absolute host path
    disabled      INTEGER NOT NULL DEFAULT 0 CHECK (disabled IN (0, 1)),
    tls_required  TEXT    NOT NULL DEFAULT '',  -- '', none, control, data, all
    perms         TEXT    NOT NULL DEFAULT '',
    quota_bytes   BIGINT  NOT NULL DEFAULT 0,
    quota_files   BIGINT  NOT NULL DEFAULT 0,
    max_sessions  INTEGER NOT NULL DEFAULT 0,
    upload_rate   BIGINT  NOT NULL DEFAULT 0,   -- bytes/s
    download_rate BIGINT  NOT NULL DEFAULT 0,   -- bytes/s
    allow_fxp     INTEGER NOT NULL DEFAULT 0 CHECK (allow_fxp IN (0, 1)),
    cert_required INTEGER NOT NULL DEFAULT 0 CHECK (cert_required IN (0, 1)),
    cert_login    INTEGER NOT NULL DEFAULT 0 CHECK (cert_login IN (0, 1)),
    created_at    BIGINT  NOT NULL,
    updated_at    BIGINT  NOT NULL
);
