-- The viewer behind a session cookie, as a procedure run by CALL (src/accounts/sessions.rs): the
-- statement every signed-in request runs first. `SELECT * FROM request_viewer(...)` was planned at
-- every request (the pool plans each statement for its parameters), some 20 µs of the about 0.4
-- ms of database time of a page; the server does not plan a CALL. The two statements inside, and
-- why their kept plans cannot go stale, are those of request_viewer (2026-12-09-400000): a probe
-- of each table's primary key at any size. No session, an expired one or an inactive user: every
-- OUT value NULL. The function stays for binaries from before this migration.
CREATE PROCEDURE request_viewer_proc(p_digest text, p_now timestamptz,
                                     INOUT viewer_id uuid, INOUT viewer_username text,
                                     INOUT viewer_display_name text, INOUT viewer_role text,
                                     INOUT viewer_csrf_token text, INOUT viewer_time_zone text)
LANGUAGE plpgsql
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
SET jit = off
AS $$
DECLARE
    v_user uuid;
    v_csrf text;
BEGIN
    SELECT s.user_id, s.csrf_token INTO v_user, v_csrf
    FROM sessions s
    WHERE s.id_hash = p_digest AND s.expires_at > p_now;
    IF NOT FOUND THEN
        RETURN;
    END IF;
    SELECT u.id, u.username, u.display_name, u.role, v_csrf, u.time_zone
    INTO viewer_id, viewer_username, viewer_display_name, viewer_role, viewer_csrf_token,
         viewer_time_zone
    FROM users u
    WHERE u.id = v_user AND u.active;
END
$$;
