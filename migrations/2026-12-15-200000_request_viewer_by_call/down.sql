DROP PROCEDURE request_viewer_proc(text, timestamptz, uuid, text, text, text, text, text);
