//! `?as_of=`: a page as it stood at a moment of the past, folded from the events recorded until
//! then (never from the read models, which know only the present). Pages render the same rows as
//! live, without their forms, under the banner of `templates/_as_of.html`.

use chrono::{DateTime, Duration, NaiveDate, NaiveDateTime, Utc};
use serde::Deserialize;

use crate::web::AppError;

/// A moment of the past: the events recorded before `until` (exclusive) are the page's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsOf {
    /// As the user wrote it, tidied: shown in the banner.
    pub label: String,
    pub until: DateTime<Utc>,
}

impl AsOf {
    /// The day of the moment (UTC), for what depends on the date (a fund's window).
    pub fn date(&self) -> NaiveDate {
        (self.until - Duration::microseconds(1)).date_naive()
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct AsOfQuery {
    #[serde(default)]
    pub as_of: Option<String>,
}

impl AsOfQuery {
    pub fn parse(&self) -> Result<Option<AsOf>, AppError> {
        parse(self.as_of.as_deref())
    }
}

/// `YYYY-MM-DD` (the end of that day, UTC), `YYYY-MM-DDTHH:MM[:SS]` (UTC, that moment included)
/// or RFC 3339; empty means now.
pub fn parse(raw: Option<&str>) -> Result<Option<AsOf>, AppError> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    let bad = || {
        AppError::BadRequest(format!(
            "{:?} is not a moment: write YYYY-MM-DD or YYYY-MM-DDTHH:MM (UTC), e.g. 2026-11-27T14:30.",
            raw.chars().take(40).collect::<String>()
        ))
    };
    if let Ok(d) = NaiveDate::parse_from_str(raw, "%Y-%m-%d") {
        let until = d
            .succ_opt()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .ok_or_else(bad)?
            .and_utc();
        return Ok(Some(AsOf {
            label: format!("the end of {d} (UTC)"),
            until,
        }));
    }
    let moment = DateTime::parse_from_rfc3339(raw)
        .map(|t| t.with_timezone(&Utc))
        .ok()
        .or_else(|| {
            ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]
                .iter()
                .find_map(|f| NaiveDateTime::parse_from_str(raw, f).ok())
                .map(|t| t.and_utc())
        })
        .ok_or_else(bad)?;
    Ok(Some(AsOf {
        label: format!("{} UTC", moment.format("%Y-%m-%d %H:%M:%S")),
        until: moment + Duration::microseconds(1),
    }))
}

/// Put the banner's values into a page's context: `as_of` (the label, absent for now),
/// `as_of_input` (for the picker) and `as_of_what` (what the page shows, in words).
pub fn insert(ctx: &mut tera::Context, as_of: Option<&AsOf>, what: &str) {
    if let Some(a) = as_of {
        ctx.insert("as_of", &a.label);
        ctx.insert(
            "as_of_input",
            &(a.until - Duration::microseconds(1))
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string(),
        );
    }
    ctx.insert("as_of_what", what);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_date_is_its_whole_day_and_a_time_includes_that_moment() {
        let day = parse(Some("2026-11-27")).unwrap().unwrap();
        assert_eq!(day.until.to_rfc3339(), "2026-11-28T00:00:00+00:00");
        assert_eq!(day.date().to_string(), "2026-11-27");
        let t = parse(Some("2026-11-27T14:30")).unwrap().unwrap();
        assert_eq!(t.until.to_rfc3339(), "2026-11-27T14:30:00.000001+00:00");
        let t = parse(Some("2026-11-27T14:30:05.25+01:00"))
            .unwrap()
            .unwrap();
        assert_eq!(t.label, "2026-11-27 13:30:05 UTC");
        assert!(parse(Some("")).unwrap().is_none());
        assert!(parse(Some("yesterday")).is_err());
        assert!(parse(Some("2026-13-01")).is_err());
    }
}
