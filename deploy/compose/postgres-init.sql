-- The databases of the pipeline on the compose file's PostgreSQL (run once, by the
-- postgres image, when its volume is new). The ledger uses the default database
-- (`factorstream`, POSTGRES_DB); each other part has its own, so their tables and
-- migrations never meet.
CREATE DATABASE verifiers;   -- the MFA service's verifier store and its outbox (the relay)
CREATE DATABASE dashboard;   -- dashboard users, their sessions and their outbox
CREATE DATABASE ingest;      -- the HTTP ingest's credentials
