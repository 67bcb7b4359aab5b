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
    subscriber_checkpoints (name) {
        name -> Text,
        last_transaction_id -> Int8,
        last_position -> Int8,
        events_handled -> Int8,
        updated_at -> Timestamptz,
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
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    command_outcomes,
    credentials,
    events,
    login_failures,
    notifications,
    projection_runs,
    sessions,
    subscriber_checkpoints,
    users,
);
