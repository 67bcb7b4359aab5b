DROP TABLE signup_attempts;
ALTER TABLE login_failures DROP COLUMN attempt;
