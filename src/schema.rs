// @generated automatically by Diesel CLI.

diesel::table! {
    command_outcomes (idempotency_key) {
        idempotency_key -> Text,
        outcome -> Nullable<Jsonb>,
        recorded_at -> Timestamptz,
    }
}

diesel::table! {
    credentials (user_id) {
        user_id -> Uuid,
        password_hash -> Text,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    events (position) {
        position -> Int8,
        stream_type -> Text,
        stream_id -> Text,
        stream_version -> Int8,
        event_type -> Text,
        schema_version -> Int4,
        payload -> Jsonb,
        metadata -> Jsonb,
        recorded_at -> Timestamptz,
        transaction_id -> Int8,
    }
}

diesel::table! {
    login_failures (id) {
        id -> Int8,
        username -> Text,
        client_ip -> Text,
        failed_at -> Timestamptz,
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
    users (id) {
        id -> Uuid,
        username -> Text,
        display_name -> Text,
        email -> Text,
        role -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
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
    sensor_tokens (token_digest) {
        token_digest -> Text,
        sensor_id -> Uuid,
    }
}

diesel::table! {
    sensor_event_ids (event_id) {
        event_id -> Uuid,
        position -> Int8,
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
    threat_clearances (user_id, group_name) {
        user_id -> Uuid,
        group_name -> Text,
        granted_at -> Timestamptz,
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
    threat_report_groups (report, group_name, key) {
        report -> Text,
        group_name -> Text,
        key -> Text,
        hits -> Int4,
        max_score -> Int4,
        last_seen -> Timestamptz,
    }
}

diesel::table! {
    threat_views (view_id) {
        view_id -> Text,
        groups -> Array<Text>,
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

diesel::allow_tables_to_appear_in_same_query!(
    command_outcomes,
    credentials,
    events,
    login_failures,
    sessions,
    users,
    sensors,
    sensor_tokens,
    sensor_event_ids,
    threat_signatures,
    threat_clearances,
    threat_sessions,
    threat_files,
    threat_hits,
    threat_score_changes,
    threat_report_rows,
    threat_report_groups,
    threat_views,
    threat_report_views,
);
