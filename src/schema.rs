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

diesel::allow_tables_to_appear_in_same_query!(
    command_outcomes,
    credentials,
    enrollment_stage_counts,
    enrollment_students,
    events,
    login_failures,
    sessions,
    users,
);
