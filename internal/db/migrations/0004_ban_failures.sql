-- Failed-login scores (package ban), shared by every Ferry process on the
-- database, so that failures on several nodes add up. One row per ban key
-- (as in bans.ip) and time slot: slot is the slot's start (Unix
-- nanoseconds; a slot is a tenth of the ban window), points the sum of the
-- events scored in it, and until_ns when the row stops counting towards the
-- key's score (the slot's end plus the window). Scores are changed only by
-- an upsert that adds to points, so concurrent writers never lose an event.
CREATE TABLE ban_failures (
    ip       TEXT    NOT NULL,
    slot     BIGINT  NOT NULL,
    points   INTEGER NOT NULL,
    until_ns BIGINT  NOT NULL,
    PRIMARY KEY (ip, slot)
);
CREATE INDEX ban_failures_until ON ban_failures (until_ns);
