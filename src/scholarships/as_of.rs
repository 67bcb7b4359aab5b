//! The scholarships pages as of a moment of the past (`?as_of=`): funds (budget, awarded,
//! remaining as they stood), a student's own page and one application's page, folded from the events recorded until then
//! by the fund decider's `evolve` (money, window, open) and the same rules as the projections
//! (names, outcomes), never read from the read models. Scoped like the live pages: the committee
//! sees every fund, a student only their own applications; an application's page is shown to
//! whom the live page is.

use std::collections::{BTreeMap, HashMap};

use chrono::{DateTime, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use uuid::Uuid;

use super::commands::mean;
use super::commands::Rubric;
use super::decider::{Fund, FundState};
use super::events::{ApplicationEvent, FundEvent, ReviewEvent};
use super::queries::{
    ApplicationRow, ApplicationView, Board, BoardRow, FundRow, FundView, OpenFund, ReviewView,
};
use crate::accounts::{Role, Viewer};
use crate::es::{Decider, RecordedEvent};
use crate::ops::as_of::AsOf;
use crate::schema::events;
use crate::web::paging::Paging;

/// One fund folded from its events.
#[derive(Default)]
struct FundFold {
    state: FundState,
    name: String,
    term: String,
    criteria: String,
    created_at: Option<DateTime<Utc>>,
}

/// Every fund as it stood, by id.
fn funds(log: &[RecordedEvent]) -> QueryResult<BTreeMap<Uuid, FundFold>> {
    let mut out: BTreeMap<Uuid, FundFold> = BTreeMap::new();
    for e in log {
        let Ok(id) = e.stream_id.parse::<Uuid>() else {
            continue;
        };
        let event: FundEvent = e.decode()?;
        let f = out.entry(id).or_default();
        if let FundEvent::FundCreated {
            name,
            term,
            criteria,
            ..
        } = &event
        {
            f.name = name.clone();
            f.term = term.clone();
            f.criteria = criteria.clone();
            f.created_at = Some(e.recorded_at);
        }
        f.state = Fund::evolve(std::mem::take(&mut f.state), &event);
    }
    out.retain(|_, f| f.state.created);
    Ok(out)
}

/// Every fund event recorded before `until`, in log order.
fn fund_events(conn: &mut PgConnection, until: DateTime<Utc>) -> QueryResult<Vec<RecordedEvent>> {
    events::table
        .filter(events::stream_type.eq(Fund::STREAM_TYPE))
        .filter(events::recorded_at.lt(until))
        .order(events::position.asc())
        .select(RecordedEvent::as_select())
        .load(conn)
}

fn row(id: Uuid, f: &FundFold) -> FundRow {
    FundRow {
        id,
        name: f.name.clone(),
        term: f.term.clone(),
        budget_cents: f.state.budget_cents,
        awarded_cents: f.state.committed_cents,
        criteria: f.criteria.clone(),
        opens_on: f.state.opens_on.unwrap_or_default(),
        closes_on: f.state.closes_on.unwrap_or_default(),
        is_open: f.state.is_open,
        created_at: f.created_at.unwrap_or_default(),
    }
}

/// The staff's funds page as it stood: the rows of `queries::funds_for_staff`, in its order.
pub fn funds_for_staff(
    conn: &mut PgConnection,
    viewer: &Viewer,
    as_of: &AsOf,
) -> QueryResult<Vec<FundView>> {
    if viewer.role != Role::Staff {
        return Ok(Vec::new());
    }
    let mut rows: Vec<FundRow> = funds(&fund_events(conn, as_of.until)?)?
        .iter()
        .map(|(id, f)| row(*id, f))
        .collect();
    rows.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(a.id.cmp(&b.id)));
    Ok(rows
        .into_iter()
        .map(|r| FundView::from_row(r, as_of.date()))
        .collect())
}

/// A student's page as it stood: the funds taking applications that day, and the student's
/// applications with their decisions (the rows of `queries::open_funds` and
/// `queries::my_applications`, in their order).
pub fn student_page(
    conn: &mut PgConnection,
    viewer: &Viewer,
    as_of: &AsOf,
) -> QueryResult<(Vec<OpenFund>, Vec<ApplicationView>)> {
    let fund_log = fund_events(conn, as_of.until)?;
    let funds = funds(&fund_log)?;
    // The viewer's own applications only: the scope is in the query.
    let applied: Vec<RecordedEvent> = events::table
        .filter(events::stream_type.eq("scholarship_application"))
        .filter(events::event_type.eq("ScholarshipApplied"))
        .filter(
            sql::<Bool>("(payload ->> 'student_id') = ")
                .bind::<Text, _>(viewer.user_id.to_string()),
        )
        .filter(events::recorded_at.lt(as_of.until))
        .order(events::position.asc())
        .select(RecordedEvent::as_select())
        .load(conn)?;
    let mut apps: HashMap<Uuid, ApplicationRow> = HashMap::new();
    for e in &applied {
        if let ApplicationEvent::ScholarshipApplied {
            fund_id,
            student_id,
            statement,
        } = e.decode()?
        {
            let id = e
                .stream_uuid()
                .map_err(|_| diesel::result::Error::NotFound)?;
            apps.insert(
                id,
                submitted(id, fund_id, student_id, statement, e.recorded_at),
            );
        }
    }
    // Decisions and award changes, as the applications projection applies them (an imported
    // award brings its application: the viewer's own only).
    for e in &fund_log {
        let event: FundEvent = e.decode()?;
        if let FundEvent::AwardImported { student_id, .. } = &event {
            if *student_id != viewer.user_id {
                continue;
            }
        }
        apply_decision(&mut apps, &event, e);
    }
    let d = as_of.date();
    let mut open: Vec<(Uuid, &FundFold)> = funds
        .iter()
        .filter(|(_, f)| {
            f.state.is_open
                && f.state.opens_on.is_some_and(|o| o <= d)
                && f.state.closes_on.is_some_and(|c| d <= c)
        })
        .map(|(id, f)| (*id, f))
        .collect();
    open.sort_by(|a, b| (a.1.state.closes_on, &a.1.name).cmp(&(b.1.state.closes_on, &b.1.name)));
    let open_funds = open
        .into_iter()
        .map(|(id, f)| OpenFund {
            applied: apps.values().any(|a| a.fund_id == id),
            fund: FundView::from_row(row(id, f), d),
        })
        .collect();
    let mut mine: Vec<ApplicationRow> = apps.into_values().collect();
    mine.sort_by_key(|a| std::cmp::Reverse(a.submitted_at));
    let views = mine
        .into_iter()
        .map(|r| {
            let (name, term) = funds
                .get(&r.fund_id)
                .map(|f| (f.name.clone(), f.term.clone()))
                .unwrap_or_default();
            super::queries::view(r, name, term, viewer.display_name.clone())
        })
        .collect();
    Ok((open_funds, views))
}

/// An application as it stands when submitted, before any decision or review.
fn submitted(
    id: Uuid,
    fund_id: Uuid,
    student_id: Uuid,
    statement: String,
    submitted_at: DateTime<Utc>,
) -> ApplicationRow {
    ApplicationRow {
        id,
        fund_id,
        student_id,
        statement,
        submitted_at,
        outcome: "submitted".into(),
        decision_reason: None,
        decided_at: None,
        award_cents: None,
        award_status: None,
        review_count: 0,
        avg_score: None,
    }
}

/// What one fund event (`recorded`, decoded as `event`) does to the application it is about
/// (the rules of the applications projection's `apply_decision`). An imported award brings its
/// application with it: callers pass only those the viewer may see.
fn apply_decision(
    apps: &mut HashMap<Uuid, ApplicationRow>,
    event: &FundEvent,
    recorded: &RecordedEvent,
) {
    use FundEvent as E;
    let at = recorded.recorded_at;
    let (id, status) = match event {
        E::AwardImported {
            application_id,
            student_id,
            amount_cents,
            status,
            legacy_id,
            legacy_status,
            ..
        } => {
            let Ok(fund_id) = recorded.stream_uuid() else {
                return;
            };
            let words = super::projections::imported_words(legacy_id, legacy_status);
            let mut row = submitted(*application_id, fund_id, *student_id, words.clone(), at);
            row.outcome = "awarded".into();
            row.award_cents = Some(*amount_cents);
            row.award_status = Some(status.as_str().into());
            row.decision_reason = Some(words);
            row.decided_at = Some(at);
            apps.insert(*application_id, row);
            return;
        }
        E::AwardGranted {
            application_id,
            amount_cents,
            reason,
            ..
        } => {
            if let Some(a) = apps.get_mut(application_id) {
                a.outcome = "awarded".into();
                a.award_cents = Some(*amount_cents);
                a.award_status = Some("offered".into());
                a.decision_reason = Some(reason.clone());
                a.decided_at = Some(at);
            }
            return;
        }
        E::ApplicationDeclined {
            application_id,
            reason,
            ..
        }
        | E::ApplicationWaitlisted {
            application_id,
            reason,
            ..
        } => {
            if let Some(a) = apps.get_mut(application_id) {
                a.outcome = if matches!(event, E::ApplicationDeclined { .. }) {
                    "declined".into()
                } else {
                    "waitlisted".into()
                };
                a.decision_reason = Some(reason.clone());
                a.decided_at = Some(at);
            }
            return;
        }
        E::AwardAccepted { application_id, .. } => (application_id, "accepted"),
        E::AwardRefused { application_id, .. } => (application_id, "refused"),
        E::AwardDisbursed { application_id, .. } => (application_id, "disbursed"),
        E::AwardRevoked { application_id, .. } => (application_id, "revoked"),
        E::FundCreated { .. } | E::FundOpened {} | E::FundClosed {} => return,
    };
    if let Some(a) = apps.get_mut(id) {
        a.award_status = Some(status.into());
    }
}

/// Visible-to-this-viewer events of `stream_type` recorded before `until` whose payload names
/// `application_id`, or (for the application's own stream) whose stream is it.
fn application_events(
    conn: &mut PgConnection,
    stream_type: &str,
    application_id: Uuid,
    until: DateTime<Utc>,
) -> QueryResult<Vec<RecordedEvent>> {
    let id = application_id.to_string();
    let mut query = events::table
        .filter(events::stream_type.eq(stream_type.to_owned()))
        .filter(events::recorded_at.lt(until))
        .into_boxed();
    query = if stream_type == "scholarship_application" {
        query.filter(events::stream_id.eq(id))
    } else {
        query.filter(sql::<Bool>("(payload ->> 'application_id') = ").bind::<Text, _>(id))
    };
    query
        .order(events::position.asc())
        .select(RecordedEvent::as_select())
        .load(conn)
}

/// One application's page as it stood: `live` (the application as the viewer may see it now,
/// which checks the scope) folded back from the events recorded until then, and its history up
/// to then (`live_history`, the lines the viewer may see now).
pub fn application(
    conn: &mut PgConnection,
    live: ApplicationView,
    live_history: Vec<super::queries::HistoryItem>,
    as_of: &AsOf,
) -> QueryResult<(ApplicationView, Vec<super::queries::HistoryItem>)> {
    let id = live.row.id;
    let applied = application_events(conn, "scholarship_application", id, as_of.until)?;
    let r = &live.row;
    let mut apps = HashMap::new();
    if let Some(e) = applied
        .iter()
        .find(|e| e.event_type == "ScholarshipApplied")
    {
        let row = submitted(
            id,
            r.fund_id,
            r.student_id,
            r.statement.clone(),
            e.recorded_at,
        );
        apps.insert(id, row);
    }
    for e in application_events(conn, Fund::STREAM_TYPE, id, as_of.until)? {
        apply_decision(&mut apps, &e.decode()?, &e);
    }
    // Not applied (nor imported) yet then: as if there were no such application.
    if !apps.contains_key(&id) {
        return Err(diesel::result::Error::NotFound);
    }
    // Reviews: each reviewer's latest revision counts, with the mean of its scores.
    let mut latest: HashMap<String, f64> = HashMap::new();
    for e in application_events(conn, "scholarship_review", id, as_of.until)? {
        let (ReviewEvent::ReviewSubmitted { scores, .. }
        | ReviewEvent::ReviewRevised { scores, .. }) = e.decode()?;
        latest.insert(e.stream_id.clone(), mean(&scores));
    }
    let mut row = apps.remove(&id).ok_or(diesel::result::Error::NotFound)?;
    row.review_count = latest.len() as i32;
    row.avg_score =
        (!latest.is_empty()).then(|| latest.values().sum::<f64>() / latest.len() as f64);
    let view = super::queries::view(row, live.fund_name, live.fund_term, live.student_name);
    let history = live_history
        .into_iter()
        .filter(|h| h.recorded_at < as_of.until)
        .collect();
    Ok((view, history))
}

/// One fund's committee board as it stood: the fund (budget, awarded, remaining, window, open)
/// folded by the fund decider, its applications then (each reviewer's latest revision, the
/// reviewers assigned, the decisions and award answers), ranked as the live board ranks them,
/// sorted and paged as the live board is. The committee's only, and without the committee member's own
/// application, as live; nothing to assign or decide in the past.
pub fn board(
    conn: &mut PgConnection,
    viewer: &Viewer,
    fund_id: Uuid,
    paging: &mut Paging,
    as_of: &AsOf,
) -> QueryResult<(FundView, Board)> {
    if viewer.role != Role::Staff {
        return Err(diesel::result::Error::NotFound);
    }
    let fund_log: Vec<RecordedEvent> = events::table
        .filter(events::stream_type.eq(Fund::STREAM_TYPE))
        .filter(events::stream_id.eq(fund_id.to_string()))
        .filter(events::recorded_at.lt(as_of.until))
        .order(events::position.asc())
        .select(RecordedEvent::as_select())
        .load(conn)?;
    let folded = funds(&fund_log)?;
    // Not created yet then: as if there were no such fund.
    let fund = folded
        .get(&fund_id)
        .ok_or(diesel::result::Error::NotFound)?;
    let fund_view = FundView::from_row(row(fund_id, fund), as_of.date());
    let applied: Vec<RecordedEvent> = events::table
        .filter(events::stream_type.eq("scholarship_application"))
        .filter(events::event_type.eq("ScholarshipApplied"))
        .filter(sql::<Bool>("(payload ->> 'fund_id') = ").bind::<Text, _>(fund_id.to_string()))
        .filter(events::recorded_at.lt(as_of.until))
        .order(events::position.asc())
        .select(RecordedEvent::as_select())
        .load(conn)?;
    let mut apps: HashMap<Uuid, ApplicationRow> = HashMap::new();
    for e in &applied {
        if let ApplicationEvent::ScholarshipApplied {
            fund_id,
            student_id,
            statement,
        } = e.decode()?
        {
            if student_id == viewer.user_id {
                continue;
            }
            let id = e
                .stream_uuid()
                .map_err(|_| diesel::result::Error::NotFound)?;
            apps.insert(
                id,
                submitted(id, fund_id, student_id, statement, e.recorded_at),
            );
        }
    }
    for e in &fund_log {
        let event: FundEvent = e.decode()?;
        if let FundEvent::AwardImported { student_id, .. } = &event {
            if *student_id == viewer.user_id {
                continue;
            }
        }
        apply_decision(&mut apps, &event, e);
    }
    let ids: Vec<String> = apps.keys().map(Uuid::to_string).collect();
    // Reviewers assigned then, and each reviewer's latest revision then.
    let assigned: Vec<RecordedEvent> = events::table
        .filter(events::stream_type.eq("scholarship_application"))
        .filter(events::event_type.eq("ReviewerAssigned"))
        .filter(events::stream_id.eq_any(&ids))
        .filter(events::recorded_at.lt(as_of.until))
        .order(events::position.asc())
        .select(RecordedEvent::as_select())
        .load(conn)?;
    let reviewed: Vec<RecordedEvent> = events::table
        .filter(events::stream_type.eq("scholarship_review"))
        .filter(
            sql::<Bool>("(payload ->> 'application_id') = ANY(")
                .bind::<diesel::sql_types::Array<Text>, _>(&ids)
                .sql(")"),
        )
        .filter(events::recorded_at.lt(as_of.until))
        .order(events::position.asc())
        .select(RecordedEvent::as_select())
        .load(conn)?;
    let mut reviewers: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for e in &assigned {
        if let (Ok(app), ApplicationEvent::ReviewerAssigned { reviewer_id }) =
            (e.stream_uuid(), e.decode()?)
        {
            reviewers.entry(app).or_default().push(reviewer_id);
        }
    }
    // (application, reviewer) -> (scores, comment, revision, at)
    type Latest = (Vec<i32>, String, i32, DateTime<Utc>);
    let mut latest: BTreeMap<(Uuid, Uuid), Latest> = BTreeMap::new();
    for e in &reviewed {
        let (ReviewEvent::ReviewSubmitted {
            application_id,
            reviewer_id,
            scores,
            comment,
            revision,
        }
        | ReviewEvent::ReviewRevised {
            application_id,
            reviewer_id,
            scores,
            comment,
            revision,
        }) = e.decode()?;
        latest.insert(
            (application_id, reviewer_id),
            (scores, comment, revision, e.recorded_at),
        );
    }
    let people: Vec<Uuid> = apps
        .values()
        .map(|a| a.student_id)
        .chain(reviewers.values().flatten().copied())
        .chain(latest.keys().map(|(_, r)| *r))
        .collect();
    let names = crate::accounts::queries::display_names(conn, &people)?;
    let name = |id: &Uuid| names.get(id).cloned().unwrap_or_default();
    let mut reviews: HashMap<Uuid, Vec<ReviewView>> = HashMap::new();
    for ((app, reviewer_id), (scores, comment, revision, updated_at)) in latest {
        reviews.entry(app).or_default().push(ReviewView {
            reviewer_id,
            reviewer: name(&reviewer_id),
            criteria: Rubric::labelled(&scores),
            score: format!("{:.2}", mean(&scores)),
            scores,
            comment,
            revision,
            updated_at,
        });
    }
    let mut rows: Vec<ApplicationRow> = apps.into_values().collect();
    for r in &mut rows {
        let mine = reviews.get(&r.id).map(Vec::as_slice).unwrap_or_default();
        r.review_count = mine.len() as i32;
        r.avg_score = (!mine.is_empty())
            .then(|| mine.iter().map(|v| mean(&v.scores)).sum::<f64>() / mine.len() as f64);
    }
    // Sorted like the live board.
    let mut rows: Vec<(ApplicationRow, String)> = rows
        .into_iter()
        .map(|r| {
            let student = name(&r.student_id);
            (r, student)
        })
        .collect();
    super::queries::sort_board(&mut rows, paging.sort, paging.desc);
    let total = rows.len() as i64;
    paging.clamp(total);
    let rows = rows
        .into_iter()
        .skip(paging.offset() as usize)
        .take(paging.limit() as usize)
        .map(|(r, student)| {
            let id = r.id;
            let mut mine = reviews.remove(&id).unwrap_or_default();
            mine.sort_by(|a, b| a.reviewer.cmp(&b.reviewer));
            let mut assigned: Vec<String> = reviewers
                .get(&id)
                .map(|rs| rs.iter().map(&name).collect())
                .unwrap_or_default();
            assigned.sort();
            BoardRow {
                app: super::queries::view(r, String::new(), String::new(), student),
                reviews: mine,
                reviewers: assigned,
                assignable: Vec::new(),
            }
        })
        .collect();
    Ok((fund_view, Board { rows, total }))
}
