-- The enrollment projection used to keep a (term, stage) row whose count fell to zero, which a
-- rebuild never writes (so `heyboss projections verify enrollment` failed). It now deletes such a
-- row; this removes the ones left by earlier versions.
DELETE FROM enrollment_stage_counts WHERE students = 0;
