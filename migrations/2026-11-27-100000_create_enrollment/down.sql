DROP TABLE enrollment_stage_counts;
DROP TABLE enrollment_students;
