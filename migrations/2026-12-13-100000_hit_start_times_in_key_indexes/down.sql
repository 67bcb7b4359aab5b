DROP INDEX threat_hits_md5_idx;
CREATE INDEX threat_hits_md5_idx ON threat_hits (md5, signature, score);
DROP INDEX threat_hits_pair_idx;
CREATE INDEX threat_hits_pair_idx ON threat_hits (source_ip, destination_ip, signature, score);
