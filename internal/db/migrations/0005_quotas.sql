-- Shared quotas (package quota, sqlquota). Times are Unix nanoseconds.
--
-- nodes: the Ferry processes using the database, each with its heartbeat;
-- a node whose heartbeat is older than node_timeout is gone, and the first
-- live node to see it releases what it held (db.Node).
CREATE TABLE nodes (
    id           TEXT   NOT NULL PRIMARY KEY,
    info         TEXT   NOT NULL,
    started_ns   BIGINT NOT NULL,
    heartbeat_ns BIGINT NOT NULL
);
CREATE INDEX nodes_heartbeat ON nodes (heartbeat_ns);

-- quota_usage: what a user stores under a home, with the reservations of
-- the uploads in progress on every node; changed only by single atomic
-- UPDATEs that check the limit.
CREATE TABLE quota_usage (
    name       TEXT   NOT NULL,
    home       TEXT   NOT NULL,
    bytes      BIGINT NOT NULL,
    files      BIGINT NOT NULL,
    scanned_ns BIGINT NOT NULL,
    PRIMARY KEY (name, home)
);

-- quota_reservations: the part of quota_usage that a node's uploads in
-- progress hold (bytes written or reserved but not committed, new files'
-- slots); released from quota_usage when the node is gone.
CREATE TABLE quota_reservations (
    node  TEXT   NOT NULL,
    name  TEXT   NOT NULL,
    home  TEXT   NOT NULL,
    bytes BIGINT NOT NULL,
    files BIGINT NOT NULL,
    PRIMARY KEY (node, name, home)
);
