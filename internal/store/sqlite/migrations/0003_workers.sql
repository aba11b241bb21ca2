-- The fleet's registry of workers: each one's own heartbeat, idle or not (lathe workers list).
CREATE TABLE workers (
	id                TEXT PRIMARY KEY,
	host              TEXT NOT NULL,
	started_ns        INTEGER NOT NULL,
	last_heartbeat_ns INTEGER NOT NULL
);
