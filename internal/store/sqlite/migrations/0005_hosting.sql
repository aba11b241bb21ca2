-- SageMaker hosting resources, shared by every process of the store (they were in each API node's
-- own endpoints.db before; package endpoint imports such a file's rows on start). Keys are the
-- lower-cased names; times are Unix milliseconds.
CREATE TABLE hosting_resources (
	kind       TEXT NOT NULL,
	key        TEXT NOT NULL,
	name       TEXT NOT NULL,
	arn        TEXT NOT NULL,
	created_ms INTEGER NOT NULL,
	spec       TEXT NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE TABLE endpoints (
	key         TEXT PRIMARY KEY,
	name        TEXT NOT NULL,
	arn         TEXT NOT NULL,
	config_name TEXT NOT NULL,
	status      TEXT NOT NULL,
	failure     TEXT NOT NULL DEFAULT '',
	created_ms  INTEGER NOT NULL,
	modified_ms INTEGER NOT NULL,
	deployment  TEXT NOT NULL
);
-- The secret the replica listeners' bearer tokens derive from: one row.
CREATE TABLE replica_secret (
	id     INTEGER PRIMARY KEY CHECK (id = 1),
	secret BLOB NOT NULL
);
