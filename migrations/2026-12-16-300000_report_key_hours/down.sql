DROP TABLE threat_report_key_hours;
DROP FUNCTION threat_hours_of(int4[]);
DROP FUNCTION threat_hours_union(int4, varbit, int4, varbit);
DROP FUNCTION threat_hours_meet(int4, varbit, int4, int4);
