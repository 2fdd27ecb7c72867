-- ACME state shared by the servers on the database (package acme,
-- sqlacme): one account and one certificate for all of them. Times are
-- Unix nanoseconds.
--
-- acme_state: the account key and URL, the certificate and its key, by
-- name (account.key, account.url, cert.pem, key.pem); the values are PEM or
-- text. The certificate and its key are replaced in one transaction.
CREATE TABLE acme_state (
    name       TEXT   NOT NULL PRIMARY KEY,
    value      TEXT   NOT NULL,
    updated_ns BIGINT NOT NULL
);

-- acme_leases: who may order now. A server takes the row with one atomic
-- INSERT … ON CONFLICT DO NOTHING or UPDATE … WHERE expires_ns < now, so
-- that one server orders while the others wait for its certificate.
CREATE TABLE acme_leases (
    name       TEXT   NOT NULL PRIMARY KEY,
    holder     TEXT   NOT NULL,
    expires_ns BIGINT NOT NULL
);

-- acme_challenges: the key authorizations of the challenges pending, so
-- that whichever server the CA reaches answers: name is "http-01/TOKEN" or
-- "tls-alpn-01/DOMAIN".
CREATE TABLE acme_challenges (
    name       TEXT   NOT NULL PRIMARY KEY,
    key_auth   TEXT   NOT NULL,
    expires_ns BIGINT NOT NULL
);
