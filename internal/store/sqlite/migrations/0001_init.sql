-- The schema as first shipped (recorded in PRAGMA user_version = 1 before schema_migrations existed).
CREATE TABLE jobs (
	id               INTEGER PRIMARY KEY,
	lower_name       TEXT NOT NULL UNIQUE,
	name             TEXT NOT NULL,
	arn              TEXT NOT NULL,
	request          TEXT NOT NULL,
	spec             TEXT NOT NULL,
	status           TEXT NOT NULL,
	secondary_status TEXT NOT NULL,
	created_ns       INTEGER NOT NULL,
	modified_ns      INTEGER NOT NULL,
	ended_ns         INTEGER,
	deadline_ns      INTEGER,
	failure_reason   TEXT NOT NULL DEFAULT '',
	result           TEXT,
	progress         TEXT,
	stop_requested   INTEGER NOT NULL DEFAULT 0,
	lease_owner      TEXT,
	lease_expiry_ns  INTEGER,
	attempts         INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_created ON jobs (created_ns, lower_name);
CREATE INDEX jobs_by_status ON jobs (status, lower_name);
CREATE INDEX jobs_by_modified ON jobs (modified_ns);
CREATE INDEX jobs_runnable ON jobs (created_ns) WHERE status IN ('InProgress', 'Stopping');
CREATE TABLE tags (
	arn   TEXT NOT NULL,
	key   TEXT NOT NULL,
	value TEXT NOT NULL,
	PRIMARY KEY (arn, key)
) WITHOUT ROWID;
