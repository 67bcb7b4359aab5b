use std::fmt;

use tracing::field::Field;
use tracing_subscriber::field::MakeExt;
use tracing_subscriber::fmt::format::{debug_fn, Writer};
use tracing_subscriber::EnvFilter;

/// Structured logs on stderr; `RUST_LOG` filters (default `info`). Every line inside a request
/// carries its `request_id` through the request span.
///
/// Field values (usernames, paths, filenames: whatever a client sent) are written escaped, so
/// that a value cannot end the line and forge another one, nor carry terminal escapes.
pub fn init(default_filter: &str) {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default_filter));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_target(false)
        .with_ansi(false)
        .fmt_fields(debug_fn(write_field).delimited(" "))
        .try_init();
}

fn write_field(w: &mut Writer<'_>, field: &Field, value: &dyn fmt::Debug) -> fmt::Result {
    let text = format!("{value:?}");
    if field.name() == "message" {
        write!(w, "{}", Escaped(&text))
    } else {
        write!(w, "{}={}", field.name(), Escaped(&text))
    }
}

/// A log value with every control character (line breaks, ESC, ...) and every direction control
/// written as a Rust escape (`\n`, `\u{1b}`, `\u{202e}`): one event is always one line, and what
/// it says is what a reader sees.
pub struct Escaped<'a>(pub &'a str);

impl fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for c in self.0.chars() {
            if c.is_control() || crate::text::is_direction_control(c) {
                write!(f, "{}", c.escape_default())?;
            } else {
                fmt::Write::write_char(f, c)?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::Escaped;

    #[test]
    fn a_value_cannot_make_a_second_line_or_an_escape() {
        let forged = "x\n2026-12-05T09:00:00Z  INFO admin signed in\r\u{1b}[31m\u{202e}";
        let shown = Escaped(forged).to_string();
        assert!(
            !shown.contains(['\n', '\r', '\u{1b}', '\u{202e}']),
            "{shown}"
        );
        assert_eq!(
            shown,
            "x\\n2026-12-05T09:00:00Z  INFO admin signed in\\r\\u{1b}[31m\\u{202e}"
        );
        assert_eq!(Escaped("ada lovelace é").to_string(), "ada lovelace é");
    }
}
