DROP INDEX threat_score_changes_rescans_idx;
DROP TABLE threat_triage;
