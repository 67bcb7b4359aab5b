//! A signature's history as people read it (issue 20.7, "Signatures: history of changes, past
//! scores"): every event of its stream as a sentence ("Score raised from 40 to 70 by Ada Admin,
//! 3 Dec 14:02"), and its default score over time as a server-rendered SVG step chart (no inline
//! styles: classes of static/app.css; a 360-unit wide view box, so text stays readable on a phone).

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Utc};
use diesel::prelude::*;
use serde::Serialize;
use uuid::Uuid;

use super::decider::{Signature, DEFAULT_SCORE, RESTRICTED_GROUP};
use super::events::SignatureEvent;
use crate::es::{Actor, Decider, RecordedEvent};

/// A moment as the pages say it: "3 Dec 14:02 UTC" this year, "3 Dec 2025 14:02 UTC" before.
pub fn when(t: DateTime<Utc>, now: DateTime<Utc>) -> String {
    if t.year() == now.year() {
        t.format("%-d %b %H:%M UTC").to_string()
    } else {
        t.format("%-d %b %Y %H:%M UTC").to_string()
    }
}

/// One revision, as a sentence.
#[derive(Debug, Clone, Serialize)]
pub struct Revision {
    pub sentence: String,
    pub recorded_at: DateTime<Utc>,
}

/// A point of the score chart (view box coordinates), with what its tooltip says.
#[derive(Debug, Clone, Serialize)]
pub struct Point {
    pub x: i64,
    pub y: i64,
    pub label: String,
}

/// The chart: a step line through the scores from the first event to now.
#[derive(Debug, Clone, Serialize)]
pub struct ScoreChart {
    pub path: String,
    pub points: Vec<Point>,
    pub first: String,
    pub last: String,
    /// Grid lines: (score, y).
    pub grid: Vec<(i32, i64)>,
}

/// The view box and the plot inside it.
const LEFT: i64 = 34;
const RIGHT: i64 = 350;
const TOP: i64 = 12;
const BOTTOM: i64 = 152;

fn y_of(score: i32) -> i64 {
    BOTTOM - (BOTTOM - TOP) * i64::from(score.clamp(0, 100)) / 100
}

/// Who did it, by the event's actor: a person's display name, the CLI, a sensor.
fn who(event: &RecordedEvent, names: &HashMap<Uuid, String>) -> String {
    match event.actor() {
        Some(Actor::User(id)) => names
            .get(&id)
            .cloned()
            .unwrap_or_else(|| "a former user".into()),
        Some(Actor::Cli) => "the command line".into(),
        Some(Actor::Sensor(_)) => "a sensor".into(),
        Some(Actor::System(name)) => name,
        None => "someone".into(),
    }
}

/// "Score raised from 40 to 70", or none when the score did not change.
fn score_change(from: i32, to: i32) -> Option<String> {
    match to.cmp(&from) {
        std::cmp::Ordering::Greater => Some(format!("Score raised from {from} to {to}")),
        std::cmp::Ordering::Less => Some(format!("Score lowered from {from} to {to}")),
        std::cmp::Ordering::Equal => None,
    }
}

/// The sentence of one event, given the signature's state before it.
fn sentence(
    before: &<Signature as Decider>::State,
    event: &SignatureEvent,
    by: &str,
    at: &str,
) -> String {
    match event {
        SignatureEvent::SignatureCreated {
            group,
            default_score,
            ..
        } => format!("Created in group {group} with score {default_score} by {by}, {at}."),
        SignatureEvent::SignatureRegisteredRestricted { .. } => format!(
            "Registered as restricted (score {DEFAULT_SCORE}) when {by} first reported it, {at}."
        ),
        SignatureEvent::SignatureRevised {
            rule_text,
            group,
            default_score,
        } => {
            let mut parts: Vec<String> = Vec::new();
            parts.extend(score_change(before.default_score, *default_score));
            if *group != before.group {
                parts.push(if before.group == RESTRICTED_GROUP {
                    format!("classified into group {group}")
                } else {
                    format!("moved from group {} to {group}", before.group)
                });
            }
            if *rule_text != before.rule_text {
                parts.push("rule text changed".into());
            }
            let what = match parts.split_first() {
                None => "Revised".to_owned(),
                Some((first, rest)) => {
                    let mut s = first.clone();
                    if let Some(c) = s.get(..1) {
                        s = c.to_uppercase() + &s[1..];
                    }
                    for (i, p) in rest.iter().enumerate() {
                        s += if i + 1 == rest.len() { " and " } else { ", " };
                        s += p;
                    }
                    s
                }
            };
            format!("{what} by {by}, {at}.")
        }
        SignatureEvent::SignatureRetired {} => format!("Retired by {by}, {at}."),
    }
}

/// The revisions (newest first) and the score chart of a signature's stream, as of `now`.
pub fn read(
    conn: &mut PgConnection,
    stream: &[RecordedEvent],
    now: DateTime<Utc>,
) -> QueryResult<(Vec<Revision>, Option<ScoreChart>)> {
    let ids: Vec<Uuid> = stream
        .iter()
        .filter_map(|e| match e.actor() {
            Some(Actor::User(id)) => Some(id),
            _ => None,
        })
        .collect();
    let names = crate::accounts::queries::display_names(conn, &ids)?;
    let mut state = <Signature as Decider>::State::default();
    let mut revisions = Vec::new();
    let mut scores: Vec<(DateTime<Utc>, i32)> = Vec::new();
    for e in stream {
        // An event this page cannot read is left out rather than failing the page.
        let Ok(event) = e.decode::<SignatureEvent>() else {
            continue;
        };
        let at = when(e.recorded_at, now);
        revisions.push(Revision {
            sentence: sentence(&state, &event, &who(e, &names), &at),
            recorded_at: e.recorded_at,
        });
        state = Signature::evolve(state, &event);
        if !matches!(event, SignatureEvent::SignatureRetired {}) {
            scores.push((e.recorded_at, state.default_score));
        }
    }
    revisions.reverse();
    Ok((revisions, chart(&scores, now)))
}

/// The step chart of `(time, score)` from the first to `now`.
fn chart(scores: &[(DateTime<Utc>, i32)], now: DateTime<Utc>) -> Option<ScoreChart> {
    let (start, _) = *scores.first()?;
    let span = (now - start).num_seconds().max(1);
    let x_of = |t: DateTime<Utc>| LEFT + (RIGHT - LEFT) * (t - start).num_seconds().max(0) / span;
    let mut path = String::new();
    let mut points = Vec::new();
    for (i, (t, score)) in scores.iter().enumerate() {
        let (x, y) = (x_of(*t), y_of(*score));
        if i == 0 {
            path += &format!("M{x} {y}");
        } else {
            path += &format!(" H{x} V{y}");
        }
        points.push(Point {
            x,
            y,
            label: format!("{score} from {}", when(*t, now)),
        });
    }
    path += &format!(" H{RIGHT}");
    Some(ScoreChart {
        path,
        points,
        first: when(start, now),
        last: "now".into(),
        grid: [0, 50, 100].into_iter().map(|s| (s, y_of(s))).collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn revisions_read_as_sentences() {
        let created = SignatureEvent::SignatureCreated {
            name: "ET-1".into(),
            rule_text: "r".into(),
            group: "alpha".into(),
            default_score: 40,
        };
        let state = Signature::evolve(Default::default(), &created);
        let revised = SignatureEvent::SignatureRevised {
            rule_text: "r".into(),
            group: "alpha".into(),
            default_score: 70,
        };
        assert_eq!(
            sentence(&state, &revised, "Ada Admin", "3 Dec 14:02 UTC"),
            "Score raised from 40 to 70 by Ada Admin, 3 Dec 14:02 UTC."
        );
        let moved = SignatureEvent::SignatureRevised {
            rule_text: "r2".into(),
            group: "beta".into(),
            default_score: 20,
        };
        assert_eq!(
            sentence(&state, &moved, "Ada Admin", "today"),
            "Score lowered from 40 to 20, moved from group alpha to beta and rule text changed by Ada Admin, today."
        );
    }

    #[test]
    fn the_chart_steps_from_the_first_score_to_now() {
        let t0 = DateTime::parse_from_rfc3339("2026-12-01T00:00:00Z")
            .unwrap()
            .to_utc();
        let t1 = t0 + chrono::Duration::days(1);
        let now = t0 + chrono::Duration::days(2);
        let c = chart(&[(t0, 40), (t1, 70)], now).unwrap();
        // 40 -> y 96, 70 -> y 54; the second score starts half way.
        assert_eq!(c.path, "M34 96 H192 V54 H350");
        assert_eq!(c.points.len(), 2);
    }
}
