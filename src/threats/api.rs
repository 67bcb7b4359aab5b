//! The sensor API (DESIGN section 6): `POST /api/v1/events` and its OpenAPI description.
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
#[post("/api/v1/events")]
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
        .db(move |conn| Ok(ingest::authenticate(conn, &token)?))
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
    let store = state.store.clone();
    let count = parsed.0.len() + parsed.1.len();
    let outcome = state
        .db(move |conn| {
            let meta = ingest::sensor_metadata(sensor_id, request_id);
            Ok(ingest::ingest(conn, &store, &meta, &parsed))
        })
        .await?;
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

#[get("/api/v1/openapi.json")]
pub async fn openapi() -> HttpResponse {
    HttpResponse::Ok().json(openapi_document())
}

/// The OpenAPI 3 description of the sensor API.
pub fn openapi_document() -> serde_json::Value {
    let s = |t: &str| json!({ "type": t });
    let score = json!({ "type": "integer", "minimum": 0, "maximum": 100 });
    let port = json!({ "type": "integer", "minimum": 0, "maximum": 65535 });
    let text = json!({ "type": "string", "minLength": 1, "maxLength": 200 });
    let ip = json!({ "type": "string", "description": "An IPv4 or IPv6 address",
        "anyOf": [{ "format": "ipv4" }, { "format": "ipv6" }] });
    let event = |name: &str, data: serde_json::Value, required: &[&str]| {
        json!({
            "type": "object",
            "required": ["id", "type", "data"],
            "properties": {
                "id": { "type": "string", "format": "uuid" },
                "type": { "type": "string", "enum": [name] },
                "data": { "type": "object", "required": required, "properties": data }
            }
        })
    };
    let error_body = json!({
        "type": "object", "required": ["error"], "properties": { "error": s("string") }
    });
    let err = |d: &str| {
        json!({
            "description": d,
            "content": { "application/json": { "schema": { "$ref": "#/components/schemas/Error" } } }
        })
    };
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "heyboss sensor API",
            "version": "1.0.0",
            "description": "Sensors post batches of threat events. A batch is all or nothing; a re-posted event id is counted as a duplicate and skipped. The body is read as JSON whatever its Content-Type. Every refusal is a 4xx with a JSON body naming what to fix."
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
                    "responses": {
                        "200": {
                            "description": "The batch was stored (or was entirely duplicates).",
                            "content": { "application/json": { "schema": {
                                "type": "object", "required": ["accepted", "duplicates"],
                                "properties": { "accepted": s("integer"), "duplicates": s("integer") }
                            } } }
                        },
                        "400": err("The body is not JSON (or not UTF-8), not an object with an events array, or has more than 5000 events."),
                        "401": err("Missing, unknown or revoked token (`Authorization: Bearer TOKEN`)."),
                        "409": err("Concurrent batches for the same sessions collided; retry."),
                        "413": err("The body is larger than 4 MiB."),
                        "422": {
                            "description": "Some events failed validation (a field of the wrong type or out of range, a missing field, an unknown type, a reference to an unknown session or file, rescoring an unscored pair); nothing was stored. Every failing event is listed by its index in the batch.",
                            "content": { "application/json": { "schema": {
                                "type": "object", "required": ["errors"],
                                "properties": { "errors": { "type": "array", "items": {
                                    "type": "object", "required": ["index", "id", "message"],
                                    "properties": { "index": s("integer"), "id": s("string"), "message": s("string") }
                                } } }
                            } } }
                        }
                    }
                }
            },
            "/api/v1/openapi.json": {
                "get": {
                    "summary": "This document",
                    "operationId": "openapi",
                    "responses": { "200": { "description": "OpenAPI 3 document", "content": { "application/json": { "schema": s("object") } } } }
                }
            }
        },
        "components": {
            "securitySchemes": { "bearer": { "type": "http", "scheme": "bearer" } },
            "schemas": {
                "Error": error_body,
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
                    "session_id": text,
                    "start_time": { "type": "string", "format": "date-time", "description": "RFC 3339, years 0001 to 9999, kept to the microsecond" },
                    "protocol": { "type": "string", "minLength": 1, "maxLength": 32 },
                    "source_ip": ip, "destination_ip": ip,
                    "source_port": port, "destination_port": port
                }), &["session_id", "start_time", "protocol", "source_ip", "destination_ip", "source_port", "destination_port"]),
                "SessionScored": event("SessionScored", json!({
                    "session_id": text, "threat_contributor": text, "score": score
                }), &["session_id", "threat_contributor", "score"]),
                "FileDiscovered": event("FileDiscovered", json!({
                    "file_id": text, "session_id": text,
                    "md5": { "type": "string", "pattern": "^[0-9a-fA-F]{32}$" },
                    "filename": { "type": "string", "minLength": 1, "maxLength": 255 },
                    "file_type": { "type": "string", "minLength": 1, "maxLength": 64 },
                    "size_bytes": { "type": "integer", "format": "int64", "minimum": 0, "maximum": i64::MAX }
                }), &["file_id", "session_id", "md5", "filename", "file_type", "size_bytes"]),
                "FileScored": event("FileScored", json!({
                    "file_id": text, "session_id": text, "integration": { "type": "string", "minLength": 1, "maxLength": 100 },
                    "score": score, "signature": { "type": "string", "minLength": 1, "maxLength": 100 }
                }), &["file_id", "session_id", "integration", "score", "signature"]),
                "FileRescored": event("FileRescored", json!({
                    "file_id": text, "session_id": text, "integration": { "type": "string", "minLength": 1, "maxLength": 100 },
                    "new_score": score, "signature": { "type": "string", "minLength": 1, "maxLength": 100 }
                }), &["file_id", "session_id", "integration", "new_score", "signature"])
            }
        }
    })
}
