-- The viewer behind a session cookie: the statement every signed-in request runs first. Pooled
-- connections plan each statement for its own parameters (`plan_cache_mode = force_custom_plan`,
-- crates/es/src/db.rs), and planning this lookup as one join cost more than running it. In this
-- function it is planned once per connection and the plans are kept (plpgsql keeps them;
-- `force_generic_plan` makes them for any parameters). Why a kept plan cannot go stale here:
--
-- * each statement reads one table by an equality on its primary key (`sessions.id_hash`,
--   `users.id`), so no parameter value makes another plan better: the plan for one session is the
--   plan for all;
-- * what a kept plan can miss is the tables' growth: made from statistics taken while a table had
--   a row or two (autovacuum off, nothing analyzes), the cheapest plan was a sequential scan, kept
--   as the table grew (the failure seen with `threat_files`). `enable_seqscan = off` leaves only
--   the primary key: no other index of these tables can serve these statements (none holds all the
--   columns read, none is partial, no order is asked for), so the plan is a probe of the primary
--   key at any size;
-- * two statements, not one join: as a join, a plan made from such statistics started from
--   `users` and found the session through `sessions_user_id_idx`, reading every session of every
--   active user (10 ms with 20,000 sessions; seen while writing this);
-- * PostgreSQL makes the plans again when the tables' definitions or statistics change.
--
-- STABLE, not IMMUTABLE: it reads tables, so the planner never evaluates it ahead of time.
CREATE FUNCTION request_viewer(p_digest text, p_now timestamptz)
RETURNS TABLE (
    viewer_id uuid,
    viewer_username text,
    viewer_display_name text,
    viewer_role text,
    viewer_csrf_token text,
    viewer_time_zone text
)
LANGUAGE plpgsql STABLE
SET plan_cache_mode = force_generic_plan
SET enable_seqscan = off
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
    RETURN QUERY
    SELECT u.id, u.username, u.display_name, u.role, v_csrf, u.time_zone
    FROM users u
    WHERE u.id = v_user AND u.active;
END
$$;
