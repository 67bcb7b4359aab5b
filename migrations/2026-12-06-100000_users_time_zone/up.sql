-- The time zone a user chose on /account (an IANA name); NULL: the campus default.
ALTER TABLE users ADD COLUMN time_zone text;
