// @generated automatically by Diesel CLI.

diesel::table! {
    command_outcomes (idempotency_key) {
        idempotency_key -> Text,
        outcome -> Nullable<Jsonb>,
        recorded_at -> Timestamptz,
        fingerprint -> Nullable<Text>,
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
    subscriber_checkpoints (name) {
        name -> Text,
        last_transaction_id -> Int8,
        last_position -> Int8,
        events_handled -> Int8,
        updated_at -> Timestamptz,
        floor_position -> Int8,
        pending_xid -> Int8,
        pending_position -> Int8,
    }
}

diesel::table! {
    streams (stream_type, stream_id) {
        stream_type -> Text,
        stream_id -> Text,
        version -> Int8,
        first_position -> Int8,
    }
}

diesel::allow_tables_to_appear_in_same_query!(
    command_outcomes,
    events,
    streams,
    subscriber_checkpoints,
);
