//! Triage (issue 20.6): an analyst marks a file hash or a session as triaged, a false positive or
//! escalated, with a note. Each mark is a `ThreatTriaged` event of the subject's stream; the
//! `threat_triage` projection keeps every mark with the signatures of the hits the analyst could
//! see, and a viewer reads a mark only when they may see every one of those signatures: a note
//! about a hit is never shown to someone who may not see the hit. A subject with no hit the
//! analyst may see cannot be triaged by them.

use std::collections::{HashMap, HashSet};

use actix_web::http::StatusCode;
use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Int8, Text, Timestamptz};
use serde::{Deserialize, Serialize};
use tera::Context;

use super::commands::{TriageCommand, TriageStatus, TriageSubject};
use super::decider::{ThreatsRejection, Triage};
use super::error::ThreatsError;
use super::events::TriageEvent;
use super::queries::{self, Report};
use super::scope::AnalystScope;
use crate::accounts::Viewer;
use crate::es::projection::ProjectionError;
use crate::es::{Actor, CommandContext, CommandOutcome, EventStore, Projection, RecordedEvent};
use crate::schema::threat_triage;
use crate::text::{self, Lines};
use crate::web::render::{render_status, state, with_trigger};
use crate::web::{command_context, flash_redirect, is_htmx, AppError};

// ---------- the read model ----------

/// `threat_triage`: every mark, with its author and the signatures it is about.
pub struct TriageProjection;

impl Projection for TriageProjection {
    fn name(&self) -> &'static str {
        "threat_triage"
    }
    fn handles(&self) -> &'static [&'static str] {
        TriageEvent::TYPES
    }
    fn tables(&self) -> &'static [&'static str] {
        &["threat_triage"]
    }
    fn apply(&self, conn: &mut PgConnection, event: &RecordedEvent) -> Result<(), ProjectionError> {
        use threat_triage as t;
        let TriageEvent::ThreatTriaged {
            subject_kind,
            subject,
            status,
            note,
            signatures,
        } = event.decode::<TriageEvent>()?;
        let actor = match event.actor() {
            Some(Actor::User(id)) => Some(id),
            _ => None,
        };
        diesel::insert_into(t::table)
            .values((
                t::position.eq(event.position),
                t::subject_kind.eq(subject_kind),
                t::subject.eq(subject),
                t::status.eq(status),
                t::note.eq(note),
                t::signatures.eq(signatures),
                t::actor_id.eq(actor),
                t::recorded_at.eq(event.recorded_at),
            ))
            .execute(conn)?;
        Ok(())
    }
}

// ---------- reads, in the viewer's scope ----------

/// The hits of a subject, over `threat_hits h`.
fn hits_of(subject: TriageSubject) -> &'static str {
    match subject {
        TriageSubject::Hash => "h.md5 = :id",
        TriageSubject::Session => {
            "h.file_id IN (SELECT file_id FROM threat_files WHERE session_id = :id)"
        }
    }
}

#[derive(QueryableByName)]
struct Name {
    #[diesel(sql_type = Text)]
    name: String,
}

/// The signatures of the subject's hits that the scope sees (none: it may not triage it).
pub fn visible_signatures(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    subject: TriageSubject,
    id: &str,
) -> QueryResult<Vec<String>> {
    Ok(scope
        .query(include_str!("sql/triage_signatures.sql"))
        .sql("hits_of", hits_of(subject))
        .text("id", id)
        .load::<Name>(conn)?
        .into_iter()
        .map(|n| n.name)
        .collect())
}

/// One mark as the history shows it.
#[derive(Debug, Clone, QueryableByName, Serialize)]
pub struct TriageMark {
    #[diesel(sql_type = Int8)]
    pub position: i64,
    #[diesel(sql_type = Text)]
    pub status: String,
    #[diesel(sql_type = Text)]
    pub note: String,
    #[diesel(sql_type = Timestamptz)]
    pub recorded_at: DateTime<Utc>,
    /// The author's display name (empty when the mark came from elsewhere than a person).
    #[diesel(sql_type = Text)]
    pub actor: String,
    /// `recorded_at` as people read it ("3 Dec 2026 14:02 UTC").
    #[diesel(sql_type = Text)]
    pub recorded: String,
}

/// The subject's marks the scope may read, newest first.
pub fn history(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    subject: TriageSubject,
    id: &str,
) -> QueryResult<Vec<TriageMark>> {
    scope
        .query(include_str!("sql/triage_history.sql"))
        .text("kind", subject.as_str())
        .text("subject", id)
        .load(conn)
}

#[derive(QueryableByName)]
struct Latest {
    #[diesel(sql_type = Text)]
    subject: String,
    #[diesel(sql_type = Text)]
    status: String,
}

/// The status of each of `keys` that has a mark the scope may read (its latest such mark).
pub fn statuses(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    subject: TriageSubject,
    keys: Vec<String>,
) -> QueryResult<HashMap<String, String>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    Ok(scope
        .query(include_str!("sql/triage_latest.sql"))
        .text("kind", subject.as_str())
        .sql("which", "t.subject = ANY(:keys)")
        .texts("keys", keys)
        .sql("status_filter", "true")
        .load::<Latest>(conn)?
        .into_iter()
        .map(|l| (l.subject, l.status))
        .collect())
}

/// The subjects of a kind whose latest mark the scope may read says they are dealt with
/// (triaged or a false positive): what "hide triaged" leaves out.
pub fn settled(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    subject: TriageSubject,
) -> QueryResult<HashSet<String>> {
    Ok(scope
        .query(include_str!("sql/triage_latest.sql"))
        .text("kind", subject.as_str())
        .sql("which", "true")
        .sql("status_filter", "status <> 'escalated'")
        .load::<Latest>(conn)?
        .into_iter()
        .map(|l| l.subject)
        .collect())
}

// ---------- the command ----------

/// The triage form as posted.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
pub struct TriageForm {
    #[serde(default)]
    pub subject_kind: String,
    #[serde(default)]
    pub subject: String,
    #[serde(default)]
    pub status: String,
    #[serde(default)]
    pub note: String,
    pub command_id: Option<String>,
}

/// Mark a subject for the viewer of `scope`: the form parsed, the subject's visible signatures
/// read, the decider asked.
pub fn triage(
    conn: &mut PgConnection,
    store: &EventStore,
    ctx: &CommandContext,
    scope: &AnalystScope,
    form: &TriageForm,
) -> Result<CommandOutcome, ThreatsError> {
    let subject = TriageSubject::parse(&form.subject_kind)?;
    let id = subject.parse_id(&form.subject)?;
    let status = TriageStatus::parse(&form.status)?;
    let note =
        text::check("The note", &form.note, 2000, Lines::Many).map_err(ThreatsRejection::Text)?;
    let visible_signatures = visible_signatures(conn, scope, subject, &id)?;
    let command = TriageCommand {
        subject,
        id: id.clone(),
        status,
        note,
        visible_signatures,
    };
    Ok(store.execute::<Triage>(conn, &subject.stream_id(&id), &command, ctx)?)
}

/// The triage form's fields a person fills in, in its order.
const TRIAGE_FIELDS: crate::web::form::Fields = &[("status", "Status"), ("note", "Note")];

/// The status and the note checked, every mistake at once.
fn check_fields(form: &TriageForm) -> crate::web::form::FormErrors {
    let mut errors =
        crate::web::form::FormErrors::new("triage", TRIAGE_FIELDS, "Nothing was marked");
    errors.check("status", TriageStatus::parse(&form.status));
    match text::check("The note", &form.note, 2000, Lines::Many) {
        Ok(note) if note.trim().is_empty() => {
            errors.add("note", ThreatsRejection::TriageNoteMissing)
        }
        checked => {
            errors.check("note", checked);
        }
    }
    errors
}

// ---------- pages ----------

/// What `threats/_triage.html` shows of one subject.
#[derive(Debug, Clone, Serialize)]
pub struct Panel {
    pub subject_kind: &'static str,
    pub subject: String,
    /// The latest status the viewer may read, if any.
    pub status: Option<String>,
    pub marks: Vec<TriageMark>,
    /// Whether the viewer sees a hit of the subject (and so may triage it).
    pub can_triage: bool,
}

/// The triage panel of a subject for the viewer of `scope`.
pub fn panel(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    subject: TriageSubject,
    id: &str,
) -> QueryResult<Panel> {
    let marks = history(conn, scope, subject, id)?;
    let can_triage = !visible_signatures(conn, scope, subject, id)?.is_empty();
    Ok(Panel {
        subject_kind: subject.as_str(),
        subject: id.to_owned(),
        status: marks.first().map(|m| m.status.clone()),
        marks,
        can_triage,
    })
}

/// The statuses the form offers, as (value, label).
fn status_choices() -> Vec<(&'static str, &'static str)> {
    TriageStatus::ALL
        .iter()
        .map(|s| (s.as_str(), s.label()))
        .collect()
}

/// Put the panel (and what the form needs) into a page's context.
pub fn insert_panel(ctx: &mut Context, panel: &Panel) {
    ctx.insert("triage", panel);
    ctx.insert("triage_statuses", &status_choices());
}

/// `?hide_triaged=1` of the hash report and the sessions list.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct TriageFilter {
    #[serde(default)]
    hide_triaged: String,
}

impl TriageFilter {
    /// The request's, or the address bar's for the page's own HTMX requests (see
    /// [`super::live::query_or_current`]).
    pub fn of(req: &HttpRequest) -> TriageFilter {
        super::live::query_or_current(req, "hide_triaged")
    }

    pub fn hides(&self) -> bool {
        matches!(self.hide_triaged.as_str(), "1" | "true" | "on")
    }
}

/// The statuses of a list's rows (`triage_status`, by key) and its hide-triaged link, for the
/// list's template.
#[derive(Debug, Default)]
pub struct ListTriage {
    statuses: HashMap<String, String>,
}

/// The subjects a list leaves out: with the filter on, those of `subject` (`None`: a list of
/// something else) the viewer has dealt with. The list's query leaves them out of its rows and
/// its total alike, so that pages and counts are of what the analyst is shown.
pub fn hidden(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    subject: Option<TriageSubject>,
    filter: &TriageFilter,
) -> QueryResult<Vec<String>> {
    match subject {
        Some(subject) if filter.hides() => {
            let mut keys: Vec<String> = settled(conn, scope, subject)?.into_iter().collect();
            keys.sort();
            Ok(keys)
        }
        _ => Ok(Vec::new()),
    }
}

/// The statuses of `rows` of a list of triage subjects (`None`: a list of something else, left
/// alone), for their badges.
pub fn list_statuses<T>(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    subject: Option<TriageSubject>,
    rows: &[T],
    key: impl Fn(&T) -> &str,
) -> QueryResult<ListTriage> {
    let Some(subject) = subject else {
        return Ok(ListTriage::default());
    };
    let keys = rows.iter().map(|r| key(r).to_owned()).collect();
    let statuses = statuses(conn, scope, subject, keys)?;
    Ok(ListTriage { statuses })
}

impl ListTriage {
    /// `target`: the fragment the hide-triaged link reloads.
    pub fn insert(self, ctx: &mut Context, req: &HttpRequest, filter: &TriageFilter, target: &str) {
        ctx.insert("triage_status", &self.statuses);
        ctx.insert("hide_triaged", &filter.hides());
        ctx.insert("triage_target", target);
        let with = |then| super::live::address_with(req, &["hide_triaged"], then);
        ctx.insert("hide_triaged_on", &with("hide_triaged=1"));
        ctx.insert("hide_triaged_off", &with("hide_triaged=0"));
    }
}

pub fn routes(cfg: &mut web::ServiceConfig) {
    cfg.service(post_triage).service(hash_page);
}

/// The page of a subject: the hash page, or the session page.
fn subject_page(subject: TriageSubject, id: &str) -> String {
    let what = match subject {
        TriageSubject::Hash => "hashes",
        TriageSubject::Session => "sessions",
    };
    format!("/threats/{what}/{}", crate::web::render::percent_encode(id))
}

/// A file hash: its visible hits and its triage. Not found when the viewer sees no hit of it.
#[tracing::instrument(skip_all, fields(md5 = %path))]
#[get("/hashes/{md5}")]
async fn hash_page(
    req: HttpRequest,
    viewer: Viewer,
    path: web::Path<String>,
) -> Result<HttpResponse, AppError> {
    let md5 = TriageSubject::Hash
        .parse_id(&path)
        .map_err(|_| ThreatsError::NotFound)?;
    let m = md5.clone();
    // A read-only page: a replica may serve it; after the viewer's own triage the frame's
    // `heyboss_wrote` cookie makes it wait for that write or read the primary.
    let (hits, panel) = state(&req)
        .read(&req, move |conn| -> Result<_, ThreatsError> {
            let scope = AnalystScope::of(conn, &viewer)?;
            let all_time = queries::TimeRange {
                from: None,
                to: None,
            };
            let newest_first = crate::web::paging::Paging::parse(
                crate::web::paging::ListSpec {
                    columns: &queries::HIT_COLUMNS,
                    per_page: 1000,
                },
                &Default::default(),
            );
            let hits = queries::hits_of_key(
                conn,
                &viewer,
                Report::Hash,
                &m,
                &all_time,
                &super::filters::Filters::default(),
                &newest_first,
            )?
            .hits;
            if hits.is_empty() {
                return Err(ThreatsError::NotFound);
            }
            Ok((hits, panel(conn, &scope, TriageSubject::Hash, &m)?))
        })
        .await?;
    let mut ctx = Context::new();
    ctx.insert("md5", &md5);
    ctx.insert("hits", &hits);
    insert_panel(&mut ctx, &panel);
    crate::web::render(&req, "threats/hash.html", "threats/hash.html", ctx)
}

/// Mark a subject. HTMX gets the panel again (with the notice, or the refusal and what was
/// typed); without JavaScript a success redirects to the subject's page and a refusal renders
/// the form's page with the message.
#[tracing::instrument(skip_all)]
#[post("/triage")]
async fn post_triage(
    req: HttpRequest,
    viewer: Viewer,
    form: web::Form<TriageForm>,
) -> Result<HttpResponse, AppError> {
    let form = form.into_inner();
    let ctx = command_context(&req, &viewer, form.command_id.as_deref());
    let store = state(&req).store.clone();
    let (f, v) = (form.clone(), viewer.clone());
    // The fields a person chooses and types, all their mistakes at once (a bad subject, a hidden
    // field, is refused by `triage` as before).
    let errors = check_fields(&form);
    let checked = errors.is_empty();
    let result = state(&req)
        .run(move |conn| -> Result<_, ThreatsError> {
            let scope = AnalystScope::of(conn, &v)?;
            let outcome = checked.then(|| triage(conn, &store, &ctx, &scope, &f));
            Ok((outcome, scope))
        })
        .await?;
    let (outcome, scope) = result;
    let outcome = outcome.ok_or(errors);
    // The subject as typed, for the panel shown again (a bad one shows no history).
    let subject = TriageSubject::parse(&form.subject_kind).unwrap_or(TriageSubject::Hash);
    let id = subject
        .parse_id(&form.subject)
        .unwrap_or_else(|_| form.subject.chars().take(200).collect());
    let (status, page_ctx, outcome) = match outcome {
        Ok(Ok(outcome)) => {
            let label = TriageStatus::parse(&form.status).map_or("", |s| s.label());
            let notice = format!("Marked {}: {label}.", subject.as_str());
            if !is_htmx(&req) {
                return Ok(flash_redirect(
                    &subject_page(subject, &id),
                    "success",
                    &notice,
                ));
            }
            let mut c = Context::new();
            c.insert("triage_notice", &notice);
            (StatusCode::OK, c, Some(outcome))
        }
        Err(errors) => {
            let mut c = Context::new();
            errors.insert(&mut c);
            c.insert("triage_form", &form);
            (StatusCode::UNPROCESSABLE_ENTITY, c, None)
        }
        Ok(Err(e)) => match e.refusal() {
            Some((status, message)) => {
                let mut c = Context::new();
                c.insert("triage_error", &message);
                c.insert("triage_form", &form);
                (status, c, None)
            }
            None => return Err(e.into()),
        },
    };
    let i = id.clone();
    let panel = state(&req)
        .run(move |conn| -> Result<_, ThreatsError> { Ok(panel(conn, &scope, subject, &i)?) })
        .await?;
    let mut ctx = page_ctx;
    insert_panel(&mut ctx, &panel);
    ctx.insert("subject_page", &subject_page(subject, &id));
    let res = render_status(
        &req,
        status,
        "threats/triage.html",
        "threats/_triage.html",
        ctx,
    )?;
    Ok(match outcome {
        Some(o) => with_trigger(res, Some(&o), "ThreatTriaged"),
        None => res,
    })
}
