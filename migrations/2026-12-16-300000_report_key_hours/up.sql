-- The hours in which each key of each report has a visible hit, per clearance set: one bit string
-- a key, bit i for the UTC hour `first_hour + i` (hours counted from 1970-01-01 00:00 UTC), from
-- the key's first hour with a hit to its last (both bits set). Kept by the `threat_hits`
-- projection beside `threat_report_buckets`, whose hour rows it restates one row a key: a
-- bounded range's row count (`src/threats/sql/keys_in_range_count.sql`) tests one row a key for a
-- bit in the range instead of gathering the distinct keys of the range's day and hour buckets
-- (a hash `custom` range at 10,000,000 hits: 85-99 ms that way).
CREATE TABLE threat_report_key_hours (
    report text NOT NULL,
    view_id text NOT NULL,
    key text NOT NULL,
    first_hour int4 NOT NULL,
    hours varbit NOT NULL,
    PRIMARY KEY (report, view_id, key)
);

-- The hour string of a set of hours (as `threat_report_key_hours.hours`, from the least of them);
-- empty when they span more than 65,536 hours (7.5 years: sensors' times reach from year 1 to
-- 9999, and a string as long would be 11 MB), a wide key whose hours the readers take from its
-- buckets instead. A loop, so that a rebuild groups each key's hours by hashing: 1.2 s for
-- 950,000 hour rows, against 3.8 s ordering them all for a window and `string_agg`.
CREATE FUNCTION threat_hours_of(hours int4[]) RETURNS varbit
LANGUAGE plpgsql IMMUTABLE STRICT PARALLEL SAFE AS $$
DECLARE
    f int4 := hours[1];
    l int4 := hours[1];
    h int4;
    bits varbit;
BEGIN
    FOREACH h IN ARRAY hours LOOP
        f := least(f, h);
        l := greatest(l, h);
    END LOOP;
    IF l - f + 1 > 65536 THEN
        RETURN B'';
    END IF;
    bits := repeat('0', l - f + 1)::varbit;
    FOREACH h IN ARRAY hours LOOP
        bits := set_bit(bits, h - f, 1);
    END LOOP;
    RETURN bits;
END $$;

-- The union of two hour strings starting at the hours f1 and f2, starting at least(f1, f2);
-- empty when either is (a wide key) or the union would span more than 65,536 hours.
CREATE FUNCTION threat_hours_union(f1 int4, b1 varbit, f2 int4, b2 varbit) RETURNS varbit
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN CASE
    WHEN length(b1) = 0 OR length(b2) = 0
      OR greatest(f1 + length(b1), f2 + length(b2)) - least(f1, f2) > 65536 THEN B''
    ELSE (repeat('0', f1 - least(f1, f2))::varbit || b1
          || repeat('0', greatest(f1 + length(b1), f2 + length(b2)) - f1 - length(b1))::varbit)
       | (repeat('0', f2 - least(f1, f2))::varbit || b2
          || repeat('0', greatest(f1 + length(b1), f2 + length(b2)) - f2 - length(b2))::varbit)
END;

-- Whether the hour string `hours` starting at `first_hour` has a bit in the hours [h_from, h_to)
-- (never a wide key's empty string). The string is read once: each use of a column value in an
-- expression copies it (17 ms against 19 for 50,000 keys when `length(hours)` bounded the slice).
CREATE FUNCTION threat_hours_meet(first_hour int4, hours varbit, h_from int4, h_to int4) RETURNS boolean
LANGUAGE sql IMMUTABLE PARALLEL SAFE
RETURN bit_count(substring(hours FROM greatest(h_from - first_hour, 0) + 1
                                 FOR greatest(h_to - greatest(h_from, first_hour), 0))) > 0;

-- The stores' keys as their hour buckets have them (as `key_hours_rows` in
-- `src/threats/buckets.rs` writes them: the projection's verify compares a rebuild).
INSERT INTO threat_report_key_hours (report, view_id, key, first_hour, hours)
SELECT k.report, k.view_id, k.key, min(k.h), threat_hours_of(array_agg(k.h))
FROM (SELECT report, view_id, key, (date_part('epoch', bucket) / 3600)::int4 AS h
      FROM threat_report_buckets WHERE grain = 'hour') k
GROUP BY 1, 2, 3;
