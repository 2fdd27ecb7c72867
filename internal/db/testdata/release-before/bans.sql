-- The schema constant of internal/ban/sqlstore.go of the release before internal/db (main at 525b536),
-- verbatim, then rows as its SQLStore.Put wrote them: one active IPv4 ban, one IPv6 /64, one ended.
CREATE TABLE IF NOT EXISTS bans (
	ip       TEXT    PRIMARY KEY,
	until_ns BIGINT  NOT NULL,
	times    INTEGER NOT NULL,
	reason   TEXT    NOT NULL
);
CREATE INDEX IF NOT EXISTS bans_until ON bans (until_ns);
INSERT INTO bans (ip, until_ns, times, reason) VALUES
('192.0.2.7', 4102444800000000000, 2, '20 failed logins in 10m0s'),
('2001:db8::', 4102444800000000001, 1, 'added by an operator'),
('198.51.100.1', 1700000000000000000, 3, 'ended, kept for escalation');
