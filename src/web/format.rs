//! How numbers and times read on every page: one formatting for money ("$2,500.00"), counts
//! ("1,234") and byte sizes ("1.2 MB"), times in the viewer's time zone with relative times where
//! recent ("5 min ago", the exact time in the `title`), and terms in calendar order.
//!
//! Templates use them as Tera filters (`register`): `money` (cents), `count`, `bytes`, `when`
//! (a `<time>` element), `datetime`, `date`, and `fields` (an event's payload as labelled fields,
//! each value read the same way). A Tera filter sees only its value, not the page's
//! context, so the viewer's zone is set for the duration of one render by `in_zone` (the renderer
//! does it for every page and fragment); outside a render, times read in UTC.

use std::cell::Cell;
use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDateTime, Utc};
use chrono_tz::Tz;
use tera::Value;

/// The campus default when configuration names none.
pub const DEFAULT_ZONE: Tz = Tz::UTC;

/// An IANA time zone name ("America/New_York"), as the setting and configuration take it.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    let name = name.trim();
    name.parse::<Tz>().map_err(|_| {
        format!(
            "{:?} is not a time zone: choose one from the list (IANA names such as America/New_York)",
            name.chars().take(60).collect::<String>()
        )
    })
}

/// Every zone a user may choose, in alphabetical order.
pub fn zone_names() -> impl Iterator<Item = &'static str> {
    chrono_tz::TZ_VARIANTS.iter().map(|z| z.name())
}

thread_local! {
    static ZONE: Cell<Tz> = const { Cell::new(DEFAULT_ZONE) };
}

/// Run `render` with times shown in `zone` (the viewer's, else the campus default).
pub fn in_zone<T>(zone: Tz, render: impl FnOnce() -> T) -> T {
    let before = ZONE.with(|z| z.replace(zone));
    let out = render();
    ZONE.with(|z| z.set(before));
    out
}

fn zone() -> Tz {
    ZONE.with(Cell::get)
}

/// "1,234" (and "-1,234").
pub fn count(n: i64) -> String {
    let digits = n.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if n < 0 {
        out.push('-');
    }
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// "$1,234.56" (negative amounts with a leading minus: "-$25.00").
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}${}.{:02}", count((c / 100) as i64), c % 100)
}

/// "68 bytes", "1 byte", "12.3 kB", "1.2 MB", "3.4 GB" (decimal units, as file managers show).
pub fn bytes(n: i64) -> String {
    const UNITS: [&str; 5] = ["kB", "MB", "GB", "TB", "PB"];
    if n.abs() < 1000 {
        return format!("{n} byte{}", if n == 1 { "" } else { "s" });
    }
    let mut v = n as f64;
    let mut unit = 0;
    v /= 1000.0;
    while v.abs() >= 999.95 && unit + 1 < UNITS.len() {
        v /= 1000.0;
        unit += 1;
    }
    format!("{v:.1} {}", UNITS[unit])
}

/// A term's place in the calendar: year, then spring, summer, fall; anything else after.
pub fn term_key(term: &str) -> (i32, usize, String) {
    let parsed = term.split_once('-').and_then(|(year, season)| {
        let season = crate::enrollment::commands::SEASONS
            .iter()
            .position(|s| s.eq_ignore_ascii_case(season))?;
        Some((year.parse::<i32>().ok()?, season))
    });
    match parsed {
        Some((year, season)) => (year, season, String::new()),
        None => (i32::MAX, usize::MAX, term.to_owned()),
    }
}

/// Sort terms in calendar order ("2027-spring", "2027-summer", "2027-fall", "2028-spring").
pub fn sort_terms(terms: &mut [String]) {
    terms.sort_by_cached_key(|t| term_key(t));
}

/// The exact local time: "Thu 3 Dec 2026, 14:02:05 EST".
pub fn exact(t: DateTime<Utc>) -> String {
    t.with_timezone(&zone())
        .format("%a %-d %b %Y, %H:%M:%S %Z")
        .to_string()
}

/// The local date and minute: "3 Dec 2026, 14:02".
pub fn datetime(t: DateTime<Utc>) -> String {
    t.with_timezone(&zone())
        .format("%-d %b %Y, %H:%M")
        .to_string()
}

/// The local date: "3 Dec 2026".
pub fn date(t: DateTime<Utc>) -> String {
    t.with_timezone(&zone()).format("%-d %b %Y").to_string()
}

/// "just now", "5 min ago", "3 h ago" within the last day; `None` for older or future times.
pub fn relative(t: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let secs = (now - t).num_seconds();
    match secs {
        // A little ahead (clock skew between the database and this process) is "just now".
        -60..=59 => Some("just now".into()),
        60..=3599 => Some(format!("{} min ago", secs / 60)),
        3600..=86_399 => Some(format!("{} h ago", secs / 3600)),
        _ => None,
    }
}

/// `<time datetime="2026-12-03T19:02:05Z" title="Thu 3 Dec 2026, 14:02:05 EST">5 min ago</time>`:
/// relative when recent, else the local date and minute; the exact time always in the title.
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    let shown = relative(t, now).unwrap_or_else(|| {
        if t.with_timezone(&zone()).year() == now.with_timezone(&zone()).year() {
            t.with_timezone(&zone()).format("%-d %b, %H:%M").to_string()
        } else {
            datetime(t)
        }
    });
    format!(
        r#"<time datetime="{}" title="{}">{shown}</time>"#,
        t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        exact(t)
    )
}

/// A time as templates receive it: RFC 3339 (a `DateTime<Utc>`), or without an offset (a
/// `NaiveDateTime` or a `timestamp` column, read as UTC).
fn parse_time(value: &Value) -> Option<DateTime<Utc>> {
    let s = value.as_str()?;
    DateTime::parse_from_rfc3339(s)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|n| n.and_utc())
        })
}

fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f.round() as i64)),
        Value::String(s) => s.trim().replace(',', "").parse().ok(),
        _ => None,
    }
}

/// "size_bytes" -> "Size", "default_score" -> "Default score", "md5" -> "MD5".
fn label(key: &str) -> String {
    let key = key
        .strip_suffix("_bytes")
        .or_else(|| key.strip_suffix("_cents"))
        .unwrap_or(key);
    let words: Vec<String> = key
        .split('_')
        .filter(|w| !w.is_empty())
        .map(|w| match w {
            "id" | "ip" | "md5" => w.to_ascii_uppercase(),
            _ => w.to_owned(),
        })
        .collect();
    let text = words.join(" ");
    let mut chars = text.chars();
    chars
        .next()
        .map(|c| c.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

/// One field's value as a person reads it: times in the viewer's zone, sizes, money.
fn field_value(key: &str, value: &Value) -> String {
    match value {
        Value::Number(_) if key.ends_with("_bytes") => escape(&bytes(integer(value).unwrap_or(0))),
        Value::Number(_) if key.ends_with("_cents") => escape(&money(integer(value).unwrap_or(0))),
        Value::String(s) => match parse_time(value) {
            Some(t) if s.len() >= 19 => when(t, Utc::now()),
            _ => escape(s),
        },
        Value::Null => "—".into(),
        Value::Bool(b) => (if *b { "yes" } else { "no" }).into(),
        Value::Array(items) => items
            .iter()
            .map(|v| field_value(key, v))
            .collect::<Vec<_>>()
            .join(", "),
        other => escape(&other.to_string()),
    }
}

/// An event's payload (a JSON object, or its text) as labelled fields: `<dl class="fields">`.
pub fn fields(value: &Value) -> Option<String> {
    let parsed;
    let object = match value {
        Value::Object(o) => o,
        Value::String(s) => {
            parsed = serde_json::from_str::<Value>(s).ok()?;
            parsed.as_object()?
        }
        _ => return None,
    };
    if object.is_empty() {
        return Some(String::new());
    }
    let mut out = String::from(r#"<dl class="fields">"#);
    for (key, v) in object {
        out.push_str(&format!(
            "<dt>{}</dt><dd>{}</dd>",
            escape(&label(key)),
            field_value(key, v)
        ));
    }
    out.push_str("</dl>");
    Some(out)
}

type Args = HashMap<String, Value>;

/// A filter of one value; anything it cannot read is shown as it came (never a failed page).
struct Format {
    read: fn(&Value) -> Option<String>,
    safe: bool,
}

impl tera::Filter for Format {
    fn filter(&self, value: &Value, _: &Args) -> tera::Result<Value> {
        Ok(match (self.read)(value) {
            Some(s) => Value::String(s),
            None if value.is_null() => Value::String(String::new()),
            None if self.safe => Value::String(escape(&tera_string(value))),
            None => value.clone(),
        })
    }

    fn is_safe(&self) -> bool {
        self.safe
    }
}

fn tera_string(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn escape(s: &str) -> String {
    tera::escape_html(s)
}

/// Register the filters with the templates (see the module documentation).
pub fn register(tera: &mut tera::Tera) {
    let filters: [(&str, Format); 7] = [
        (
            "money",
            Format {
                read: |v| integer(v).map(money),
                safe: false,
            },
        ),
        (
            "count",
            Format {
                read: |v| integer(v).map(count),
                safe: false,
            },
        ),
        (
            "bytes",
            Format {
                read: |v| integer(v).map(bytes),
                safe: false,
            },
        ),
        (
            "when",
            Format {
                read: |v| parse_time(v).map(|t| when(t, Utc::now())),
                safe: true,
            },
        ),
        (
            "fields",
            Format {
                read: fields,
                safe: true,
            },
        ),
        (
            "datetime",
            Format {
                read: |v| parse_time(v).map(datetime),
                safe: false,
            },
        ),
        (
            "date",
            Format {
                read: |v| parse_time(v).map(date),
                safe: false,
            },
        ),
    ];
    for (name, filter) in filters {
        tera.register_filter(name, filter);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn numbers_read_naturally() {
        assert_eq!(count(0), "0");
        assert_eq!(count(999), "999");
        assert_eq!(count(1234), "1,234");
        assert_eq!(count(-1_234_567), "-1,234,567");
        assert_eq!(money(250_000), "$2,500.00");
        assert_eq!(money(5), "$0.05");
        assert_eq!(money(-2_500), "-$25.00");
        assert_eq!(bytes(1), "1 byte");
        assert_eq!(bytes(68), "68 bytes");
        assert_eq!(bytes(12_345), "12.3 kB");
        assert_eq!(bytes(1_234_567), "1.2 MB");
        assert_eq!(bytes(999_999), "1.0 MB");
        assert_eq!(bytes(3_400_000_000), "3.4 GB");
    }

    #[test]
    fn terms_sort_in_calendar_order() {
        let mut terms: Vec<String> = ["2028-spring", "2027-fall", "2027-spring", "2027-summer"]
            .map(String::from)
            .to_vec();
        sort_terms(&mut terms);
        assert_eq!(
            terms,
            ["2027-spring", "2027-summer", "2027-fall", "2028-spring"]
        );
    }

    #[test]
    fn times_read_in_the_zone_with_daylight_saving() {
        let winter = Utc.with_ymd_and_hms(2026, 12, 3, 19, 2, 5).unwrap();
        let summer = Utc.with_ymd_and_hms(2026, 7, 3, 18, 2, 5).unwrap();
        let ny = parse_zone("America/New_York").unwrap();
        in_zone(ny, || {
            assert_eq!(datetime(winter), "3 Dec 2026, 14:02");
            assert_eq!(exact(winter), "Thu 3 Dec 2026, 14:02:05 EST");
            assert_eq!(datetime(summer), "3 Jul 2026, 14:02");
            assert_eq!(exact(summer), "Fri 3 Jul 2026, 14:02:05 EDT");
        });
        // Outside a render: UTC.
        assert_eq!(datetime(winter), "3 Dec 2026, 19:02");
        assert!(parse_zone("Mars/Olympus").is_err());
    }

    #[test]
    fn recent_times_are_relative_with_the_exact_time_in_the_title() {
        let now = Utc.with_ymd_and_hms(2026, 12, 3, 19, 7, 5).unwrap();
        let t = Utc.with_ymd_and_hms(2026, 12, 3, 19, 2, 5).unwrap();
        assert_eq!(
            when(t, now),
            r#"<time datetime="2026-12-03T19:02:05Z" title="Thu 3 Dec 2026, 19:02:05 UTC">5 min ago</time>"#
        );
        assert_eq!(relative(now, now).as_deref(), Some("just now"));
        let old = Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap();
        assert!(when(old, now).contains(">2 Jan 2025, 03:04</time>"));
        let this_year = Utc.with_ymd_and_hms(2026, 1, 2, 3, 4, 5).unwrap();
        assert!(when(this_year, now).contains(">2 Jan, 03:04</time>"));
    }

    #[test]
    fn a_payload_reads_as_labelled_fields() {
        let payload = serde_json::json!({
            "md5": "44d8",
            "size_bytes": 1_234_567,
            "start_time": "2025-01-02T03:04:05Z",
            "filename": "<b>.exe",
            "default_score": 80,
        });
        let html = fields(&payload).unwrap();
        assert!(html.starts_with(r#"<dl class="fields">"#), "{html}");
        assert!(html.contains("<dt>MD5</dt><dd>44d8</dd>"), "{html}");
        assert!(html.contains("<dt>Size</dt><dd>1.2 MB</dd>"), "{html}");
        assert!(
            html.contains("<dt>Start time</dt><dd><time datetime=\"2025-01-02T03:04:05Z\""),
            "{html}"
        );
        assert!(
            html.contains("<dt>Filename</dt><dd>&lt;b&gt;.exe</dd>"),
            "{html}"
        );
        assert!(html.contains("<dt>Default score</dt><dd>80</dd>"), "{html}");
        // The audit log holds payloads as text.
        assert_eq!(fields(&Value::String(payload.to_string())), Some(html));
        assert_eq!(fields(&Value::String("not json".into())), None);
    }

    #[test]
    fn filters_read_what_templates_hold() {
        let mut tera = tera::Tera::default();
        register(&mut tera);
        tera.autoescape_on(vec![""]);
        let mut ctx = tera::Context::new();
        ctx.insert("cents", &250_000);
        ctx.insert("n", &1234);
        ctx.insert("size", &1_234_567);
        ctx.insert("at", &Utc.with_ymd_and_hms(2025, 1, 2, 3, 4, 5).unwrap());
        ctx.insert("naive", "2025-01-02T03:04:05.123456");
        ctx.insert("bad", "<not a time>");
        let out = tera
            .render_str(
                "{{ cents | money }}|{{ n | count }}|{{ size | bytes }}|{{ at | datetime }}|{{ naive | date }}|{{ at | when }}|{{ bad | when }}",
                &ctx,
            )
            .unwrap();
        assert_eq!(
            out,
            "$2,500.00|1,234|1.2 MB|2 Jan 2025, 03:04|2 Jan 2025|<time datetime=\"2025-01-02T03:04:05Z\" title=\"Thu 2 Jan 2025, 03:04:05 UTC\">2 Jan 2025, 03:04</time>|&lt;not a time&gt;"
        );
    }
}
