CREATE INDEX threat_hits_session_idx ON threat_hits (session_id);
