//! Replay an entity (`/history/{stream_type}/{stream_id}?step=N`): its events one by one, each
//! with the state after it, folded by the context's own decider (`evolve`), and a field-by-field
//! diff of the state before and after.
//!
//! The replay folds the events the viewer may see on the history page and no others: a state
//! built from hidden events would show what the history hides (a hit of a signature the analyst is
//! not cleared for). Admins see every event, hence the real state.
//!
//! States are shown through [`Fields`]: labelled values in a fixed order, written here once per
//! stream type rather than in each decider, so the deciders stay free of presentation.

use std::collections::BTreeMap;

use actix_web::{get, web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::audit::history_or_404;
use super::Registry;
use crate::accounts::decider::{Account, AccountState};
use crate::accounts::Viewer;
use crate::enrollment::decider::{Enrollment, EnrollmentState};
use crate::es::event::DecodeError;
use crate::es::{Decider, RecordedEvent};
use crate::scholarships::commands::format_cents;
use crate::scholarships::decider::{
    Application, ApplicationState, AwardStatus, Fund, FundState, Outcome, Review, ReviewState,
};
use crate::threats::decider::{Clearances, Sensor, SensorState, Signature, SignatureState};
use crate::threats::events::{SensorEvent, SESSION_STREAM};
use crate::web::render::{is_htmx, percent_encode};
use crate::web::{render, AppError};

/// One labelled value of a state, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Field {
    pub label: String,
    pub value: String,
}

/// A state in presentable form: labelled values in display order.
pub type Fields = Vec<Field>;

fn field(label: impl Into<String>, value: impl Into<String>) -> Field {
    Field {
        label: label.into(),
        value: value.into(),
    }
}

fn yes_no(b: bool) -> &'static str {
    if b {
        "yes"
    } else {
        "no"
    }
}

fn or_none<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| v.to_string())
}

/// How one field changed from the state before an event to the state after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Change {
    Same,
    Changed,
    Added,
    Removed,
}

#[derive(Debug, Clone, Serialize)]
pub struct FieldDiff {
    pub label: String,
    pub before: Option<String>,
    pub after: Option<String>,
    pub change: Change,
}

/// The fields of `after` in its order, each compared with `before`; fields only `before` had
/// follow, as removed.
pub fn diff(before: &[Field], after: &[Field]) -> Vec<FieldDiff> {
    let old: BTreeMap<&str, &str> = before
        .iter()
        .map(|f| (f.label.as_str(), f.value.as_str()))
        .collect();
    let mut out: Vec<FieldDiff> = after
        .iter()
        .map(|f| {
            let was = old.get(f.label.as_str()).copied();
            FieldDiff {
                label: f.label.clone(),
                before: was.map(str::to_owned),
                after: Some(f.value.clone()),
                change: match was {
                    None => Change::Added,
                    Some(v) if v == f.value => Change::Same,
                    Some(_) => Change::Changed,
                },
            }
        })
        .collect();
    for f in before {
        if !after.iter().any(|a| a.label == f.label) {
            out.push(FieldDiff {
                label: f.label.clone(),
                before: Some(f.value.clone()),
                after: None,
                change: Change::Removed,
            });
        }
    }
    out
}

/// The state after each of `events`, folded by decider `D` and presented by `present`.
fn fold_each<D: Decider>(
    events: &[RecordedEvent],
    present: fn(&D::State) -> Fields,
) -> Result<Vec<Fields>, DecodeError> {
    let mut state = D::State::default();
    let mut out = Vec::with_capacity(events.len());
    for e in events {
        state = D::evolve(state, &e.decode::<D::Event>()?);
        out.push(present(&state));
    }
    Ok(out)
}

/// The state after each event of a stream of `stream_type` (`None`: a stream type nothing folds).
pub fn states(
    stream_type: &str,
    events: &[RecordedEvent],
) -> Option<Result<Vec<Fields>, DecodeError>> {
    Some(match stream_type {
        Account::STREAM_TYPE => fold_each::<Account>(events, account),
        Enrollment::STREAM_TYPE => fold_each::<Enrollment>(events, enrollment),
        Fund::STREAM_TYPE => fold_each::<Fund>(events, fund),
        Application::STREAM_TYPE => fold_each::<Application>(events, application),
        Review::STREAM_TYPE => fold_each::<Review>(events, review),
        Signature::STREAM_TYPE => fold_each::<Signature>(events, signature),
        Clearances::STREAM_TYPE => fold_each::<Clearances>(events, |held| {
            vec![field(
                "Groups held",
                if held.is_empty() {
                    "none".to_owned()
                } else {
                    held.iter().cloned().collect::<Vec<_>>().join(", ")
                },
            )]
        }),
        Sensor::STREAM_TYPE => fold_each::<Sensor>(events, |s| {
            vec![field(
                "Status",
                match s {
                    SensorState::Unknown => "unknown",
                    SensorState::Active => "active",
                    SensorState::Revoked => "revoked",
                },
            )]
        }),
        SESSION_STREAM => fold_each::<SessionFold>(events, session),
        _ => return None,
    })
}

fn account(s: &AccountState) -> Fields {
    vec![
        field("Registered", yes_no(s.registered)),
        field("Role", or_none(s.role.map(|r| r.as_str()))),
        field("Active", yes_no(s.active)),
    ]
}

fn enrollment(s: &EnrollmentState) -> Fields {
    vec![
        field("Step", or_none(s.step.map(|s| s.label()))),
        field("Term", s.term.clone()),
        field("Transcript received", yes_no(s.transcript)),
        field("Identification received", yes_no(s.identification)),
        field(
            "Admission decision",
            or_none(s.decision.map(|d| d.as_str())),
        ),
        field("Deposit", or_none(s.deposit_cents.map(format_cents))),
        field(
            "Courses",
            if s.courses.is_empty() {
                "—".to_owned()
            } else {
                s.courses.join(", ")
            },
        ),
        field("Withdrawn", yes_no(s.withdrawn)),
    ]
}

fn award_status(s: AwardStatus) -> &'static str {
    match s {
        AwardStatus::Offered => "offered",
        AwardStatus::Accepted => "accepted",
        AwardStatus::Refused => "refused",
        AwardStatus::Disbursed => "disbursed",
        AwardStatus::Revoked => "revoked",
    }
}

fn fund(s: &FundState) -> Fields {
    let mut fields = vec![
        field("Created", yes_no(s.created)),
        field("Open", yes_no(s.is_open)),
        field("Budget", format_cents(s.budget_cents)),
        field("Awarded (live awards)", format_cents(s.committed_cents)),
        field("Remaining", format_cents(s.remaining_cents())),
        field("Opens on", or_none(s.opens_on)),
        field("Closes on", or_none(s.closes_on)),
    ];
    // One field per student decided, in a stable order.
    let decided: BTreeMap<String, String> = s
        .decisions
        .values()
        .map(|d| {
            let outcome = match d.outcome {
                Outcome::Awarded {
                    amount_cents,
                    status,
                } => format!(
                    "awarded {} ({})",
                    format_cents(amount_cents),
                    award_status(status)
                ),
                Outcome::Declined => "declined".into(),
                Outcome::Waitlisted => "waitlisted".into(),
            };
            (d.student_id.to_string(), outcome)
        })
        .collect();
    for (student, outcome) in decided {
        fields.push(field(format!("Decision for student {student}"), outcome));
    }
    fields
}

fn application(s: &ApplicationState) -> Fields {
    vec![
        field("Submitted", yes_no(s.submitted)),
        field("Student", or_none(s.student_id)),
        field("Fund", or_none(s.fund_id)),
        field(
            "Reviewers",
            if s.reviewers.is_empty() {
                "none".to_owned()
            } else {
                s.reviewers
                    .iter()
                    .map(|r| r.to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            },
        ),
    ]
}

fn review(s: &ReviewState) -> Fields {
    vec![
        field("Revision", s.revision.to_string()),
        field(
            "Scores",
            s.scores
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        ),
        field("Comment", s.comment.clone()),
    ]
}

fn signature(s: &SignatureState) -> Fields {
    vec![
        field("Exists", yes_no(s.exists)),
        field("Group", s.group.clone()),
        field("Default score", s.default_score.to_string()),
        field("Rule", s.rule_text.clone()),
        field("Retired", yes_no(s.retired)),
    ]
}

/// A threat session as its sensor events describe it. Sessions have no decider (sensors report
/// facts, nobody decides), so this fold is the session's `evolve`: the same rules as the reports
/// (a rescore replaces the hit's score).
pub struct SessionFold;

#[derive(Debug, Clone, Default)]
pub struct SessionState {
    pub discovered: Option<SensorEvent>,
    pub score: Option<(String, i32)>,
    /// file id -> (filename, md5)
    pub files: BTreeMap<String, (String, String)>,
    /// (file, integration, signature) -> score
    pub hits: BTreeMap<(String, String, String), i32>,
}

impl Decider for SessionFold {
    const STREAM_TYPE: &'static str = SESSION_STREAM;
    type State = SessionState;
    type Command = ();
    type Event = SensorEvent;
    type Rejection = std::convert::Infallible;

    fn decide(_: &SessionState, _: &()) -> Result<Vec<SensorEvent>, Self::Rejection> {
        Ok(Vec::new())
    }

    fn evolve(mut s: SessionState, e: &SensorEvent) -> SessionState {
        match e {
            SensorEvent::SessionDiscovered { .. } => s.discovered = Some(e.clone()),
            SensorEvent::SessionScored {
                threat_contributor,
                score,
                ..
            } => s.score = Some((threat_contributor.clone(), *score)),
            SensorEvent::FileDiscovered {
                file_id,
                filename,
                md5,
                ..
            } => {
                s.files
                    .insert(file_id.clone(), (filename.clone(), md5.clone()));
            }
            SensorEvent::FileScored { score, .. }
            | SensorEvent::FileRescored {
                new_score: score, ..
            } => {
                if let Some((f, i, sig)) = e.hit_key() {
                    s.hits.insert((f.into(), i.into(), sig.into()), *score);
                }
            }
        }
        s
    }
}

fn session(s: &SessionState) -> Fields {
    let mut fields = Vec::new();
    if let Some(SensorEvent::SessionDiscovered {
        start_time,
        protocol,
        source_ip,
        destination_ip,
        source_port,
        destination_port,
        ..
    }) = &s.discovered
    {
        fields.push(field("Start time", start_time.to_rfc3339()));
        fields.push(field("Protocol", protocol.clone()));
        fields.push(field("Source", format!("{source_ip}:{source_port}")));
        fields.push(field(
            "Destination",
            format!("{destination_ip}:{destination_port}"),
        ));
    }
    fields.push(field(
        "Score",
        s.score
            .as_ref()
            .map_or("—".to_owned(), |(by, score)| format!("{score} ({by})")),
    ));
    for (id, (name, md5)) in &s.files {
        fields.push(field(format!("File {id}"), format!("{name} ({md5})")));
    }
    for ((file, integration, sig), score) in &s.hits {
        fields.push(field(
            format!("Hit on {file} by {sig} ({integration})"),
            score.to_string(),
        ));
    }
    fields
}

/// One step of a replay, as the page shows it.
#[derive(Debug, Serialize)]
pub struct ReplayStep {
    /// 1-based.
    pub step: usize,
    pub steps: usize,
    pub event: RecordedEvent,
    /// The event in words (its context's description).
    pub summary: String,
    pub diff: Vec<FieldDiff>,
    pub changed: usize,
    /// First, previous, next and last: a step to go to, or none (shown, not linked).
    pub nav: [StepLink; 4],
}

#[derive(Debug, Serialize)]
pub struct StepLink {
    pub label: &'static str,
    pub rel: &'static str,
    pub step: Option<usize>,
}

/// Step `step` (1-based; clamped into range, the last when `None`) of a replay of `events`, or
/// `None` when the stream type has no fold or there are no events.
pub fn step(
    stream_type: &str,
    events: &[RecordedEvent],
    step: Option<usize>,
) -> Option<Result<ReplayStep, DecodeError>> {
    let steps = events.len();
    if steps == 0 {
        return None;
    }
    let states = match states(stream_type, events)? {
        Ok(s) => s,
        Err(e) => return Some(Err(e)),
    };
    let n = step.unwrap_or(steps).clamp(1, steps);
    let before = if n > 1 {
        states[n - 2].clone()
    } else {
        Fields::new()
    };
    let diff = diff(&before, &states[n - 1]);
    let changed = diff.iter().filter(|d| d.change != Change::Same).count();
    Some(Ok(ReplayStep {
        step: n,
        steps,
        event: events[n - 1].clone(),
        summary: super::describe::describe(&events[n - 1]).summary,
        changed,
        diff,
        nav: [
            ("« First", "first", (n > 1).then_some(1)),
            ("‹ Previous", "prev", (n > 1).then_some(n - 1)),
            ("Next ›", "next", (n < steps).then_some(n + 1)),
            ("Last »", "last", (n < steps).then_some(steps)),
        ]
        .map(|(label, rel, step)| StepLink { label, rel, step }),
    }))
}

// ---------------------------------------------------------------- pages

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(replay_fragment);
}

#[derive(Debug, Default, Deserialize)]
pub struct StepQuery {
    #[serde(default)]
    pub step: Option<String>,
}

impl StepQuery {
    /// The step asked for: none, or a positive whole number.
    pub fn parse(&self) -> Result<Option<usize>, AppError> {
        match self.step.as_deref().map(str::trim) {
            None | Some("") => Ok(None),
            Some(raw) => raw
                .parse::<usize>()
                .ok()
                .filter(|n| *n > 0)
                .map(Some)
                .ok_or_else(|| {
                    AppError::BadRequest(format!(
                        "{raw:?} is not a step: use a whole number from 1"
                    ))
                }),
        }
    }
}

/// Put the replay of `history` at `step` into a history page's context (as `replay`, with
/// `replay_base`, the page's address for the stepper's links).
pub fn insert(
    ctx: &mut Context,
    stream_type: &str,
    stream_id: &str,
    history: &[RecordedEvent],
    step_asked: Option<usize>,
) -> Result<(), AppError> {
    let replay = step(stream_type, history, step_asked)
        .transpose()
        .map_err(AppError::internal)?;
    ctx.insert("replay", &replay);
    ctx.insert(
        "replay_base",
        &format!(
            "/history/{}/{}",
            percent_encode(stream_type),
            percent_encode(stream_id)
        ),
    );
    Ok(())
}

/// The stepper alone, for HTMX; without HTMX, the history page at that step.
#[get("/history/{stream_type}/{stream_id}/replay")]
async fn replay_fragment(
    req: HttpRequest,
    viewer: Viewer,
    registry: web::Data<Registry>,
    path: web::Path<(String, String)>,
    query: web::Query<StepQuery>,
) -> Result<HttpResponse, AppError> {
    let (stream_type, stream_id) = path.into_inner();
    let asked = query.parse()?;
    if !is_htmx(&req) {
        let mut location = format!(
            "/history/{}/{}",
            percent_encode(&stream_type),
            percent_encode(&stream_id)
        );
        if let Some(n) = asked {
            location.push_str(&format!("?step={n}"));
        }
        location.push_str("#replay");
        return Ok(HttpResponse::SeeOther()
            .insert_header(("Location", location))
            .finish());
    }
    let history = history_or_404(&req, viewer, registry, &stream_type, &stream_id).await?;
    let mut ctx = Context::new();
    insert(&mut ctx, &stream_type, &stream_id, &history, asked)?;
    render(&req, "ops/_replay.html", "ops/_replay.html", ctx)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_diff_marks_what_changed_was_added_and_was_removed() {
        let before = vec![field("A", "1"), field("B", "2"), field("C", "3")];
        let after = vec![field("A", "1"), field("B", "5"), field("D", "4")];
        let d = diff(&before, &after);
        let changes: Vec<(&str, Change)> = d.iter().map(|d| (d.label.as_str(), d.change)).collect();
        assert_eq!(
            changes,
            [
                ("A", Change::Same),
                ("B", Change::Changed),
                ("D", Change::Added),
                ("C", Change::Removed)
            ]
        );
        assert_eq!(d[1].before.as_deref(), Some("2"));
        assert_eq!(d[1].after.as_deref(), Some("5"));
    }

    #[test]
    fn a_rescore_replaces_the_hits_score_in_the_session_fold() {
        let scored = SensorEvent::FileScored {
            file_id: "f".into(),
            session_id: "s".into(),
            integration: "av".into(),
            score: 40,
            signature: "Sig".into(),
            engine_version: None,
        };
        let rescored = SensorEvent::FileRescored {
            file_id: "f".into(),
            session_id: "s".into(),
            integration: "av".into(),
            new_score: 90,
            signature: "Sig".into(),
        };
        let s = SessionFold::fold([&scored, &rescored]);
        assert_eq!(s.hits.len(), 1);
        assert_eq!(session(&s).last().unwrap().value, "90");
    }
}
