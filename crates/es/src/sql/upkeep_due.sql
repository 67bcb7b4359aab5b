-- The tables of the current schema that autovacuum leaves alone (the server's `autovacuum` off,
-- or the table's `autovacuum_enabled` false) and that have passed one of autovacuum's own
-- thresholds: dead rows or rows inserted since the last vacuum (vacuum), or rows changed since
-- the last analyze (analyze only). A table never vacuumed has reltuples -1: counted as empty, as
-- autovacuum counts it.
WITH t AS (
    SELECT c.relname::text AS "table",
           greatest(c.reltuples, 0) AS rows,
           s.n_ins_since_vacuum AS inserted,
           s.n_dead_tup AS dead,
           s.n_mod_since_analyze AS changed
    FROM pg_class c
    JOIN pg_stat_user_tables s ON s.relid = c.oid
    WHERE c.relnamespace = current_schema()::regnamespace
      AND c.relkind IN ('r', 'm')
      AND (NOT current_setting('autovacuum')::bool
           OR EXISTS (SELECT 1 FROM unnest(c.reloptions) o
                      WHERE lower(o) IN ('autovacuum_enabled=false', 'autovacuum_enabled=off',
                                         'autovacuum_enabled=no', 'autovacuum_enabled=0',
                                         'autovacuum_enabled=f', 'autovacuum_enabled=n')))
), judged AS (
    SELECT "table", inserted, dead,
           dead > current_setting('autovacuum_vacuum_threshold')::float8
                  + current_setting('autovacuum_vacuum_scale_factor')::float8 * rows
           OR (current_setting('autovacuum_vacuum_insert_threshold')::float8 >= 0
               AND inserted > current_setting('autovacuum_vacuum_insert_threshold')::float8
                              + current_setting('autovacuum_vacuum_insert_scale_factor')::float8 * rows)
               AS vacuum,
           changed > current_setting('autovacuum_analyze_threshold')::float8
                     + current_setting('autovacuum_analyze_scale_factor')::float8 * rows
               AS to_analyze
    FROM t
)
SELECT "table", inserted, dead, vacuum
FROM judged
WHERE vacuum OR to_analyze
ORDER BY inserted + dead DESC, "table"
