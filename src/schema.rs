// @generated automatically by Diesel CLI.

pub mod sql_types {
    #[derive(diesel::query_builder::QueryId, Clone, diesel::sql_types::SqlType)]
    #[diesel(postgres_type(name = "varbit", schema = "pg_catalog"))]
    pub struct Varbit;
}

diesel::table! {
    credentials (user_id) {
        user_id -> Uuid,
        password_hash -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    enrollment_stage_counts (term, stage) {
        term -> Text,
        stage -> Text,
        students -> Int8,
    }
}

diesel::table! {
    enrollment_students (student_id) {
        student_id -> Uuid,
        term -> Text,
        step -> Int2,
        stage -> Text,
        decision -> Nullable<Text>,
        transcript -> Bool,
        identification -> Bool,
        deposit_cents -> Nullable<Int8>,
        courses -> Array<Text>,
        withdrawn -> Bool,
        version -> Int8,
        started_at -> Timestamptz,
        last_event_at -> Timestamptz,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Int8,
        username -> Text,
        client_ip -> Text,
        failed_at -> Timestamptz,
        attempt -> Text,
    }
}

diesel::table! {
    notification_emails (notification_id) {
        notification_id -> Int8,
        recipient -> Text,
        subject -> Text,
        body -> Text,
        attempts -> Int4,
        next_attempt_at -> Timestamptz,
        last_error -> Text,
        sent_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    notifications (id) {
        id -> Int8,
        user_id -> Uuid,
        position -> Int8,
        message -> Text,
        link -> Text,
        created_at -> Timestamptz,
        read_at -> Nullable<Timestamptz>,
        action -> Text,
    }
}

diesel::table! {
    projection_runs (name) {
        name -> Text,
        kind -> Text,
        state -> Text,
        events_total -> Int8,
        events_done -> Int8,
        differences -> Nullable<Int8>,
        message -> Text,
        started_at -> Timestamptz,
        updated_at -> Timestamptz,
        finished_at -> Nullable<Timestamptz>,
        phase -> Text,
    }
}

diesel::table! {
    scholarship_applications (id) {
        id -> Uuid,
        fund_id -> Uuid,
        student_id -> Uuid,
        statement -> Text,
        submitted_at -> Timestamptz,
        outcome -> Text,
        decision_reason -> Nullable<Text>,
        decided_at -> Nullable<Timestamptz>,
        award_cents -> Nullable<Int8>,
        award_status -> Nullable<Text>,
        review_count -> Int4,
        avg_score -> Nullable<Float8>,
    }
}

diesel::table! {
    scholarship_assignments (application_id, reviewer_id) {
        application_id -> Uuid,
        reviewer_id -> Uuid,
        assigned_at -> Timestamptz,
    }
}

diesel::table! {
    scholarship_decisions (position) {
        position -> Int8,
        fund_id -> Uuid,
        application_id -> Uuid,
        student_id -> Uuid,
        kind -> Text,
        amount_cents -> Nullable<Int8>,
        reason -> Text,
        actor -> Text,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    scholarship_enrolled_students (student_id) {
        student_id -> Uuid,
        enrolled -> Bool,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    scholarship_funds (id) {
        id -> Uuid,
        name -> Text,
        term -> Text,
        budget_cents -> Int8,
        awarded_cents -> Int8,
        criteria -> Text,
        opens_on -> Date,
        closes_on -> Date,
        is_open -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    scholarship_reviews (application_id, reviewer_id) {
        application_id -> Uuid,
        reviewer_id -> Uuid,
        scores -> Array<Int4>,
        score -> Float8,
        comment -> Text,
        revision -> Int4,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    sensor_event_ids (event_id) {
        event_id -> Uuid,
    }
}

diesel::table! {
    sensor_tokens (token_digest) {
        token_digest -> Text,
        sensor_id -> Uuid,
    }
}

diesel::table! {
    sensors (id) {
        id -> Uuid,
        name -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    sessions (id_hash) {
        id_hash -> Text,
        user_id -> Uuid,
        csrf_token -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    signup_attempts (id) {
        id -> Int8,
        client_ip -> Text,
        attempted_at -> Timestamptz,
    }
}

diesel::table! {
    threat_clearances (user_id, group_name) {
        user_id -> Uuid,
        group_name -> Text,
        granted_at -> Timestamptz,
    }
}

diesel::table! {
    threat_files (file_id) {
        file_id -> Text,
        session_id -> Text,
        md5 -> Text,
        filename -> Text,
        file_type -> Text,
        size_bytes -> Int8,
    }
}

diesel::table! {
    threat_hash_names (md5, signature) {
        md5 -> Text,
        signature -> Text,
        filename -> Text,
        file_type -> Text,
        first_seen -> Timestamptz,
        last_seen -> Timestamptz,
    }
}

diesel::table! {
    threat_hits (file_id, integration, signature) {
        file_id -> Text,
        integration -> Text,
        signature -> Text,
        score -> Int4,
        session_id -> Text,
        md5 -> Text,
        filename -> Text,
        file_type -> Text,
        protocol -> Text,
        source_ip -> Text,
        destination_ip -> Text,
        start_time -> Timestamptz,
        scored_at -> Timestamptz,
    }
}

diesel::table! {
    threat_pair_signature_days (source_ip, destination_ip, day, signature) {
        source_ip -> Text,
        destination_ip -> Text,
        day -> Timestamptz,
        signature -> Text,
    }
}

diesel::table! {
    threat_pair_signature_times (source_ip, destination_ip, signature) {
        source_ip -> Text,
        destination_ip -> Text,
        signature -> Text,
        first_seen -> Timestamptz,
        last_seen -> Timestamptz,
    }
}

diesel::table! {
    threat_report_buckets (report, view_id, grain, bucket, key) {
        report -> Text,
        view_id -> Text,
        grain -> Text,
        bucket -> Timestamptz,
        key -> Text,
        hits -> Int4,
        max_score -> Int4,
        last_seen -> Timestamptz,
    }
}

diesel::table! {
    use diesel::sql_types::*;
    use super::sql_types::Varbit;

    threat_report_key_hours (report, view_id, key) {
        report -> Text,
        view_id -> Text,
        key -> Text,
        first_hour -> Int4,
        hours -> Varbit,
    }
}

diesel::table! {
    threat_report_rows (report, signature, key) {
        report -> Text,
        key -> Text,
        signature -> Text,
        hits -> Int4,
        max_score -> Int4,
        last_seen -> Timestamptz,
    }
}

diesel::table! {
    threat_report_signature_hours (report, key, signature, bucket) {
        report -> Text,
        key -> Text,
        signature -> Text,
        bucket -> Timestamptz,
    }
}

diesel::table! {
    threat_report_views (report, view_id, key) {
        report -> Text,
        view_id -> Text,
        key -> Text,
        hits -> Int4,
        max_score -> Int4,
        last_seen -> Timestamptz,
    }
}

diesel::table! {
    threat_score_changes (position) {
        position -> Int8,
        file_id -> Text,
        integration -> Text,
        signature -> Text,
        old_score -> Nullable<Int4>,
        new_score -> Int4,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    threat_sessions (session_id) {
        session_id -> Text,
        start_time -> Timestamptz,
        protocol -> Text,
        source_ip -> Text,
        destination_ip -> Text,
        source_port -> Int4,
        destination_port -> Int4,
        latest_score -> Nullable<Int4>,
        threat_contributor -> Nullable<Text>,
        file_count -> Int4,
    }
}

diesel::table! {
    threat_signatures (name) {
        name -> Text,
        rule_text -> Text,
        group_name -> Text,
        default_score -> Int4,
        retired -> Bool,
        restricted -> Bool,
        version -> Int8,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    threat_triage (position) {
        position -> Int8,
        subject_kind -> Text,
        subject -> Text,
        status -> Text,
        note -> Text,
        signatures -> Array<Text>,
        actor_id -> Nullable<Uuid>,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    threat_views (view_id) {
        view_id -> Text,
        groups -> Array<Text>,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        username -> Text,
        display_name -> Text,
        email -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        time_zone -> Nullable<Text>,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    credentials,
    enrollment_stage_counts,
    enrollment_students,
    login_failures,
    notification_emails,
    notifications,
    projection_runs,
    scholarship_applications,
    scholarship_assignments,
    scholarship_decisions,
    scholarship_enrolled_students,
    scholarship_funds,
    scholarship_reviews,
    signup_attempts,
    sensor_event_ids,
    sensor_tokens,
    sensors,
    sessions,
    threat_clearances,
    threat_files,
    threat_hash_names,
    threat_hits,
    threat_pair_signature_days,
    threat_pair_signature_times,
    threat_report_buckets,
    threat_report_key_hours,
    threat_report_rows,
    threat_report_signature_hours,
    threat_report_views,
    threat_score_changes,
    threat_sessions,
    threat_signatures,
    threat_triage,
    threat_views,
    users,
);
