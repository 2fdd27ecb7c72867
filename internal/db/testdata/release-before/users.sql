-- internal/users/sqlstore/schema.sql of the release before internal/db (main at 525b536), verbatim,
-- then rows as its Store.Add wrote them (argon2id hashes of alice-pw and 'bob pw 2').
-- Ferry's user store, version 1. Portable SQL: SQLite runs it now and
-- PostgreSQL can run it as it is. Booleans are INTEGER 0/1 and times are
-- BIGINT microseconds since the Unix epoch (UTC), so that both databases
-- read and write them the same way.

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

-- One row per applied schema version; the highest is the database's.
CREATE TABLE schema_version (
    version INTEGER NOT NULL PRIMARY KEY
);

INSERT INTO schema_version (version) VALUES (1);

INSERT INTO users (name, home, disabled, tls_required, perms, quota_bytes, quota_files,
	max_sessions, upload_rate, download_rate, allow_fxp, cert_required, cert_login,
	created_at, updated_at, password_hash) VALUES
('alice', '/srv/ftp/alice', 0, 'all', '/=read;/incoming=read,upload', 1099511627776, 1000, 3, 1048576, 2097152, 1, 0, 0,
 1764700000000000, 1764700000000001, '$argon2id$v=19$m=19456,t=2,p=1$5zLNK439O0tu8A/tONTw+Q$Dac2rvweCoy3FMuvLcBjwGmYDw95dR1KdUriXFrOMNU'),
('bob', '/srv/ftp/bob', 1, '', '', 0, 0, 0, 0, 0, 0, 0, 0,
 1764700000000002, 1764700000000003, '$argon2id$v=19$m=19456,t=2,p=1$LzzKrMoV1EHt+qL8veTDXA$M1iDOk7wz5AXDF9cDzoqbCJkKIEfwZYu80+Omy/wi7U');
