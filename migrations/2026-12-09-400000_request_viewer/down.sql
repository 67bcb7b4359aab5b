DROP FUNCTION request_viewer(text, timestamptz);
