-- The fleet's registry of workers: each one's own heartbeat, idle or not (lathe workers list).
CREATE TABLE workers (
	id                text COLLATE "C" PRIMARY KEY,
	host              text NOT NULL,
	started_ns        bigint NOT NULL,
	last_heartbeat_ns bigint NOT NULL
);
