-- Jobs (which are also the work queue) and tags. Names, statuses and tag keys sort by code point
-- (COLLATE "C"), as in SQLite, whatever the database's locale: list pages and their cursors must
-- not depend on where the database runs. Times are Unix nanoseconds, as in SQLite, so a time
-- written and read back is the same to the nanosecond. Documents are kept as sent (text, not
-- jsonb): Describe echoes them.
CREATE TABLE jobs (
	id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
	lower_name       text COLLATE "C" NOT NULL UNIQUE,
	name             text NOT NULL,
	arn              text NOT NULL,
	request          text NOT NULL,
	spec             text NOT NULL,
	status           text COLLATE "C" NOT NULL,
	secondary_status text NOT NULL,
	created_ns       bigint NOT NULL,
	modified_ns      bigint NOT NULL,
	ended_ns         bigint,
	deadline_ns      bigint,
	failure_reason   text NOT NULL DEFAULT '',
	result           text,
	progress         text,
	checkpoint       text,
	stop_requested   boolean NOT NULL DEFAULT false,
	lease_owner      text,
	lease_expiry_ns  bigint,
	lease_token      bigint NOT NULL DEFAULT 0,
	attempts         integer NOT NULL DEFAULT 0
);
CREATE INDEX jobs_by_created ON jobs (created_ns, lower_name);
CREATE INDEX jobs_by_status ON jobs (status, lower_name);
CREATE INDEX jobs_by_modified ON jobs (modified_ns);
CREATE INDEX jobs_runnable ON jobs (created_ns, id) WHERE status IN ('InProgress', 'Stopping');
CREATE TABLE tags (
	arn   text NOT NULL,
	key   text COLLATE "C" NOT NULL,
	value text NOT NULL,
	PRIMARY KEY (arn, key)
);
