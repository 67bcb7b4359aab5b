//! What every request must be before any handler sees it: text that PostgreSQL can store. A NUL
//! byte or bytes that are not UTF-8, in the path, the query or a form, are refused here once
//! (400), instead of reaching a query and failing there as a 500. (JSON bodies are the sensor
//! API's: serde refuses bytes that are not UTF-8 with a 400, and a `\u0000` in a field is an
//! item error, 422, like any other control character: `threats::ingest`.) Also the fingerprint
//! of a form post, which binds an idempotency key to the command it was first used for.

use percent_encoding::percent_decode;
use sha2::{Digest, Sha256};

/// Why a request was refused at the edge: the part of the request, for the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unstorable {
    Path,
    Query,
    Form,
}

impl Unstorable {
    pub fn message(self) -> &'static str {
        match self {
            Unstorable::Path => {
                "The address could not be used: it contains a NUL byte or text that is not valid UTF-8."
            }
            Unstorable::Query => {
                "The search or filter could not be used: it contains a NUL byte or text that is not valid UTF-8."
            }
            Unstorable::Form => {
                "The form could not be used: it contains a NUL byte or text that is not valid UTF-8."
            }
        }
    }
}

/// Whether percent-encoded text decodes to UTF-8 without NUL. In a form or query `+` is a
/// space, which changes neither.
fn decodes_to_storable_text(encoded: &[u8]) -> bool {
    let decoded: Vec<u8> = percent_decode(encoded).collect();
    !decoded.contains(&0) && std::str::from_utf8(&decoded).is_ok()
}

/// The path as sent (still percent-encoded).
pub fn check_path(raw_path: &str) -> Result<(), Unstorable> {
    decodes_to_storable_text(raw_path.as_bytes())
        .then_some(())
        .ok_or(Unstorable::Path)
}

/// A query string or a urlencoded form body: every name and value.
pub fn check_urlencoded(encoded: &[u8], part: Unstorable) -> Result<(), Unstorable> {
    encoded
        .split(|&b| b == b'&')
        .all(decodes_to_storable_text)
        .then_some(())
        .ok_or(part)
}

/// Form fields that say nothing about which command a form is: the CSRF token (one per session)
/// and the idempotency key itself.
const NOT_THE_COMMAND: [&str; 2] = ["csrf_token", "command_id"];

/// A digest of what a form post asks for: its path (which names the entity) and its fields, in a
/// canonical order. Two posts with one idempotency key and different fingerprints are two
/// different commands (a stale tab, the back button), not a double submit.
pub fn form_fingerprint(path: &str, body: &[u8]) -> String {
    let mut fields: Vec<(String, String)> = form_urlencoded_pairs(body)
        .into_iter()
        .filter(|(k, _)| !NOT_THE_COMMAND.contains(&k.as_str()))
        .collect();
    fields.sort();
    let mut hasher = Sha256::new();
    hasher.update(path.as_bytes());
    for (k, v) in &fields {
        // Lengths first, so that no two different field lists hash the same bytes.
        hasher.update((k.len() as u64).to_le_bytes());
        hasher.update(k.as_bytes());
        hasher.update((v.len() as u64).to_le_bytes());
        hasher.update(v.as_bytes());
    }
    format!("{:x}", hasher.finalize())
}

fn form_urlencoded_pairs(body: &[u8]) -> Vec<(String, String)> {
    serde_urlencoded::from_bytes(body).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_and_broken_utf8_are_refused_where_they_are() {
        assert_eq!(check_path("/threats/sessions/%00"), Err(Unstorable::Path));
        assert_eq!(check_path("/threats/files/a%FFb"), Err(Unstorable::Path));
        assert_eq!(check_path("/threats/files/caf%C3%A9"), Ok(()));
        assert_eq!(
            check_urlencoded(b"ip=%00", Unstorable::Query),
            Err(Unstorable::Query)
        );
        assert_eq!(
            check_urlencoded(b"reason=bad%FF%FEutf8&x=1", Unstorable::Form),
            Err(Unstorable::Form)
        );
        assert_eq!(
            check_urlencoded(b"name=A+fund&criteria=caf%C3%A9", Unstorable::Form),
            Ok(())
        );
        // A lone or malformed percent sign is text, not an escape.
        assert_eq!(check_urlencoded(b"q=100%&r=%zz", Unstorable::Query), Ok(()));
    }

    #[test]
    fn a_fingerprint_is_the_path_and_the_fields_but_not_the_token_or_key() {
        let a = form_fingerprint(
            "/f/1/decide",
            b"csrf_token=t1&command_id=k1&amount=2000&x=1",
        );
        let same = form_fingerprint(
            "/f/1/decide",
            b"x=1&amount=2000&command_id=k2&csrf_token=t2",
        );
        assert_eq!(a, same);
        assert_ne!(a, form_fingerprint("/f/1/decide", b"amount=2500&x=1"));
        assert_ne!(a, form_fingerprint("/f/2/decide", b"amount=2000&x=1"));
        assert_ne!(
            form_fingerprint("/p", b"a=bc&d="),
            form_fingerprint("/p", b"a=b&cd=")
        );
    }
}
