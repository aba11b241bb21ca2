-- SageMaker hosting resources, shared by every API node (they were in each node's own endpoints.db
-- before). Keys are the lower-cased names; times are Unix milliseconds.
CREATE TABLE hosting_resources (
	kind       text COLLATE "C" NOT NULL,
	key        text COLLATE "C" NOT NULL,
	name       text NOT NULL,
	arn        text NOT NULL,
	created_ms bigint NOT NULL,
	spec       text NOT NULL,
	PRIMARY KEY (kind, key)
);
CREATE TABLE endpoints (
	key         text COLLATE "C" PRIMARY KEY,
	name        text NOT NULL,
	arn         text NOT NULL,
	config_name text NOT NULL,
	status      text NOT NULL,
	failure     text NOT NULL DEFAULT '',
	created_ms  bigint NOT NULL,
	modified_ms bigint NOT NULL,
	deployment  text NOT NULL
);
-- The secret the replica listeners' bearer tokens derive from: one row.
CREATE TABLE replica_secret (
	id     integer PRIMARY KEY CHECK (id = 1),
	secret bytea NOT NULL
);
