-- Journals of the S3 backend (package dbjournal), so that any node can
-- finish or clean up what another started. Times are Unix nanoseconds;
-- node is a nodes.id (the row may be gone with its node).
--
-- s3_uploads: multipart uploads in progress; the sweep aborts those whose
-- node is gone.
CREATE TABLE s3_uploads (
    object_key TEXT   NOT NULL,
    upload_id  TEXT   NOT NULL,
    node       TEXT   NOT NULL,
    started_ns BIGINT NOT NULL,
    PRIMARY KEY (object_key, upload_id)
);
CREATE INDEX s3_uploads_node ON s3_uploads (node);

-- s3_renames: directory renames in progress (key prefixes ending in "/");
-- a later rename of the same names continues one whose node is gone.
CREATE TABLE s3_renames (
    from_prefix TEXT   NOT NULL,
    to_prefix   TEXT   NOT NULL,
    node        TEXT   NOT NULL,
    started_ns  BIGINT NOT NULL,
    PRIMARY KEY (from_prefix, to_prefix)
);
