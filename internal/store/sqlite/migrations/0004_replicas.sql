-- Endpoint replicas placed on workers by the API nodes (lathe serve --workers 0).
CREATE TABLE replicas (
	id           TEXT PRIMARY KEY,
	endpoint_key TEXT NOT NULL,
	endpoint     TEXT NOT NULL,
	variant      TEXT NOT NULL,
	spec         TEXT NOT NULL,
	worker       TEXT NOT NULL DEFAULT '',
	state        TEXT NOT NULL DEFAULT 'Pending',
	addr         TEXT NOT NULL DEFAULT '',
	failure      TEXT NOT NULL DEFAULT ''
);
CREATE INDEX replicas_endpoint ON replicas (endpoint_key);
