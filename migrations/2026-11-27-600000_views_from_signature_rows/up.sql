-- The per-group level of the reports goes. Every report is read from a clearance set's view
-- (threat_report_views), and the views are now rolled up from the per-signature rows directly.
-- The group rows cost the sensor ingest a third of its report writes (each update also moved an
-- entry of their ranking index) and served only a fallback for clearance sets nobody holds, which
-- the per-signature rows answer as well.
DROP TABLE threat_report_groups;
