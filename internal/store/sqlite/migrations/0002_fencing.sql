-- Fencing tokens for job leases, and the latest checkpoint of a running job.
ALTER TABLE jobs ADD COLUMN lease_token INTEGER NOT NULL DEFAULT 0;
ALTER TABLE jobs ADD COLUMN checkpoint TEXT;
