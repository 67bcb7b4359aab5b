-- A session's hits are read through its files (threat_files_session_idx, then the hits' primary key,
-- which leads with the file id): one index fewer for the sensor ingest to update per hit.
DROP INDEX threat_hits_session_idx;
