DROP TABLE scholarship_enrolled_students;
DROP TABLE scholarship_decisions;
DROP TABLE scholarship_reviews;
DROP TABLE scholarship_assignments;
DROP TABLE scholarship_applications;
DROP TABLE scholarship_funds;
