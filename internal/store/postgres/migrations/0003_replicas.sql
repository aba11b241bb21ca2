-- Endpoint replicas placed on workers by the API nodes (lathe serve --workers 0).
CREATE TABLE replicas (
	id           text COLLATE "C" PRIMARY KEY,
	endpoint_key text COLLATE "C" NOT NULL,
	endpoint     text NOT NULL,
	variant      text NOT NULL,
	spec         text NOT NULL,
	worker       text NOT NULL DEFAULT '',
	state        text NOT NULL DEFAULT 'Pending',
	addr         text NOT NULL DEFAULT '',
	failure      text NOT NULL DEFAULT ''
);
CREATE INDEX replicas_endpoint ON replicas (endpoint_key);
