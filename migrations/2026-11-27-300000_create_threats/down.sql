DROP TABLE threat_report_views, threat_views, threat_report_groups, threat_report_rows, threat_score_changes, threat_hits, threat_files, threat_sessions,
    threat_clearances, threat_signatures, sensor_event_ids, sensor_tokens, sensors;
