//! The one rule for text people type, and how text that can deceive is shown.
//!
//! Every text field (names, criteria, reasons, comments, rule texts, groups) is trimmed and
//! refuses control characters (C0 and C1: BEL, ESC, NUL, ...) and the Unicode direction controls
//! that make text read differently from what it is (`invoice\u{202E}fdp.exe` shows as
//! `invoiceexe.pdf`). A field of several lines keeps line breaks and tabs. Sensors report what they
//! observed, direction controls included, so pages show every direction control as a visible mark
//! ([`reveal`]) instead of letting it reorder the text around it.

/// Unicode's explicit direction controls: embeddings and overrides (U+202A-U+202E), isolates
/// (U+2066-U+2069) and the marks (U+200E, U+200F, U+061C).
pub fn is_direction_control(c: char) -> bool {
    matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{200E}' | '\u{200F}' | '\u{061C}')
}

/// Whether a field may hold line breaks and tabs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lines {
    One,
    Many,
}

/// Check a typed value by the one rule: trimmed, at most `max_chars`, no control or direction
/// character (line breaks and tabs allowed in a field of several lines). `field` names it in
/// the message ("The fund name").
pub fn check(field: &str, value: &str, max_chars: usize, lines: Lines) -> Result<String, String> {
    let v = value.trim();
    if v.chars().count() > max_chars {
        return Err(format!(
            "{field} is too long: at most {max_chars} characters"
        ));
    }
    let allowed = |c: char| lines == Lines::Many && matches!(c, '\n' | '\r' | '\t');
    if let Some(c) = v
        .chars()
        .find(|&c| (c.is_control() && !allowed(c)) || is_direction_control(c))
    {
        let what = if is_direction_control(c) {
            "a text direction control"
        } else if c == '\n' || c == '\r' {
            "a line break"
        } else {
            "a control character"
        };
        return Err(format!(
            "{field} contains {what} (U+{:04X}): remove it",
            c as u32
        ));
    }
    Ok(v.to_owned())
}

/// The text with each direction control replaced by a visible mark such as `[U+202E]`, safe in
/// text and in attribute values alike.
pub fn reveal(text: &str) -> std::borrow::Cow<'_, str> {
    if !text.chars().any(is_direction_control) {
        return std::borrow::Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 16);
    for c in text.chars() {
        if is_direction_control(c) {
            out.push_str(&format!("[U+{:04X}]", c as u32));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_rule_for_every_field() {
        assert_eq!(
            check("The name", "  Merit  ", 10, Lines::One),
            Ok("Merit".into())
        );
        for bad in [
            "Mer\u{7}it",
            "Mer\u{1b}[31mit",
            "a\u{0}b",
            "x\u{85}y",
            "inv\u{202E}fdp.exe",
        ] {
            assert!(check("The name", bad, 100, Lines::One).is_err(), "{bad:?}");
            assert!(
                check("The criteria", bad, 100, Lines::Many).is_err(),
                "{bad:?}"
            );
        }
        assert!(check("The name", "two\nlines", 100, Lines::One)
            .unwrap_err()
            .contains("line break"));
        assert_eq!(
            check("The criteria", "two\r\nlines\tand a tab", 100, Lines::Many),
            Ok("two\r\nlines\tand a tab".into())
        );
        assert_eq!(
            check("The name", "Ünïcödé 名前", 100, Lines::One),
            Ok("Ünïcödé 名前".into())
        );
        assert!(check("The name", "abcd", 3, Lines::One)
            .unwrap_err()
            .contains("at most 3"));
        assert_eq!(
            check("The fund name", "a\u{202E}b", 10, Lines::One).unwrap_err(),
            "The fund name contains a text direction control (U+202E): remove it"
        );
    }

    #[test]
    fn direction_controls_are_shown_as_marks() {
        assert_eq!(reveal("invoice\u{202E}fdp.exe"), "invoice[U+202E]fdp.exe");
        assert_eq!(reveal("a\u{2066}b\u{2069}"), "a[U+2066]b[U+2069]");
        assert!(matches!(reveal("plain"), std::borrow::Cow::Borrowed(_)));
    }
}
