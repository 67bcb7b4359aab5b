//! The sensor API (DESIGN section 6): `POST /api/v1/events` and its OpenAPI description, under
//! the `/api/v1` scope of `routes::routes` (the paths are a contract).
//! Every answer is JSON; bad input is a 4xx with a message, never a 5xx.

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpMessage, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

use super::ingest::{self, IngestError};
use crate::web::{AppError, AppState, RequestId};

/// Largest accepted body; larger ones are refused with 413 before they are parsed.
pub const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

fn error(status: StatusCode, message: impl Into<String>) -> HttpResponse {
    HttpResponse::build(status).json(json!({ "error": message.into() }))
}

/// The token of an `Authorization: Bearer TOKEN` header (the scheme is case-insensitive, RFC 9110).
fn bearer(req: &HttpRequest) -> Option<String> {
    let value = req.headers().get("Authorization")?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = token.trim();
    (!token.is_empty() && token.len() <= 256).then(|| token.to_owned())
}

#[tracing::instrument(skip_all)]
#[post("/events")]
pub async fn post_events(
    req: HttpRequest,
    state: web::Data<AppState>,
    mut payload: web::Payload,
) -> Result<HttpResponse, AppError> {
    let Some(token) = bearer(&req) else {
        return Ok(error(
            StatusCode::UNAUTHORIZED,
            "send the sensor's token as `Authorization: Bearer TOKEN`",
        ));
    };
    if req
        .headers()
        .get("Content-Length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES)
    {
        return Ok(too_large());
    }
    let sensor = state
        .query(move |conn| ingest::authenticate(conn, &token))
        .await?;
    let Some(sensor_id) = sensor else {
        return Ok(error(
            StatusCode::UNAUTHORIZED,
            "unknown or revoked sensor token",
        ));
    };
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let Ok(chunk) = chunk else {
            return Ok(error(StatusCode::BAD_REQUEST, "the body could not be read"));
        };
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Ok(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let parsed = match ingest::parse_body(&body) {
        Err(message) => return Ok(error(StatusCode::BAD_REQUEST, message)),
        Ok(parsed) => parsed,
    };
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone());
    let (store, pool) = (state.store.clone(), state.pool.clone());
    let count = parsed.0.len() + parsed.1.len();
    // A connection is taken only when the batch is written: a batch that another batch's
    // group writes (`ingest::ingest_on`) waits for its answer without one.
    let outcome = web::block(move || {
        let meta = ingest::sensor_metadata(sensor_id, request_id);
        let connect = || pool.get().map_err(|e| IngestError::NoConnection(e.into()));
        ingest::ingest_on(connect, &store, meta, parsed)
    })
    .await
    .unwrap_or(Err(IngestError::NoConnection(
        crate::db::NoConnection::Cancelled,
    )));
    match outcome {
        Ok(accepted) => {
            tracing::info!(%sensor_id, count, accepted = accepted.accepted, duplicates = accepted.duplicates, "batch ingested");
            Ok(HttpResponse::Ok().json(accepted))
        }
        Err(IngestError::Invalid(errors)) => Ok(invalid(errors)),
        Err(IngestError::Busy) => Ok(error(
            StatusCode::CONFLICT,
            "concurrent batches for the same sessions kept colliding; retry the batch",
        )),
        Err(IngestError::Database(e)) => Err(e.into()),
        Err(IngestError::NoConnection(n)) => Err(n.into()),
    }
}

fn too_large() -> HttpResponse {
    error(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!(
            "the body is larger than {} MiB: send smaller batches",
            MAX_BODY_BYTES / (1024 * 1024)
        ),
    )
}

fn invalid(errors: Vec<ingest::ItemError>) -> HttpResponse {
    HttpResponse::UnprocessableEntity().json(json!({ "errors": errors }))
}

#[get("/openapi.json")]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(openapi_document())
}

/// The OpenAPI 3 description of the sensor API: what it states is what `ingest::parse_body`
/// checks (the patterns are the parser's own), so a body valid by this document is refused only
/// for what a schema cannot know (references to sessions and files, in the store or earlier in
/// the batch). `tests/threats_api_openapi.rs` and `scripts/schemathesis.sh` hold it to that.
pub fn openapi_document() -> serde_json::Value {
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "heyboss sensor API",
            "version": "1.0.0",
            "description": "Sensors post batches of threat events. A batch is all or nothing; a re-posted event id is counted as a duplicate and skipped. The body is read as JSON whatever its Content-Type; unknown extra fields are ignored. Text is taken as sent, never trimmed: no control characters, and no whitespace at either end. Every refusal is a 4xx with a JSON body naming what to fix."
        },
        "paths": {
            "/api/v1/events": {
                "post": {
                    "summary": "Post a batch of sensor events",
                    "operationId": "postEvents",
                    "security": [{ "bearer": [] }],
                    "requestBody": {
                        "required": true,
                        "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Batch" } } }
                    },
                    "responses": responses()
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": { "200": { "description": "OpenAPI 3 document", "content": { "application/json": { "schema": { "type": "object" } } } } }
                }
            }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": schemas()
        }
    })
}

fn responses() -> serde_json::Value {
    let err = |d: &str| {
        json!({
            "description": d,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        })
    };
    let count = json!({ "type": "integer", "minimum": 0 });
    json!({
        "200": {
            "description": "The batch was stored (or was entirely duplicates).",
            "content": { "application/json": { "schema": {
                "type": "object", "required": ["accepted", "duplicates"], "additionalProperties": false,
                "properties": { "accepted": count, "duplicates": count }
            } } }
        },
        "400": err(&format!("The body is not JSON (or not UTF-8), not an object with an `events` array, has more than {} events, or could not be read.", ingest::MAX_BATCH)),
        "401": err("Missing, unknown or revoked token (`Authorization: Bearer TOKEN`, the scheme in any case)."),
        "409": err("Concurrent batches for the same sessions kept colliding; retry the batch."),
        "413": err(&format!("The body is larger than {} MiB.", MAX_BODY_BYTES / (1024 * 1024))),
        "503": err("The database is unavailable for a moment (restarting, failing over); nothing was stored. Retry after the `Retry-After` seconds."),
        "422": {
            "description": "Some events are invalid; nothing was stored, and every failing event is listed by its index in the batch, with its id and a message. An event is invalid when it breaks this document's schema (a field missing, of the wrong type, out of range or not matching its pattern; an unknown type), and also, for reasons that depend on what was stored before and which no schema can express, when it refers to a session or file that neither the store nor an earlier event of the batch discovered (`unknown session`, `unknown file`), discovers again a session or file already discovered, names a file with another session than its own, scores a file/integration/signature again instead of rescoring it, or rescores one never scored. A body valid by this schema can therefore still be refused with 422 for those reasons only.",
            "content": { "application/json": { "schema": {
                "type": "object", "required": ["errors"], "additionalProperties": false,
                "properties": { "errors": { "type": "array", "minItems": 1, "items": {
                    "type": "object", "required": ["index", "id", "message"], "additionalProperties": false,
                    "properties": {
                        "index": { "type": "integer", "minimum": 0 },
                        "id": { "type": "string", "maxLength": 100 },
                        "message": { "type": "string", "minLength": 1 }
                    }
                } } }
            } } }
        }
    })
}

/// The request body: a batch of events, each one of the five sensor event types.
fn schemas() -> serde_json::Value {
    let text = |max: usize| json!({ "type": "string", "minLength": 1, "maxLength": max, "pattern": ingest::TEXT_PATTERN });
    let score = json!({ "type": "integer", "minimum": 0, "maximum": 100 });
    let port = json!({ "type": "integer", "minimum": 0, "maximum": 65535 });
    let ip = json!({ "type": "string", "description": "An IPv4 or IPv6 address, without brackets, zone or spaces",
        "maxLength": 45, "pattern": "^[0-9A-Fa-f:.]+$",
        "anyOf": [{ "format": "ipv4" }, { "format": "ipv6" }] });
    let event = |name: &str, data: serde_json::Value, required: &[&str]| {
        json!({
            "type": "object",
            "required": ["id", "type", "data"],
            "properties": {
                "id": { "type": "string", "format": "uuid", "pattern": ingest::UUID_PATTERN,
                        "description": "A UUID in its hyphenated form (8-4-4-4-12 hexadecimal digits); re-posting an id is a duplicate" },
                "type": { "type": "string", "enum": [name] },
                "data": { "type": "object", "required": required, "properties": data }
            }
        })
    };
    json!({
        "Error": {
            "type": "object", "required": ["error"], "additionalProperties": false,
            "properties": { "error": { "type": "string", "minLength": 1 } }
        },
        "Batch": {
            "type": "object",
            "required": ["events"],
            "properties": { "events": {
                "type": "array", "maxItems": ingest::MAX_BATCH,
                "items": { "oneOf": [
                    { "$ref": "#/components/schemas/SessionDiscovered" },
                    { "$ref": "#/components/schemas/SessionScored" },
                    { "$ref": "#/components/schemas/FileDiscovered" },
                    { "$ref": "#/components/schemas/FileScored" },
                    { "$ref": "#/components/schemas/FileRescored" }
                ] }
            } }
        },
        "SessionDiscovered": event("SessionDiscovered", json!({
            "session_id": text(200),
            "start_time": { "type": "string", "format": "date-time", "pattern": ingest::START_TIME_PATTERN,
                "description": "RFC 3339 with a year from 0001 to 9999 (in the years 0001 and 9999 in UTC, `Z`, and not a leap second), kept to the microsecond" },
            "protocol": text(32),
            "source_ip": ip, "destination_ip": ip,
            "source_port": port, "destination_port": port
        }), &["session_id", "start_time", "protocol", "source_ip", "destination_ip", "source_port", "destination_port"]),
        "SessionScored": event("SessionScored", json!({
            "session_id": text(200), "threat_contributor": text(200), "score": score
        }), &["session_id", "threat_contributor", "score"]),
        "FileDiscovered": event("FileDiscovered", json!({
            "file_id": text(200), "session_id": text(200),
            "md5": { "type": "string", "minLength": 32, "maxLength": 32, "pattern": ingest::MD5_PATTERN },
            "filename": text(255),
            "file_type": text(64),
            "size_bytes": { "type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX }
        }), &["file_id", "session_id", "md5", "filename", "file_type", "size_bytes"]),
        "FileScored": event("FileScored", json!({
            "file_id": text(200), "session_id": text(200), "integration": text(100),
            "score": score, "signature": text(100), "engine_version": text(64)
        }), &["file_id", "session_id", "integration", "score", "signature"]),
        "FileRescored": event("FileRescored", json!({
            "file_id": text(200), "session_id": text(200), "integration": text(100),
            "new_score": score, "signature": text(100)
        }), &["file_id", "session_id", "integration", "new_score", "signature"])
    })
}
