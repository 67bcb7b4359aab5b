//! Queries of the scholarships read models. Each takes the viewer: students see only their own
//! applications, reviewers only those assigned to them, the committee (staff) all of them, and
//! nobody the review of their own application.

use std::collections::HashMap;

use chrono::{DateTime, NaiveDate, Utc};
use diesel::dsl::sql;
use diesel::prelude::*;
use diesel::sql_types::{Bool, Text};
use serde::Serialize;
use uuid::Uuid;

use super::commands::{format_cents, LabelledScore, Rubric};
use crate::accounts::{Role, Viewer};
use crate::es::RecordedEvent;
use crate::schema::{
    events, scholarship_applications as apps, scholarship_assignments as assignments,
    scholarship_decisions as decisions, scholarship_funds as funds, scholarship_reviews as reviews,
    users,
};
use crate::web::paging::{Column, ListSpec, Paging};

#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = funds, check_for_backend(diesel::pg::Pg))]
pub struct FundRow {
    pub id: Uuid,
    pub name: String,
    pub term: String,
    pub budget_cents: i64,
    pub awarded_cents: i64,
    pub criteria: String,
    pub opens_on: NaiveDate,
    pub closes_on: NaiveDate,
    pub is_open: bool,
    pub created_at: DateTime<Utc>,
}

/// A fund as pages show it: money already formatted.
#[derive(Debug, Clone, Serialize)]
pub struct FundView {
    pub id: Uuid,
    pub name: String,
    pub term: String,
    pub criteria: String,
    pub opens_on: NaiveDate,
    pub closes_on: NaiveDate,
    pub is_open: bool,
    pub budget_cents: i64,
    pub awarded_cents: i64,
    pub remaining_cents: i64,
    pub budget: String,
    pub awarded: String,
    pub remaining: String,
    /// Open and within its window today: students may apply.
    pub accepting: bool,
}

impl FundView {
    pub fn from_row(r: FundRow, today: NaiveDate) -> FundView {
        FundView {
            accepting: r.is_open && r.opens_on <= today && today <= r.closes_on,
            budget: format_cents(r.budget_cents),
            awarded: format_cents(r.awarded_cents),
            remaining: format_cents(r.budget_cents - r.awarded_cents),
            remaining_cents: r.budget_cents - r.awarded_cents,
            id: r.id,
            name: r.name,
            term: r.term,
            criteria: r.criteria,
            opens_on: r.opens_on,
            closes_on: r.closes_on,
            is_open: r.is_open,
            budget_cents: r.budget_cents,
            awarded_cents: r.awarded_cents,
        }
    }
}

/// The committee's reads of one thing answer "not found" to anyone else (the pages check the
/// role first, in words; this is the scope itself).
fn committee_only(viewer: &Viewer) -> QueryResult<()> {
    if viewer.role == Role::Staff {
        Ok(())
    } else {
        Err(diesel::result::Error::NotFound)
    }
}

pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

/// The staff's funds list: newest first unless sorted by a column, 25 a page.
pub const FUND_LIST: crate::web::paging::ListSpec = crate::web::paging::ListSpec {
    columns: &[
        crate::web::paging::Column::desc("created"),
        crate::web::paging::Column::asc("name"),
        crate::web::paging::Column::asc("term"),
        crate::web::paging::Column::desc("budget"),
        crate::web::paging::Column::desc("awarded"),
        crate::web::paging::Column::desc("remaining"),
    ],
    per_page: 25,
};

/// Order funds by a [`FUND_LIST`] column (terms in calendar order); the list's own order (newest
/// first) breaks ties, so pages never overlap.
pub fn sort_funds(funds: &mut [FundView], column: &str, desc: bool) {
    use std::cmp::Ordering;
    let key = |a: &FundView, b: &FundView| -> Ordering {
        match column {
            "name" => a.name.to_lowercase().cmp(&b.name.to_lowercase()),
            "term" => {
                crate::web::format::term_key(&a.term).cmp(&crate::web::format::term_key(&b.term))
            }
            "budget" => a.budget_cents.cmp(&b.budget_cents),
            "awarded" => a.awarded_cents.cmp(&b.awarded_cents),
            "remaining" => a.remaining_cents.cmp(&b.remaining_cents),
            _ => Ordering::Equal,
        }
    };
    if column == "created" && desc {
        return; // already newest first
    }
    if column == "created" {
        funds.reverse();
        return;
    }
    // A stable sort keeps the newest-first order among equals.
    funds.sort_by(|a, b| if desc { key(b, a) } else { key(a, b) });
}

/// Every fund, for the staff's funds page.
pub fn funds_for_staff(conn: &mut PgConnection, viewer: &Viewer) -> QueryResult<Vec<FundView>> {
    if viewer.role != Role::Staff {
        return Ok(Vec::new());
    }
    let t = today();
    Ok(funds::table
        .order((funds::created_at.desc(), funds::id))
        .select(FundRow::as_select())
        .load(conn)?
        .into_iter()
        .map(|r| FundView::from_row(r, t))
        .collect())
}

/// One fund, for the committee.
pub fn fund(conn: &mut PgConnection, viewer: &Viewer, id: Uuid) -> QueryResult<FundView> {
    committee_only(viewer)?;
    let row = funds::table
        .find(id)
        .select(FundRow::as_select())
        .first(conn)?;
    Ok(FundView::from_row(row, today()))
}

/// Funds a student may apply to today, with whether the viewer already applied.
#[derive(Debug, Serialize)]
pub struct OpenFund {
    pub fund: FundView,
    pub applied: bool,
}

pub fn open_funds(conn: &mut PgConnection, viewer: &Viewer) -> QueryResult<Vec<OpenFund>> {
    let t = today();
    let rows = funds::table
        .filter(funds::is_open.eq(true))
        .filter(funds::opens_on.le(t))
        .filter(funds::closes_on.ge(t))
        .order((funds::closes_on.asc(), funds::name.asc()))
        .select(FundRow::as_select())
        .load(conn)?;
    let ids: Vec<Uuid> = rows.iter().map(|r| r.id).collect();
    let applied: Vec<Uuid> = apps::table
        .filter(apps::student_id.eq(viewer.user_id))
        .filter(apps::fund_id.eq_any(&ids))
        .select(apps::fund_id)
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|r| OpenFund {
            applied: applied.contains(&r.id),
            fund: FundView::from_row(r, t),
        })
        .collect())
}

#[derive(Debug, Clone, Queryable, Selectable, Serialize)]
#[diesel(table_name = apps, check_for_backend(diesel::pg::Pg))]
pub struct ApplicationRow {
    pub id: Uuid,
    pub fund_id: Uuid,
    pub student_id: Uuid,
    pub statement: String,
    pub submitted_at: DateTime<Utc>,
    pub outcome: String,
    pub decision_reason: Option<String>,
    pub decided_at: Option<DateTime<Utc>>,
    pub award_cents: Option<i64>,
    pub award_status: Option<String>,
    pub review_count: i32,
    pub avg_score: Option<f64>,
}

/// An application with its fund's and applicant's names, money formatted.
#[derive(Debug, Clone, Serialize)]
pub struct ApplicationView {
    #[serde(flatten)]
    pub row: ApplicationRow,
    pub fund_name: String,
    pub fund_term: String,
    pub student_name: String,
    pub award: Option<String>,
    pub avg: Option<String>,
}

pub(crate) fn view(
    row: ApplicationRow,
    fund_name: String,
    fund_term: String,
    student_name: String,
) -> ApplicationView {
    ApplicationView {
        award: row.award_cents.map(format_cents),
        avg: row.avg_score.map(|s| format!("{s:.2}")),
        row,
        fund_name,
        fund_term,
        student_name,
    }
}

/// The student's own applications and their decisions.
pub fn my_applications(
    conn: &mut PgConnection,
    viewer: &Viewer,
) -> QueryResult<Vec<ApplicationView>> {
    let rows: Vec<(ApplicationRow, String, String)> = apps::table
        .inner_join(funds::table.on(funds::id.eq(apps::fund_id)))
        .filter(apps::student_id.eq(viewer.user_id))
        .order(apps::submitted_at.desc())
        .select((ApplicationRow::as_select(), funds::name, funds::term))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(r, name, term)| view(r, name, term, viewer.display_name.clone()))
        .collect())
}

/// One application as the viewer may see it: the applicant sees their own; staff see any
/// application but their own. Everyone else gets 404, as if it did not exist.
pub fn application(
    conn: &mut PgConnection,
    viewer: &Viewer,
    id: Uuid,
) -> QueryResult<ApplicationView> {
    let (row, fund_name, fund_term, student_name): (ApplicationRow, String, String, String) =
        apps::table
            .inner_join(funds::table.on(funds::id.eq(apps::fund_id)))
            .inner_join(users::table.on(users::id.eq(apps::student_id)))
            .filter(apps::id.eq(id))
            .select((
                ApplicationRow::as_select(),
                funds::name,
                funds::term,
                users::display_name,
            ))
            .first(conn)?;
    let own = row.student_id == viewer.user_id;
    let committee = viewer.role == Role::Staff && !own;
    if !own && !committee {
        return Err(diesel::result::Error::NotFound);
    }
    Ok(view(row, fund_name, fund_term, student_name))
}

/// An assigned reviewer's view of an application: 404 unless assigned (and not their own).
pub fn application_for_review(
    conn: &mut PgConnection,
    viewer: &Viewer,
    id: Uuid,
) -> QueryResult<(ApplicationView, Option<ReviewView>)> {
    committee_only(viewer)?;
    let assigned: i64 = assignments::table
        .filter(assignments::application_id.eq(id))
        .filter(assignments::reviewer_id.eq(viewer.user_id))
        .count()
        .get_result(conn)?;
    if assigned == 0 {
        return Err(diesel::result::Error::NotFound);
    }
    let app = application(conn, viewer, id)?;
    let mine = reviews_of(conn, &[id])?
        .remove(&id)
        .unwrap_or_default()
        .into_iter()
        .find(|r| r.reviewer_id == viewer.user_id);
    Ok((app, mine))
}

#[derive(Debug, Clone, Serialize)]
pub struct ReviewView {
    pub reviewer_id: Uuid,
    pub reviewer: String,
    pub scores: Vec<i32>,
    /// The scores with the rubric's names ("Academic merit 5").
    pub criteria: Vec<LabelledScore>,
    pub score: String,
    pub comment: String,
    pub revision: i32,
    pub updated_at: DateTime<Utc>,
}

/// Current reviews of some applications, by application.
fn reviews_of(
    conn: &mut PgConnection,
    ids: &[Uuid],
) -> QueryResult<HashMap<Uuid, Vec<ReviewView>>> {
    type Row = (
        Uuid,
        Uuid,
        String,
        Vec<i32>,
        f64,
        String,
        i32,
        DateTime<Utc>,
    );
    let rows: Vec<Row> = reviews::table
        .inner_join(users::table.on(users::id.eq(reviews::reviewer_id)))
        .filter(reviews::application_id.eq_any(ids))
        .order((reviews::application_id, users::display_name))
        .select((
            reviews::application_id,
            reviews::reviewer_id,
            users::display_name,
            reviews::scores,
            reviews::score,
            reviews::comment,
            reviews::revision,
            reviews::updated_at,
        ))
        .load(conn)?;
    let mut out: HashMap<Uuid, Vec<ReviewView>> = HashMap::new();
    for (app, reviewer_id, reviewer, scores, score, comment, revision, updated_at) in rows {
        out.entry(app).or_default().push(ReviewView {
            reviewer_id,
            reviewer,
            criteria: Rubric::labelled(&scores),
            scores,
            score: format!("{score:.2}"),
            comment,
            revision,
            updated_at,
        });
    }
    Ok(out)
}

#[derive(Debug, Serialize)]
pub struct BoardRow {
    #[serde(flatten)]
    pub app: ApplicationView,
    pub reviews: Vec<ReviewView>,
    pub reviewers: Vec<String>,
    /// The staff the committee may still assign: active staff, not the applicant, not assigned.
    pub assignable: Vec<StaffMember>,
}

#[derive(Debug, Serialize)]
pub struct Board {
    pub rows: Vec<BoardRow>,
    pub total: i64,
}

/// The committee board: ranked by average score unless sorted by another column, 50 a page.
pub const BOARD_LIST: ListSpec = ListSpec {
    columns: &[
        Column::desc("average"),
        Column::asc("applicant"),
        Column::desc("reviews"),
    ],
    per_page: BOARD_PAGE,
};

pub const BOARD_PAGE: i64 = 50;

/// Order applications by a [`BOARD_LIST`] column, in memory (the board as of a moment). The
/// live board's order breaks ties: average (unreviewed last), oldest, id.
pub fn sort_board(rows: &mut [(ApplicationRow, String)], column: &str, desc: bool) {
    use std::cmp::Ordering;
    let by_rank = |a: &ApplicationRow, b: &ApplicationRow| {
        match (a.avg_score, b.avg_score) {
            (Some(x), Some(y)) => y.total_cmp(&x),
            (Some(_), None) => Ordering::Less,
            (None, Some(_)) => Ordering::Greater,
            (None, None) => Ordering::Equal,
        }
        .then(a.submitted_at.cmp(&b.submitted_at))
        .then(a.id.cmp(&b.id))
    };
    rows.sort_by(|(a, an), (b, bn)| {
        let key = match column {
            "applicant" => an.to_lowercase().cmp(&bn.to_lowercase()),
            "reviews" => a.review_count.cmp(&b.review_count),
            // The average, ascending or descending; unreviewed last either way.
            _ => match (a.avg_score, b.avg_score) {
                (Some(x), Some(y)) => x.total_cmp(&y),
                _ => return by_rank(a, b),
            },
        };
        if desc { key.reverse() } else { key }.then_with(|| by_rank(a, b))
    });
}

/// The committee board: a fund's applications ranked by average review score (unreviewed
/// last, then oldest first) or sorted by another column, with their reviews beside them, one
/// page at a time.
pub fn board(
    conn: &mut PgConnection,
    viewer: &Viewer,
    fund_id: Uuid,
    paging: &mut Paging,
) -> QueryResult<Board> {
    committee_only(viewer)?;
    let total: i64 = apps::table
        .filter(apps::fund_id.eq(fund_id))
        .filter(apps::student_id.ne(viewer.user_id))
        .count()
        .get_result(conn)?;
    paging.clamp(total);
    let (limit, offset, desc) = (paging.limit(), paging.offset(), paging.desc);
    let ranked = (
        apps::avg_score.desc().nulls_last(),
        apps::submitted_at.asc(),
        apps::id.asc(),
    );
    let rows: Vec<(ApplicationRow, String)> = if paging.sort == "applicant" {
        // By name: the names come first, so the students are joined before paging.
        let query = apps::table
            .inner_join(users::table.on(users::id.eq(apps::student_id)))
            .filter(apps::fund_id.eq(fund_id))
            .filter(apps::student_id.ne(viewer.user_id))
            .select((ApplicationRow::as_select(), users::display_name))
            .into_boxed();
        let query = if desc {
            query.order(users::display_name.desc())
        } else {
            query.order(users::display_name.asc())
        };
        query
            .then_order_by(ranked)
            .limit(limit)
            .offset(offset)
            .load(conn)?
    } else {
        // The page's rows alone first (ranked, this walks the board index), then the names of
        // those 50 students: joining the names before paging was slow deep in a large board.
        let query = apps::table
            .filter(apps::fund_id.eq(fund_id))
            .filter(apps::student_id.ne(viewer.user_id))
            .select(ApplicationRow::as_select())
            .into_boxed();
        let query = match (paging.sort, desc) {
            ("reviews", false) => query.order(apps::review_count.asc()),
            ("reviews", true) => query.order(apps::review_count.desc()),
            (_, false) => query.order(apps::avg_score.asc().nulls_last()),
            (_, true) => query.order(apps::avg_score.desc().nulls_last()),
        };
        let page_rows: Vec<ApplicationRow> = query
            .then_order_by(ranked)
            .limit(limit)
            .offset(offset)
            .load(conn)?;
        let student_ids: Vec<Uuid> = page_rows.iter().map(|r| r.student_id).collect();
        let names = crate::accounts::queries::display_names(conn, &student_ids)?;
        page_rows
            .into_iter()
            .map(|r| {
                let name = names.get(&r.student_id).cloned().unwrap_or_default();
                (r, name)
            })
            .collect()
    };
    let ids: Vec<Uuid> = rows.iter().map(|(r, _)| r.id).collect();
    let mut reviews = reviews_of(conn, &ids)?;
    let assigned: Vec<(Uuid, Uuid, String)> = assignments::table
        .inner_join(users::table.on(users::id.eq(assignments::reviewer_id)))
        .filter(assignments::application_id.eq_any(&ids))
        .order(users::display_name)
        .select((
            assignments::application_id,
            assignments::reviewer_id,
            users::display_name,
        ))
        .load(conn)?;
    let mut reviewers: HashMap<Uuid, Vec<String>> = HashMap::new();
    let mut taken: HashMap<Uuid, Vec<Uuid>> = HashMap::new();
    for (app, reviewer, name) in assigned {
        reviewers.entry(app).or_default().push(name);
        taken.entry(app).or_default().push(reviewer);
    }
    let staff = staff_members(conn, viewer)?;
    let assignable = |app: Uuid, student: Uuid| -> Vec<StaffMember> {
        let taken = taken.get(&app).map(Vec::as_slice).unwrap_or_default();
        staff
            .iter()
            .filter(|s| s.id != student && !taken.contains(&s.id))
            .cloned()
            .collect()
    };
    Ok(Board {
        rows: rows
            .into_iter()
            .map(|(r, student)| {
                let id = r.id;
                BoardRow {
                    assignable: assignable(id, r.student_id),
                    app: view(r, String::new(), String::new(), student),
                    reviews: reviews.remove(&id).unwrap_or_default(),
                    reviewers: reviewers.remove(&id).unwrap_or_default(),
                }
            })
            .collect(),
        total,
    })
}

#[derive(Debug, Clone, Serialize)]
pub struct StaffMember {
    pub id: Uuid,
    pub display_name: String,
}

/// Staff who may be assigned as reviewers.
pub fn staff_members(conn: &mut PgConnection, viewer: &Viewer) -> QueryResult<Vec<StaffMember>> {
    if viewer.role != Role::Staff {
        return Ok(Vec::new());
    }
    Ok(users::table
        .filter(users::role.eq("staff"))
        .filter(users::active.eq(true))
        .order(users::display_name)
        .select((users::id, users::display_name))
        .load::<(Uuid, String)>(conn)?
        .into_iter()
        .map(|(id, display_name)| StaffMember { id, display_name })
        .collect())
}

#[derive(Debug, Clone, Serialize)]
pub struct QueueItem {
    pub application_id: Uuid,
    pub fund_name: String,
    pub student_name: String,
    pub submitted_at: DateTime<Utc>,
    pub outcome: String,
    pub my_score: Option<String>,
    pub revision: Option<i32>,
}

/// The applications assigned to `reviewer` (never their own), with the reviewer's review of each
/// if there is one.
#[diesel::dsl::auto_type]
fn assigned_to(reviewer: Uuid) -> _ {
    assignments::table
        .inner_join(apps::table.on(apps::id.eq(assignments::application_id)))
        .inner_join(funds::table.on(funds::id.eq(apps::fund_id)))
        .inner_join(users::table.on(users::id.eq(apps::student_id)))
        .left_join(
            reviews::table.on(reviews::application_id
                .eq(assignments::application_id)
                .and(reviews::reviewer_id.eq(assignments::reviewer_id))),
        )
        .filter(assignments::reviewer_id.eq(reviewer))
        .filter(apps::student_id.ne(reviewer))
}

/// The columns of a [`QueueRow`].
#[diesel::dsl::auto_type]
fn queue_columns() -> _ {
    (
        apps::id,
        funds::name,
        users::display_name,
        apps::submitted_at,
        apps::outcome,
        reviews::score.nullable(),
        reviews::revision.nullable(),
    )
}

/// A reviewer's applications to score: oldest first unless sorted by a column, 25 a page.
pub const QUEUE_TO_DO: ListSpec = ListSpec {
    columns: &[
        Column::asc("applied"),
        Column::asc("applicant"),
        Column::asc("fund"),
    ],
    per_page: 25,
};

/// A reviewer's scored applications: oldest first unless sorted by a column, 25 a page.
pub const QUEUE_SCORED: ListSpec = ListSpec {
    columns: &[
        Column::asc("applied"),
        Column::asc("applicant"),
        Column::asc("fund"),
        Column::desc("score"),
    ],
    per_page: 25,
};

/// One page of the reviewer's queue and how many it holds.
#[derive(Debug, Serialize)]
pub struct QueuePage {
    pub items: Vec<QueueItem>,
    pub total: i64,
}

/// One page of the viewer's queue: the applications assigned to them (never their own) that
/// they have not scored yet, or (`scored`) those they have.
pub fn queue_page(
    conn: &mut PgConnection,
    viewer: &Viewer,
    scored: bool,
    paging: &mut Paging,
) -> QueryResult<QueuePage> {
    if viewer.role != Role::Staff {
        return Ok(QueuePage {
            items: Vec::new(),
            total: 0,
        });
    }
    let base = || {
        let q = assigned_to(viewer.user_id).into_boxed();
        if scored {
            q.filter(reviews::score.is_not_null())
        } else {
            q.filter(reviews::score.is_null())
        }
    };
    let total: i64 = base().count().get_result(conn)?;
    paging.clamp(total);
    let mut query = base().select(queue_columns());
    query = match (paging.sort, paging.desc) {
        ("applicant", false) => query.order(users::display_name.asc()),
        ("applicant", true) => query.order(users::display_name.desc()),
        ("fund", false) => query.order(funds::name.asc()),
        ("fund", true) => query.order(funds::name.desc()),
        ("score", false) => query.order(reviews::score.asc()),
        ("score", true) => query.order(reviews::score.desc()),
        (_, false) => query.order(apps::submitted_at.asc()),
        (_, true) => query.order(apps::submitted_at.desc()),
    };
    let rows: Vec<QueueRow> = query
        .then_order_by((apps::submitted_at.asc(), apps::id.asc()))
        .limit(paging.limit())
        .offset(paging.offset())
        .load(conn)?;
    Ok(QueuePage {
        items: rows.into_iter().map(QueueItem::from).collect(),
        total,
    })
}

/// A queue row as selected: application, fund, applicant, applied, outcome, score, revision.
type QueueRow = (
    Uuid,
    String,
    String,
    DateTime<Utc>,
    String,
    Option<f64>,
    Option<i32>,
);

impl From<QueueRow> for QueueItem {
    fn from(r: QueueRow) -> QueueItem {
        let (application_id, fund_name, student_name, submitted_at, outcome, score, revision) = r;
        QueueItem {
            application_id,
            fund_name,
            student_name,
            submitted_at,
            outcome,
            my_score: score.map(|s| format!("{s:.2}")),
            revision,
        }
    }
}

/// The application to score after `current` in the viewer's queue (the first when `current` is
/// not in it), other than `current`: the review page's "Next application".
pub fn next_to_review(
    conn: &mut PgConnection,
    viewer: &Viewer,
    current: Option<Uuid>,
) -> QueryResult<Option<QueueItem>> {
    if viewer.role != Role::Staff {
        return Ok(None);
    }
    let to_do: Vec<QueueItem> = assigned_to(viewer.user_id)
        .filter(reviews::score.is_null())
        .order((apps::submitted_at.asc(), apps::id.asc()))
        .select(queue_columns())
        .load::<QueueRow>(conn)?
        .into_iter()
        .map(QueueItem::from)
        .collect();
    let at = current.and_then(|c| to_do.iter().position(|q| q.application_id == c));
    let next = match at {
        Some(i) => to_do.iter().skip(i + 1).chain(&to_do[..i]).next(),
        None => to_do.first(),
    };
    Ok(next.cloned())
}

/// One line of an application's history, in words.
#[derive(Debug, Serialize)]
pub struct HistoryItem {
    pub position: i64,
    pub event_type: String,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub summary: String,
}

fn summarize(e: &RecordedEvent, names: &HashMap<Uuid, String>) -> String {
    let p = &e.payload;
    let reviewer = p
        .get("reviewer_id")
        .and_then(|v| v.as_str())
        .and_then(|s| s.parse::<Uuid>().ok())
        .and_then(|id| names.get(&id).cloned())
        .unwrap_or_else(|| "a reviewer".into());
    let s = |k: &str| p.get(k).and_then(|v| v.as_str()).unwrap_or("").to_owned();
    let cents = |k: &str| {
        p.get(k)
            .and_then(|v| v.as_i64())
            .map(format_cents)
            .unwrap_or_default()
    };
    match e.event_type.as_str() {
        "ScholarshipApplied" => format!("applied: “{}”", s("statement")),
        "ReviewerAssigned" => format!("{reviewer} was assigned to review"),
        "ReviewSubmitted" | "ReviewRevised" => {
            let scores: Vec<String> = p
                .get("scores")
                .and_then(|v| v.as_array())
                .map(|a| {
                    a.iter()
                        .zip(Rubric::CRITERIA)
                        .map(|(v, (_, label))| format!("{label} {v}"))
                        .collect()
                })
                .unwrap_or_default();
            format!(
                "{reviewer}, revision {}: {}; “{}”",
                p.get("revision").and_then(|v| v.as_i64()).unwrap_or(1),
                scores.join(", "),
                s("comment")
            )
        }
        "AwardGranted" => format!("awarded {}: {}", cents("amount_cents"), s("reason")),
        "ApplicationDeclined" => format!("declined: {}", s("reason")),
        "ApplicationWaitlisted" => format!("waitlisted: {}", s("reason")),
        "AwardAccepted" => "the student accepted the award".into(),
        "AwardRefused" => "the student refused the award".into(),
        "AwardDisbursed" => format!("{} disbursed: {}", cents("amount_cents"), s("reason")),
        "AwardRevoked" => format!("{} revoked: {}", cents("amount_cents"), s("reason")),
        "AwardImported" => format!(
            "imported from the legacy system: award {} ({} in {}, legacy status {}, last changed {}), now {}",
            s("legacy_id"),
            cents("amount_cents"),
            s("source"),
            s("legacy_status"),
            s("legacy_updated_at"),
            s("status")
        ),
        other => other.to_owned(),
    }
}

/// The full history of an application: its own stream, every revision of every review and
/// every decision and award change on the fund. The applicant sees no reviews or reviewers.
pub fn history(
    conn: &mut PgConnection,
    viewer: &Viewer,
    app: &ApplicationView,
) -> QueryResult<Vec<HistoryItem>> {
    let id = app.row.id;
    let applicant_view = app.row.student_id == viewer.user_id;
    let review_streams: Vec<String> = if applicant_view {
        Vec::new()
    } else {
        assignments::table
            .filter(assignments::application_id.eq(id))
            .select(assignments::reviewer_id)
            .load::<Uuid>(conn)?
            .into_iter()
            .map(|r| super::events::review_stream_id(id, r))
            .collect()
    };
    let on_application = events::stream_type
        .eq("scholarship_application")
        .and(events::stream_id.eq(id.to_string()));
    let on_reviews = events::stream_type
        .eq("scholarship_review")
        .and(events::stream_id.eq_any(review_streams));
    let on_fund = events::stream_type
        .eq("fund")
        .and(events::stream_id.eq(app.row.fund_id.to_string()))
        .and(sql::<Bool>("payload->>'application_id' = ").bind::<Text, _>(id.to_string()));
    let found: Vec<RecordedEvent> = events::table
        .filter(on_application.or(on_reviews).or(on_fund))
        .order(events::position.asc())
        .select(RecordedEvent::as_select())
        .load(conn)?;
    let found: Vec<RecordedEvent> = found
        .into_iter()
        .filter(|e| !(applicant_view && e.event_type == "ReviewerAssigned"))
        .collect();
    let ids: Vec<Uuid> = found
        .iter()
        .filter_map(|e| e.actor().and_then(|a| a.user_id()))
        .chain(found.iter().filter_map(|e| {
            e.payload
                .get("reviewer_id")
                .and_then(|v| v.as_str())
                .and_then(|s| s.parse().ok())
        }))
        .collect();
    let names = crate::accounts::queries::display_names(conn, &ids)?;
    Ok(found
        .iter()
        .map(|e| HistoryItem {
            position: e.position,
            event_type: e.event_type.clone(),
            recorded_at: e.recorded_at,
            actor: match e.actor() {
                Some(crate::es::Actor::User(u)) if applicant_view && u != viewer.user_id => {
                    "the committee".into()
                }
                Some(crate::es::Actor::User(u)) => {
                    names.get(&u).cloned().unwrap_or_else(|| "a user".into())
                }
                Some(crate::es::Actor::System(n)) => format!("system ({n})"),
                Some(crate::es::Actor::Cli) => "command line".into(),
                _ => "unknown".into(),
            },
            summary: summarize(e, &names),
        })
        .collect())
}

#[derive(Debug, Serialize)]
pub struct DecisionLine {
    pub position: i64,
    pub recorded_at: DateTime<Utc>,
    pub application_id: Uuid,
    pub student: String,
    pub kind: String,
    pub amount: String,
    pub amount_cents: Option<i64>,
    pub reason: String,
    pub actor: String,
}

#[derive(Debug, Serialize)]
pub struct OutcomeCount {
    pub outcome: String,
    pub count: i64,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub fund: FundView,
    pub applications: i64,
    pub outcomes: Vec<OutcomeCount>,
    pub award_statuses: Vec<OutcomeCount>,
    pub decided: i64,
    /// Time from application to decision, in days (one decimal), over decided applications.
    pub avg_days_to_decision: Option<String>,
    pub max_days_to_decision: Option<String>,
    pub history: Vec<DecisionLine>,
    pub history_total: i64,
}

#[derive(QueryableByName)]
struct Timing {
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    decided: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    avg_days: Option<f64>,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Double>)]
    max_days: Option<f64>,
}

/// How many history lines the report page shows (the CSV has them all).
pub const REPORT_HISTORY_LINES: i64 = 200;

/// The fund report: budget, awarded, remaining, counts by outcome, time to decision and the
/// decision history (newest first; `history_limit` None for all of it, as the CSV wants).
pub fn report(
    conn: &mut PgConnection,
    viewer: &Viewer,
    fund_id: Uuid,
    history_limit: Option<i64>,
) -> QueryResult<Report> {
    let fund = fund(conn, viewer, fund_id)?;
    let outcomes: Vec<(String, i64)> = apps::table
        .filter(apps::fund_id.eq(fund_id))
        .group_by(apps::outcome)
        .select((apps::outcome, diesel::dsl::count_star()))
        .load(conn)?;
    let statuses: Vec<(Option<String>, i64)> = apps::table
        .filter(apps::fund_id.eq(fund_id))
        .filter(apps::award_status.is_not_null())
        .group_by(apps::award_status)
        .select((apps::award_status, diesel::dsl::count_star()))
        .load(conn)?;
    let count = |name: &str| {
        outcomes
            .iter()
            .find(|(o, _)| o == name)
            .map_or(0, |(_, n)| *n)
    };
    let timing: Timing = diesel::sql_query(
        "SELECT count(*) AS decided, \
                avg(extract(epoch FROM decided_at - submitted_at))::float8 / 86400 AS avg_days, \
                max(extract(epoch FROM decided_at - submitted_at))::float8 / 86400 AS max_days \
         FROM scholarship_applications WHERE fund_id = $1 AND decided_at IS NOT NULL",
    )
    .bind::<diesel::sql_types::Uuid, _>(fund_id)
    .get_result(conn)?;
    let history_total: i64 = decisions::table
        .filter(decisions::fund_id.eq(fund_id))
        .count()
        .get_result(conn)?;
    let mut q = decisions::table
        .inner_join(users::table.on(users::id.eq(decisions::student_id)))
        .filter(decisions::fund_id.eq(fund_id))
        .order(decisions::position.desc())
        .select((
            decisions::position,
            decisions::recorded_at,
            decisions::application_id,
            users::display_name,
            decisions::kind,
            decisions::amount_cents,
            decisions::reason,
            decisions::actor,
        ))
        .into_boxed();
    if let Some(limit) = history_limit {
        q = q.limit(limit);
    }
    type Line = (
        i64,
        DateTime<Utc>,
        Uuid,
        String,
        String,
        Option<i64>,
        String,
        String,
    );
    let lines: Vec<Line> = q.load(conn)?;
    let actor_ids: Vec<Uuid> = lines.iter().filter_map(|l| l.7.parse().ok()).collect();
    let names = crate::accounts::queries::display_names(conn, &actor_ids)?;
    let history = lines
        .into_iter()
        .map(
            |(position, recorded_at, application_id, student, kind, amount, reason, actor)| {
                DecisionLine {
                    position,
                    recorded_at,
                    application_id,
                    student,
                    actor: actor
                        .parse::<Uuid>()
                        .ok()
                        .and_then(|id| names.get(&id).cloned())
                        .unwrap_or(actor),
                    kind,
                    amount: amount.map(format_cents).unwrap_or_default(),
                    amount_cents: amount,
                    reason,
                }
            },
        )
        .collect();
    let order = ["submitted", "awarded", "declined", "waitlisted"];
    Ok(Report {
        applications: outcomes.iter().map(|(_, n)| n).sum(),
        outcomes: order
            .iter()
            .map(|o| OutcomeCount {
                outcome: (*o).to_owned(),
                count: count(o),
            })
            .collect(),
        award_statuses: ["offered", "accepted", "refused", "disbursed", "revoked"]
            .iter()
            .map(|s| OutcomeCount {
                outcome: (*s).to_owned(),
                count: statuses
                    .iter()
                    .find(|(k, _)| k.as_deref() == Some(*s))
                    .map_or(0, |(_, n)| *n),
            })
            .collect(),
        decided: timing.decided,
        avg_days_to_decision: timing.avg_days.map(|d| format!("{d:.1}")),
        max_days_to_decision: timing.max_days.map(|d| format!("{d:.1}")),
        fund,
        history,
        history_total,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(n: u128, avg: Option<f64>, reviews: i32) -> (ApplicationRow, String) {
        let at = DateTime::<Utc>::from_timestamp(n as i64 * 60, 0).unwrap();
        let row = ApplicationRow {
            id: Uuid::from_u128(n),
            fund_id: Uuid::nil(),
            student_id: Uuid::from_u128(100 + n),
            statement: String::new(),
            submitted_at: at,
            outcome: "submitted".into(),
            decision_reason: None,
            decided_at: None,
            award_cents: None,
            award_status: None,
            review_count: reviews,
            avg_score: avg,
        };
        (row, format!("Student {n}"))
    }

    fn order(rows: &[(ApplicationRow, String)]) -> Vec<&str> {
        rows.iter().map(|(_, n)| n.as_str()).collect()
    }

    #[test]
    fn the_board_as_of_a_moment_sorts_as_the_live_board_does() {
        let mut rows = vec![
            row(1, None, 0),
            row(2, Some(3.0), 1),
            row(3, Some(4.5), 2),
            row(4, None, 0),
        ];
        sort_board(&mut rows, "average", true);
        assert_eq!(
            order(&rows),
            ["Student 3", "Student 2", "Student 1", "Student 4"]
        );
        // Ascending, the unreviewed stay last.
        sort_board(&mut rows, "average", false);
        assert_eq!(
            order(&rows),
            ["Student 2", "Student 3", "Student 1", "Student 4"]
        );
        sort_board(&mut rows, "applicant", true);
        assert_eq!(
            order(&rows),
            ["Student 4", "Student 3", "Student 2", "Student 1"]
        );
        // Equal counts keep the ranking.
        sort_board(&mut rows, "reviews", false);
        assert_eq!(
            order(&rows),
            ["Student 1", "Student 4", "Student 2", "Student 3"]
        );
    }
}
