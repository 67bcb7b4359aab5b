//! The query parameters every threat report and list takes (DESIGN section 7): a preset window
//! (`?window=1h|24h|7d|30d|all`) or a custom range (`?from=T&to=T`), parsed into a
//! [`TimeRange`] at the edge; a bad value is a 400 that says which and why.

use chrono::{DateTime, LocalResult, NaiveDateTime, TimeZone, Utc};
use chrono_tz::Tz;
use serde::Deserialize;

use super::error::ThreatsError;
use super::queries::{TimeRange, Window};

/// `?window=` or `?from=&to=` as given. `window=custom` (the custom range form sends it) or no
/// window with `from` or `to` selects the custom range; a preset otherwise.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct RangeParams {
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
    #[serde(default)]
    pub to: Option<String>,
}

/// A time as a range end: RFC 3339 (`2026-12-05T10:15:00Z`, its offset kept), or
/// `YYYY-MM-DDTHH:MM` as a `datetime-local` field sends it, read in the viewer's time zone
/// (DESIGN section 7). A local time the clocks skip (spring forward) is refused; one they pass
/// twice (fall back) is the first.
pub fn parse_time(raw: &str, which: &str, zone: Tz) -> Result<DateTime<Utc>, ThreatsError> {
    let raw = raw.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(raw) {
        return Ok(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M", "%Y-%m-%dT%H:%M:%S", "%Y-%m-%d %H:%M"] {
        if let Ok(t) = NaiveDateTime::parse_from_str(raw, format) {
            return match zone.from_local_datetime(&t) {
                LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Ok(t.with_timezone(&Utc)),
                LocalResult::None => Err(ThreatsError::BadQuery(format!(
                    "{which} {raw:?} does not exist in {}: the clocks skip it",
                    zone.name()
                ))),
            };
        }
    }
    Err(ThreatsError::BadQuery(format!(
        "{which} {:?} is not a time: use 2026-12-05T10:15 or RFC 3339",
        raw.chars().take(40).collect::<String>()
    )))
}

/// A custom range end as an HTML `datetime-local` field shows it: in the viewer's time zone, to
/// the minute.
pub fn local_input(t: Option<DateTime<Utc>>, zone: Tz) -> String {
    t.map(|t| t.with_timezone(&zone).format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

impl RangeParams {
    /// Whether the custom range applies.
    pub fn is_custom(&self) -> bool {
        match self.window.as_deref().map(str::trim) {
            Some("custom") => true,
            None | Some("") => {
                self.from.as_deref().is_some_and(|s| !s.trim().is_empty())
                    || self.to.as_deref().is_some_and(|s| !s.trim().is_empty())
            }
            _ => false,
        }
    }

    /// The preset (all when none; a bad one is refused).
    pub fn preset(&self) -> Result<Window, ThreatsError> {
        Window::try_from(self.window.clone().unwrap_or_default()).map_err(ThreatsError::BadQuery)
    }

    /// The range at `now`: the custom one when given (either end may be left open; local times
    /// read in `zone`), else the window's.
    pub fn range(&self, now: DateTime<Utc>, zone: Tz) -> Result<TimeRange, ThreatsError> {
        if !self.is_custom() {
            return Ok(self.preset()?.range(now));
        }
        let end = |raw: &Option<String>, which| match raw.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(s) => parse_time(s, which, zone).map(Some),
        };
        let range = TimeRange {
            from: end(&self.from, "from")?,
            to: end(&self.to, "to")?,
        };
        if let (Some(f), Some(t)) = (range.from, range.to) {
            if f >= t {
                return Err(ThreatsError::BadQuery(
                    "from must be before to (from is inclusive, to exclusive)".into(),
                ));
            }
        }
        Ok(range)
    }

    /// The parameters as a query string part (`window=7d` or `from=...&to=...`), for links that
    /// keep the range.
    pub fn query_string(&self) -> String {
        if self.is_custom() {
            format!(
                "window=custom&from={}&to={}",
                crate::web::render::percent_encode(self.from.as_deref().unwrap_or("").trim()),
                crate::web::render::percent_encode(self.to.as_deref().unwrap_or("").trim())
            )
        } else {
            format!("window={}", self.preset().unwrap_or_default().as_str())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(window: Option<&str>, from: Option<&str>, to: Option<&str>) -> RangeParams {
        RangeParams {
            window: window.map(str::to_owned),
            from: from.map(str::to_owned),
            to: to.map(str::to_owned),
        }
    }

    #[test]
    fn a_custom_range_overrides_the_window_and_must_be_in_order() {
        let now = Utc::now();
        let r = params(
            Some("custom"),
            Some("2026-12-01T10:15"),
            Some("2026-12-02T00:00:00Z"),
        )
        .range(now, Tz::UTC)
        .unwrap();
        assert_eq!(r.from.unwrap().to_rfc3339(), "2026-12-01T10:15:00+00:00");
        assert_eq!(r.to.unwrap().to_rfc3339(), "2026-12-02T00:00:00+00:00");
        let open = params(None, Some("2026-12-01T10:15:00+01:00"), Some(""))
            .range(now, Tz::UTC)
            .unwrap();
        assert_eq!(open.from.unwrap().to_rfc3339(), "2026-12-01T09:15:00+00:00");
        assert_eq!(open.to, None);
        assert!(
            params(None, Some("2026-12-02T00:00"), Some("2026-12-01T00:00"))
                .range(now, Tz::UTC)
                .is_err()
        );
        assert!(params(None, Some("yesterday"), None)
            .range(now, Tz::UTC)
            .is_err());
        assert!(params(Some("1y"), None, None).range(now, Tz::UTC).is_err());
        assert_eq!(
            params(Some("1h"), Some("2026-12-01T10:15"), None)
                .range(now, Tz::UTC)
                .unwrap()
                .from,
            Some(now - chrono::Duration::hours(1))
        );
    }

    #[test]
    fn a_local_time_is_read_in_the_viewers_zone_and_shown_back_in_it() {
        let ny: Tz = "America/New_York".parse().unwrap();
        let t = parse_time("2026-12-01T09:00", "from", ny).unwrap();
        assert_eq!(t.to_rfc3339(), "2026-12-01T14:00:00+00:00");
        assert_eq!(local_input(Some(t), ny), "2026-12-01T09:00");
        assert_eq!(local_input(Some(t), Tz::UTC), "2026-12-01T14:00");
        // An explicit offset is kept whatever the zone.
        let z = parse_time("2026-12-01T09:00:00Z", "from", ny).unwrap();
        assert_eq!(z.to_rfc3339(), "2026-12-01T09:00:00+00:00");
        // The hour the clocks skip is refused in words; the one they pass twice is the first.
        let gap = parse_time("2026-03-08T02:30", "to", ny).unwrap_err();
        assert!(format!("{gap:?}").contains("does not exist in America/New_York"));
        let twice = parse_time("2026-11-01T01:30", "to", ny).unwrap();
        assert_eq!(twice.to_rfc3339(), "2026-11-01T05:30:00+00:00");
    }
}
