//! The report projections against the raw hits: for a simulated stream (with rescans), every
//! report read through the clearance sets' rankings equals the same report computed on demand
//! from the hits, for an admin and for analysts, before and after a signature moves, after a
//! rebuild from the log, and for clearance sets first held while a sensor posts. Each runs with
//! the reports inline and delayed (`threats_support`), compared once the lag is zero.

mod common;
mod threats_support;

use common::{create_user, PASSWORD};
use diesel::prelude::*;
use heyboss::es::shadow;
use heyboss::es::{Actor, CommandContext, Metadata};
use heyboss::threats::queries::{self, Report, TimeRange, Window};
use heyboss::threats::scope::AnalystScope;
use heyboss::threats::{ingest, service, simulate};
use threats_support::Reports;

#[derive(QueryableByName, Debug, PartialEq)]
struct Row {
    #[diesel(sql_type = diesel::sql_types::Text)]
    key: String,
    #[diesel(sql_type = diesel::sql_types::Int8)]
    hits: i64,
    #[diesel(sql_type = diesel::sql_types::Int4)]
    max_score: i32,
    #[diesel(sql_type = diesel::sql_types::Text)]
    signatures: String,
    #[diesel(sql_type = diesel::sql_types::Timestamptz)]
    last_seen: chrono::DateTime<chrono::Utc>,
}

/// The columns of a report's row that the definition gives.
impl From<queries::ReportRow> for Row {
    fn from(r: queries::ReportRow) -> Row {
        Row {
            key: r.key,
            hits: r.hits,
            max_score: r.max_score,
            signatures: r.signatures,
            last_seen: r.last_seen,
        }
    }
}

/// The report computed on demand from the current hits of sessions started in the range: the
/// definition, literally.
fn on_demand(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    limit: i64,
) -> Vec<Row> {
    let key = match report {
        Report::Hash => "h.md5",
        Report::FileType => "h.file_type",
        Report::IpPair => "h.source_ip || ' ' || h.destination_ip",
        Report::Protocol => "h.protocol",
    };
    diesel::sql_query(format!(
        "SELECT {key} AS key, count(*)::int8 AS hits, max(h.score) AS max_score,
                string_agg(DISTINCT h.signature, ';' ORDER BY h.signature) AS signatures,
                max(h.start_time) AS last_seen
         FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND ($1 OR s.group_name = ANY($2))
         WHERE ($4::timestamptz IS NULL OR h.start_time >= $4) AND ($5::timestamptz IS NULL OR h.start_time < $5)
         GROUP BY 1 ORDER BY hits DESC, max_score DESC, key ASC LIMIT $3"
    ))
    .bind::<diesel::sql_types::Bool, _>(scope.sees_all())
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(scope.groups())
    .bind::<diesel::sql_types::Int8, _>(limit)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>, _>(range.from)
    .bind::<diesel::sql_types::Nullable<diesel::sql_types::Timestamptz>, _>(range.to)
    .load(conn)
    .unwrap()
}

#[derive(QueryableByName, Debug, PartialEq)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    key: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    filename: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    file_type: String,
}

/// The name a hash report shows for each of `keys`, in their order, by the definition: the
/// least (filename, file type) of the hash's hits the viewer may see.
fn names_on_demand(conn: &mut PgConnection, scope: &AnalystScope, keys: &[String]) -> Vec<Name> {
    let mut names: Vec<Name> = diesel::sql_query(
        "SELECT DISTINCT ON (h.md5) h.md5 AS key, h.filename, h.file_type
         FROM threat_hits h JOIN threat_signatures s ON s.name = h.signature AND ($1 OR s.group_name = ANY($2))
         WHERE h.md5 = ANY($3)
         ORDER BY h.md5, h.filename, h.file_type",
    )
    .bind::<diesel::sql_types::Bool, _>(scope.sees_all())
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(scope.groups())
    .bind::<diesel::sql_types::Array<diesel::sql_types::Text>, _>(keys)
    .load(conn)
    .unwrap();
    names.sort_by_key(|n| keys.iter().position(|k| *k == n.key));
    names
}

/// Ranges whose ends fall inside hours and days (and on their edges), open at either end, a
/// range within one hour, one across the odd leap-second session of 2016, and all time.
fn ranges() -> Vec<TimeRange> {
    let now = chrono::Utc::now();
    let at = |s: &str| Some(chrono::DateTime::parse_from_rfc3339(s).unwrap().to_utc());
    let ago = |minutes: i64| Some(now - chrono::Duration::minutes(minutes));
    let hour = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| {
            heyboss::threats::buckets::bucket_start(t, heyboss::threats::buckets::Grain::Hour)
        })
    };
    vec![
        TimeRange::default(),
        Window::Hour.range(now),
        Window::Day.range(now),
        Window::Week.range(now),
        Window::Month.range(now),
        TimeRange {
            from: ago(9 * 1440 + 17),
            to: ago(2 * 1440 + 433),
        },
        TimeRange {
            from: ago(3 * 60 + 7),
            to: ago(3 * 60 - 29),
        },
        TimeRange {
            from: hour(ago(5 * 1440)),
            to: hour(ago(1440)),
        },
        TimeRange {
            from: None,
            to: ago(20 * 1440 + 611),
        },
        TimeRange {
            from: ago(33 * 1440 + 5),
            to: None,
        },
        TimeRange {
            from: at("2016-12-31T23:00:00Z"),
            to: at("2017-01-01T00:00:01Z"),
        },
        TimeRange {
            from: at("2016-12-31T12:30:00Z"),
            to: at("2017-01-02T00:30:00Z"),
        },
        TimeRange {
            from: at("2017-06-01T00:00:00Z"),
            to: at("2017-07-01T00:00:00Z"),
        },
        TimeRange {
            from: at("2016-06-01T11:30:00Z"),
            to: at("2017-06-15T10:00:00Z"),
        },
    ]
}

fn check_all(conn: &mut PgConnection, scopes: &[AnalystScope]) {
    let ranges = ranges();
    for scope in scopes {
        for report in [
            Report::Hash,
            Report::FileType,
            Report::IpPair,
            Report::Protocol,
        ] {
            for range in &ranges {
                for limit in [1, 10, 50] {
                    let read =
                        queries::top_behind(conn, scope, report, range, limit, None).unwrap();
                    if report == Report::Hash {
                        let shown: Vec<Name> = read
                            .iter()
                            .map(|r| Name {
                                key: r.key.clone(),
                                filename: r.filename.clone(),
                                file_type: r.file_type.clone(),
                            })
                            .collect();
                        let keys: Vec<String> = read.iter().map(|r| r.key.clone()).collect();
                        assert_eq!(
                            shown,
                            names_on_demand(conn, scope, &keys),
                            "names, limit {limit} range {range:?} scope {scope:?}"
                        );
                    }
                    let fast: Vec<Row> = read.into_iter().map(Row::from).collect();
                    assert_eq!(
                        fast,
                        on_demand(conn, scope, report, range, limit),
                        "{report:?} limit {limit} range {range:?} scope {scope:?}"
                    );
                }
            }
        }
    }
    check_range_pages(conn, scopes);
}

/// The part of `range` within the stored hits' start times, as the threshold walk judges it.
fn stored_span(
    conn: &mut PgConnection,
    range: &TimeRange,
) -> (chrono::DateTime<chrono::Utc>, chrono::DateTime<chrono::Utc>) {
    #[derive(QueryableByName)]
    struct Extent {
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        first: chrono::DateTime<chrono::Utc>,
        #[diesel(sql_type = diesel::sql_types::Timestamptz)]
        last: chrono::DateTime<chrono::Utc>,
    }
    let (from, to) = range.ends();
    let e: Extent = diesel::sql_query(
        "SELECT min(start_time) AS first, max(start_time) AS last FROM threat_hits",
    )
    .get_result(conn)
    .unwrap();
    let (a, b) = (
        from.max(e.first),
        to.min(e.last + chrono::Duration::microseconds(1)),
    );
    (a, b.max(a))
}

/// Whether the scope's clearance set has an all-time ranking (someone holds it).
fn held(conn: &mut PgConnection, scope: &AnalystScope) -> bool {
    let view = if scope.sees_all() {
        heyboss::threats::projections::ADMIN_VIEW.to_owned()
    } else {
        heyboss::threats::projections::view_id(scope.groups())
    };
    diesel::select(diesel::dsl::exists(
        heyboss::schema::threat_views::table
            .filter(heyboss::schema::threat_views::view_id.eq(view)),
    ))
    .get_result(conn)
    .unwrap()
}

/// A page of the report computed on demand (the definition) without the `hidden` keys, with
/// the report's row count.
fn on_demand_page(
    conn: &mut PgConnection,
    scope: &AnalystScope,
    report: Report,
    range: &TimeRange,
    (limit, offset): (i64, i64),
    hidden: &[String],
) -> (Vec<Row>, i64) {
    let all: Vec<Row> = on_demand(conn, scope, report, range, i64::MAX)
        .into_iter()
        .filter(|r| !hidden.contains(&r.key))
        .collect();
    let total = all.len() as i64;
    let page = all
        .into_iter()
        .skip(offset as usize)
        .take(limit as usize)
        .collect();
    (page, total)
}

/// Each way a range is read (the threshold walk over the all-time ranking for the many-key
/// reports, and the time buckets for every report), page by page with the row count, with and
/// without hidden keys (triaged ones the viewer hides: two leaders of the range, one key of
/// another range, one key nowhere), against the definition. On this data the walk declines only
/// short ranges, so both ways are checked for the others.
fn check_range_pages(conn: &mut PgConnection, scopes: &[AnalystScope]) {
    let rows = |page: queries::ReportPage| {
        let rows = page.rows.into_iter().map(Row::from).collect::<Vec<_>>();
        (rows, page.total)
    };
    let reports = [
        Report::Hash,
        Report::FileType,
        Report::IpPair,
        Report::Protocol,
    ];
    for scope in scopes {
        for report in reports {
            let all_time = on_demand(conn, scope, report, &TimeRange::default(), i64::MAX);
            for range in ranges().iter().filter(|r| !r.is_all()) {
                let leaders = on_demand(conn, scope, report, range, 2);
                let mut hidden: Vec<String> = leaders.into_iter().map(|r| r.key).collect();
                hidden.extend(all_time.last().map(|r| r.key.clone()));
                hidden.push("nowhere".into());
                for (hidden, page) in [(&[][..], (1, 0)), (&[][..], (10, 0))]
                    .into_iter()
                    .chain([(1, 0), (7, 7), (50, 3), (10, 400)].map(|p| (&hidden[..], p)))
                {
                    let expected = on_demand_page(conn, scope, report, range, page, hidden);
                    let summed =
                        queries::range_page_from_buckets(conn, scope, report, range, page, hidden)
                            .unwrap();
                    assert_eq!(
                        rows(summed),
                        expected,
                        "buckets {report:?} {page:?} hidden {hidden:?} {range:?} {scope:?}"
                    );
                    // The row count alone, as the walk takes it from the buckets when many
                    // hits lie outside the range.
                    let counted =
                        queries::range_count_from_buckets(conn, scope, report, range, hidden)
                            .unwrap();
                    match counted {
                        Some(n) => assert_eq!(
                            n, expected.1,
                            "count {report:?} hidden {hidden:?} {range:?} {scope:?}"
                        ),
                        None => assert!(!held(conn, scope), "{scope:?}"),
                    }
                    if matches!(report, Report::FileType | Report::Protocol) {
                        continue;
                    }
                    let walked =
                        queries::range_page_by_threshold(conn, scope, report, range, page, hidden)
                            .unwrap();
                    match walked {
                        Some(walked) => assert_eq!(
                            rows(walked),
                            expected,
                            "threshold {report:?} {page:?} hidden {hidden:?} {range:?} {scope:?}"
                        ),
                        // The walk declines a range whose part within the stored hits'
                        // times is two days or less (`1h` and `24h`, open at their end, too),
                        // and a set nobody holds has no all-time ranking to walk; any other
                        // walk over this few keys is short.
                        None => {
                            let (from, to) = stored_span(conn, range);
                            assert!(
                                to - from <= chrono::Duration::hours(48) || !held(conn, scope),
                                "{report:?} {range:?} {scope:?}"
                            )
                        }
                    }
                }
            }
        }
    }
}

/// The demo's signatures, the analyst `ana` cleared for malware and recon, and a sensor (its id).
fn demo_signatures_analyst_and_sensor(app: &common::TestApp) -> uuid::Uuid {
    create_user(app, "ana", "analyst", PASSWORD);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let store = &app.state.store;
    for (name, group) in simulate::DEMO_SIGNATURES {
        service::set_signature(&mut conn, store, &ctx, name, group, None, None).unwrap();
    }
    service::change_clearance(&mut conn, store, &ctx, "ana", "malware", true).unwrap();
    service::change_clearance(&mut conn, store, &ctx, "ana", "recon", true).unwrap();
    service::create_sensor(&mut conn, store, &ctx, "sim")
        .unwrap()
        .0
}

fn reports_equal_the_on_demand_definition_through_moves_and_rebuilds(reports: Reports) {
    let app = reports.spawn();
    let sensor = demo_signatures_analyst_and_sensor(&app);
    let mut conn = app.state.pool.get().unwrap();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let store = &app.state.store;
    let mut names: Vec<String> = simulate::DEMO_SIGNATURES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    names.push("Unclassified-1".into());
    let mut generator = simulate::Generator::new(7, names, 40);
    // A batch as the sensor API takes it, every event valid.
    let post = |conn: &mut PgConnection, events: serde_json::Value| {
        let body = serde_json::json!({ "events": events }).to_string();
        let parsed = ingest::parse_body(body.as_bytes()).unwrap();
        assert!(parsed.1.is_empty(), "{:?}", parsed.1);
        ingest::ingest(conn, store, &ingest::sensor_metadata(sensor, None), &parsed).unwrap();
    };
    for _ in 0..8 {
        post(&mut conn, serde_json::json!(generator.batch(400)));
    }
    // Times as sensors may send them: finer than a microsecond, a leap second. The read models
    // and a replay in the database read the same stored time.
    post(
        &mut conn,
        serde_json::json!([
            {"id": uuid::Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "odd-1", "start_time": "2026-11-27T08:00:00.123456789Z", "protocol": "http", "source_ip": "10.9.0.1", "destination_ip": "10.9.0.2", "source_port": 1234, "destination_port": 80}},
            {"id": uuid::Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "odd-2", "start_time": "2016-12-31T23:59:60.9999999Z", "protocol": "http", "source_ip": "10.9.0.1", "destination_ip": "10.9.0.3", "source_port": 1235, "destination_port": 80}},
            {"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": "odd-f1", "session_id": "odd-2", "md5": "0123456789abcdef0123456789abcdef", "filename": "a.exe", "file_type": "pe", "size_bytes": 10}},
            {"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": "odd-f1", "session_id": "odd-2", "integration": "yara", "score": 40, "signature": "ET-SCAN-Nmap"}},
            {"id": uuid::Uuid::new_v4(), "type": "FileRescored", "data": {"file_id": "odd-f1", "session_id": "odd-2", "integration": "yara", "new_score": 90, "signature": "ET-SCAN-Nmap"}},
            {"id": uuid::Uuid::new_v4(), "type": "SessionScored", "data": {"session_id": "odd-2", "threat_contributor": "ET-SCAN-Nmap", "score": 90}},
            // The same hash under other names: a smaller one only a phishing signature saw
            // (visible to the analyst once that signature moves into malware), a larger one
            // the analyst sees, and the same name with two file types.
            {"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": "odd-f2", "session_id": "odd-1", "md5": "0123456789abcdef0123456789abcdef", "filename": "0-first.exe", "file_type": "pdf", "size_bytes": 10}},
            {"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": "odd-f2", "session_id": "odd-1", "integration": "yara", "score": 30, "signature": "ET-PHISH-Office365"}},
            {"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": "odd-f3", "session_id": "odd-1", "md5": "0123456789abcdef0123456789abcdef", "filename": "z.exe", "file_type": "pe", "size_bytes": 10}},
            {"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": "odd-f3", "session_id": "odd-1", "integration": "yara", "score": 20, "signature": "ET-SCAN-Nmap"}},
            {"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": "odd-f4", "session_id": "odd-1", "md5": "0123456789abcdef0123456789abcdef", "filename": "0-first.exe", "file_type": "doc", "size_bytes": 10}},
            {"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": "odd-f4", "session_id": "odd-1", "integration": "yara", "score": 20, "signature": "ET-PHISH-Office365"}},
            // A session of 2017 between the hash's two sessions: its Emotet hit is in the
            // range of June 2017, and its Nmap hits (2016, 2026) span that range with none in it
            // (its first and last seen alone cannot tell; the hits are probed).
            {"id": uuid::Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "odd-3", "start_time": "2017-06-15T10:00:00Z", "protocol": "smb", "source_ip": "10.9.0.1", "destination_ip": "10.9.0.4", "source_port": 1236, "destination_port": 445}},
            {"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": "odd-f5", "session_id": "odd-3", "md5": "0123456789abcdef0123456789abcdef", "filename": "m.exe", "file_type": "pe", "size_bytes": 10}},
            {"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": "odd-f5", "session_id": "odd-3", "integration": "yara", "score": 50, "signature": "ET-TROJAN-Emotet"}},
            // The same IP pair (10.9.0.1 to 10.9.0.4) in 2016 and in 2026 with Nmap hits: they
            // span June 2017 with none in it, as the hash's do (the pair's hits are probed).
            {"id": uuid::Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "odd-4", "start_time": "2016-06-01T12:00:00Z", "protocol": "smb", "source_ip": "10.9.0.1", "destination_ip": "10.9.0.4", "source_port": 1237, "destination_port": 445}},
            {"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": "odd-f6", "session_id": "odd-4", "md5": "0123456789abcdef0123456789abcdef", "filename": "n.exe", "file_type": "pe", "size_bytes": 10}},
            {"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": "odd-f6", "session_id": "odd-4", "integration": "yara", "score": 10, "signature": "ET-SCAN-Nmap"}},
            {"id": uuid::Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": "odd-5", "start_time": "2026-11-27T09:00:00Z", "protocol": "smb", "source_ip": "10.9.0.1", "destination_ip": "10.9.0.4", "source_port": 1238, "destination_port": 445}},
            {"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": "odd-f7", "session_id": "odd-5", "md5": "0123456789abcdef0123456789abcdef", "filename": "n.exe", "file_type": "pe", "size_bytes": 10}},
            {"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": "odd-f7", "session_id": "odd-5", "integration": "yara", "score": 10, "signature": "ET-SCAN-Nmap"}},
        ]),
    );
    // An IP pair of 2019 whose signatures' hits span a range with ends inside days
    // ([03-01 20:30, 03-05 03:15): whole days 03-02 to 03-04), each inside it in one way only:
    // Nmap on a whole day, Emotet on the partial first day, Qakbot on the partial last day,
    // Lockbit not at all, DocuSign (phishing: not the analyst's) on a whole day.
    let mut spanning = Vec::new();
    for (session, start, signatures) in [
        (
            "span-1",
            "2019-03-01T10:00:00Z",
            &[
                "ET-SCAN-Nmap",
                "ET-TROJAN-Emotet",
                "ET-TROJAN-Qakbot",
                "YARA-Ransom-Lockbit",
                "ET-PHISH-DocuSign",
            ][..],
        ),
        ("span-2", "2019-03-01T21:00:00Z", &["ET-TROJAN-Emotet"][..]),
        (
            "span-3",
            "2019-03-03T12:00:00Z",
            &["ET-SCAN-Nmap", "ET-PHISH-DocuSign"][..],
        ),
        ("span-4", "2019-03-05T02:00:00Z", &["ET-TROJAN-Qakbot"][..]),
        (
            "span-5",
            "2019-03-05T10:00:00Z",
            &[
                "ET-SCAN-Nmap",
                "ET-TROJAN-Emotet",
                "ET-TROJAN-Qakbot",
                "YARA-Ransom-Lockbit",
                "ET-PHISH-DocuSign",
            ][..],
        ),
    ] {
        let file = format!("{session}-f");
        spanning.push(serde_json::json!({"id": uuid::Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": session, "start_time": start, "protocol": "smb", "source_ip": "10.9.1.1", "destination_ip": "10.9.1.2", "source_port": 1240, "destination_port": 445}}));
        spanning.push(serde_json::json!({"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": file, "session_id": session, "md5": "fedcba9876543210fedcba9876543210", "filename": "s.exe", "file_type": "pe", "size_bytes": 10}}));
        for signature in signatures {
            spanning.push(serde_json::json!({"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": file, "session_id": session, "integration": "yara", "score": 30, "signature": signature}}));
        }
    }
    post(&mut conn, serde_json::json!(spanning));
    reports.settle(&app);
    let rescans: i64 = heyboss::schema::threat_score_changes::table
        .filter(heyboss::schema::threat_score_changes::old_score.is_not_null())
        .count()
        .get_result(&mut conn)
        .unwrap();
    assert!(rescans > 10, "the stream has rescans ({rescans})");
    let analyst = AnalystScope::cleared_for(vec!["malware".into(), "recon".into()]);
    let admin = AnalystScope::admin();
    // A set nobody holds has no maintained view: the per-signature rows answer.
    let unheld = AnalystScope::cleared_for(vec!["exfiltration".into(), "phishing".into()]);
    let scopes = [analyst.clone(), admin, unheld];
    check_all(&mut conn, &scopes);
    let odd = "0123456789abcdef0123456789abcdef".to_owned();
    let june_2017 = TimeRange {
        from: Some("2017-06-01T00:00:00Z".parse().unwrap()),
        to: Some("2017-07-01T00:00:00Z".parse().unwrap()),
    };
    let top = queries::top_behind(&mut conn, &analyst, Report::Hash, &june_2017, 10, None).unwrap();
    assert_eq!(
        top.iter()
            .map(|r| (r.key.as_str(), r.signatures.as_str()))
            .collect::<Vec<_>>(),
        [(odd.as_str(), "ET-TROJAN-Emotet")],
        "the Nmap hits before and after June 2017 are not in it"
    );
    let pair = "10.9.0.1 10.9.0.4";
    let top =
        queries::top_behind(&mut conn, &analyst, Report::IpPair, &june_2017, 10, None).unwrap();
    assert_eq!(
        top.iter()
            .map(|r| (r.key.as_str(), r.signatures.as_str()))
            .collect::<Vec<_>>(),
        [(pair, "ET-TROJAN-Emotet")],
        "the pair's Nmap hits before and after June 2017 are not in it"
    );
    // Ends inside hours, the pair's first Nmap hit just inside and its Emotet hit on the end
    // (which is not in the range).
    let to_the_emotet_hit = TimeRange {
        from: Some("2016-06-01T11:30:00Z".parse().unwrap()),
        to: Some("2017-06-15T10:00:00Z".parse().unwrap()),
    };
    let top = queries::top_behind(
        &mut conn,
        &analyst,
        Report::IpPair,
        &to_the_emotet_hit,
        10,
        None,
    )
    .unwrap();
    let row = top
        .iter()
        .find(|r| r.key == pair)
        .expect("the pair's 2016 hit");
    assert_eq!((row.hits, row.signatures.as_str()), (1, "ET-SCAN-Nmap"));
    // Each (pair, signature) above spans this range: found on a whole day, on either partial
    // day, or not at all; and within one day (no whole day) by the hits alone.
    let signatures_of = |conn: &mut PgConnection, scope: &AnalystScope, from: &str, to: &str| {
        let range = TimeRange {
            from: Some(from.parse().unwrap()),
            to: Some(to.parse().unwrap()),
        };
        let top = queries::top_behind(conn, scope, Report::IpPair, &range, 10, None).unwrap();
        top.into_iter()
            .find(|r| r.key == "10.9.1.1 10.9.1.2")
            .map(|r| (r.hits, r.signatures))
    };
    let (from, to) = ("2019-03-01T20:30:00Z", "2019-03-05T03:15:00Z");
    assert_eq!(
        signatures_of(&mut conn, &analyst, from, to),
        Some((
            3,
            "ET-SCAN-Nmap;ET-TROJAN-Emotet;ET-TROJAN-Qakbot".to_owned()
        ))
    );
    assert_eq!(
        signatures_of(&mut conn, &AnalystScope::admin(), from, to),
        Some((
            4,
            "ET-PHISH-DocuSign;ET-SCAN-Nmap;ET-TROJAN-Emotet;ET-TROJAN-Qakbot".to_owned()
        ))
    );
    assert_eq!(
        signatures_of(
            &mut conn,
            &analyst,
            "2019-03-03T11:00:00Z",
            "2019-03-03T13:00:00Z"
        ),
        Some((1, "ET-SCAN-Nmap".to_owned()))
    );
    let name = |conn: &mut PgConnection| {
        let n = names_on_demand(conn, &analyst, std::slice::from_ref(&odd));
        (n[0].filename.clone(), n[0].file_type.clone())
    };
    // The analyst does not see the phishing signature's smaller name.
    assert_eq!(name(&mut conn), ("a.exe".into(), "pe".into()));

    // Move a phishing signature into malware, and classify the restricted one.
    service::set_signature(
        &mut conn,
        store,
        &ctx,
        "ET-PHISH-Office365",
        "malware",
        None,
        None,
    )
    .unwrap();
    service::set_signature(
        &mut conn,
        store,
        &ctx,
        "Unclassified-1",
        "recon",
        None,
        None,
    )
    .unwrap();
    reports.settle(&app);
    check_all(&mut conn, &scopes);
    assert_eq!(name(&mut conn), ("0-first.exe".into(), "doc".into()));
    let top =
        queries::top_in_scope(&mut conn, &analyst, Report::Protocol, Window::All, 50).unwrap();
    assert!(top
        .iter()
        .any(|r| r.signatures.contains("ET-PHISH-Office365")));

    // Row for row, the incrementally kept tables equal a replay of the log (run in the database
    // in batches of 333 events, which aggregates the reports once at the end and builds the
    // non-unique indexes and the report tables' keys after the rows), whether the indexes are
    // built on one connection or on two.
    let projection = app.state.store.projections();
    let mut helper = app.state.pool.get().unwrap();
    for name in ["threat_sessions", "threat_hits"] {
        let p = projection.get(name).unwrap();
        let delayed = projection.is_catch_up(name);
        let diffs = shadow::verify(&mut conn, None, p.as_ref(), delayed, 333, |_| {}).unwrap();
        assert!(diffs.is_empty(), "{name} differs from a replay: {diffs:?}");
        let diffs = shadow::verify(
            &mut conn,
            Some(&mut helper),
            p.as_ref(),
            delayed,
            333,
            |_| {},
        )
        .unwrap();
        assert!(
            diffs.is_empty(),
            "{name} differs from a replay on two connections: {diffs:?}"
        );
    }
    // A shadow rebuild swaps in tables with every index and key, under the live names.
    let before = index_names(&mut conn);
    assert!(before.iter().any(|i| i.starts_with("threat_hits_md5_idx ")));
    assert!(before
        .iter()
        .any(|i| i.starts_with("threat_report_rows_pkey ")));
    for name in ["threat_sessions", "threat_hits"] {
        let p = projection.get(name).unwrap();
        let delayed = projection.is_catch_up(name);
        shadow::rebuild(
            &mut conn,
            Some(&mut helper),
            p.as_ref(),
            delayed,
            333,
            |_| {},
        )
        .unwrap();
    }
    assert_eq!(index_names(&mut conn), before);
    check_all(&mut conn, &scopes);

    // An in-place rebuild from the log gives the same reports.
    for name in ["threat_signatures", "threat_sessions", "threat_hits"] {
        heyboss::es::projection::rebuild(
            &mut conn,
            projection.get(name).unwrap().as_ref(),
            333,
            |_| {},
        )
        .unwrap();
    }
    check_all(&mut conn, &scopes);
}

/// The names and definitions of the threat tables' indexes.
fn index_names(conn: &mut PgConnection) -> Vec<String> {
    #[derive(QueryableByName)]
    struct Name {
        #[diesel(sql_type = diesel::sql_types::Text)]
        name: String,
    }
    diesel::sql_query(
        "SELECT indexname::text || ' ' || regexp_replace(indexdef, ' ON \\S+ ', ' ON ') AS name
         FROM pg_indexes WHERE schemaname = 'public' AND tablename LIKE 'threat%' ORDER BY 1",
    )
    .load::<Name>(conn)
    .unwrap()
    .into_iter()
    .map(|n| n.name)
    .collect()
}

/// A clearance set that an analyst first holds while sensors post: its ranking is summed from the
/// hits committed so far, and every batch in flight at that moment must still add to it. Six
/// analysts each move to a new set while one sensor posts continuously; afterwards every set's
/// ranking equals the on-demand definition.
fn a_clearance_set_first_held_during_ingest_misses_no_batch(reports: Reports) {
    let app = reports.spawn();
    let ctx = CommandContext::new(Metadata::new(Actor::Cli));
    let store = app.state.store.clone();
    let analysts = ["an1", "an2", "an3", "an4", "an5", "an6"];
    {
        let mut conn = app.state.pool.get().unwrap();
        for (name, group) in simulate::DEMO_SIGNATURES {
            service::set_signature(&mut conn, &store, &ctx, name, group, None, None).unwrap();
        }
        for a in analysts {
            create_user(&app, a, "analyst", PASSWORD);
            service::change_clearance(&mut conn, &store, &ctx, a, "malware", true).unwrap();
        }
    }
    let sensor = {
        let mut conn = app.state.pool.get().unwrap();
        service::create_sensor(&mut conn, &store, &ctx, "sim")
            .unwrap()
            .0
    };
    let names: Vec<String> = simulate::DEMO_SIGNATURES
        .iter()
        .map(|(n, _)| n.to_string())
        .collect();
    let done = std::sync::atomic::AtomicBool::new(false);
    let sets: [&[&str]; 6] = [
        &["phishing"],
        &["phishing", "recon"],
        &["exfiltration"],
        &["exfiltration", "recon"],
        &["recon"],
        &["phishing", "exfiltration"],
    ];
    std::thread::scope(|s| {
        s.spawn(|| {
            let mut conn = app.state.pool.get().unwrap();
            let mut generator = simulate::Generator::new(11, names.clone(), 200);
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let body = serde_json::json!({ "events": generator.batch(300) }).to_string();
                let parsed = ingest::parse_body(body.as_bytes()).unwrap();
                ingest::ingest(
                    &mut conn,
                    &store,
                    &ingest::sensor_metadata(sensor, None),
                    &parsed,
                )
                .unwrap();
            }
        });
        let mut conn = app.state.pool.get().unwrap();
        for (a, groups) in analysts.iter().zip(sets) {
            std::thread::sleep(std::time::Duration::from_millis(150));
            for g in groups {
                service::change_clearance(&mut conn, &store, &ctx, a, g, true).unwrap();
            }
        }
        std::thread::sleep(std::time::Duration::from_millis(150));
        done.store(true, std::sync::atomic::Ordering::Relaxed);
    });
    reports.settle(&app);
    let mut conn = app.state.pool.get().unwrap();
    let mut scopes: Vec<AnalystScope> = sets
        .iter()
        .map(|groups| {
            let mut groups: Vec<String> = groups.iter().map(|g| g.to_string()).collect();
            groups.push("malware".into());
            AnalystScope::cleared_for(groups)
        })
        .collect();
    scopes.push(AnalystScope::admin());
    check_all(&mut conn, &scopes);
}

/// A range of a day or two over many hashes whose counts fall off steeply (a few lead every
/// day) is walked by its days' leaders (`threats::threshold`'s day walk), which stops once the
/// n-th count beats what any key not counted may have; deeper pages read the days to their end.
/// Its pages and counts equal the definition for an analyst and an admin, with and without
/// hidden keys, over the `24h` preset and ranges whose ends fall inside hours or on them.
fn a_short_range_is_walked_by_its_days_leaders(reports: Reports) {
    let app = reports.spawn();
    let sensor = demo_signatures_analyst_and_sensor(&app);
    let mut conn = app.state.pool.get().unwrap();
    let store = &app.state.store;
    let post = |conn: &mut PgConnection, events: &[serde_json::Value]| {
        let body = serde_json::json!({ "events": events }).to_string();
        let parsed = ingest::parse_body(body.as_bytes()).unwrap();
        assert!(parsed.1.is_empty(), "{:?}", parsed.1);
        ingest::ingest(conn, store, &ingest::sensor_metadata(sensor, None), &parsed).unwrap();
    };
    // 120 hashes, the k-th with about 400 / k hits, spread over the last 44 hours (so every
    // day of a `24h` holds more keys than the walk first reads of it), over 97 IP pairs evenly.
    let now = chrono::Utc::now();
    let mut events = Vec::new();
    let mut session = 0usize;
    for key in 0..120usize {
        for j in 0..(400 / (key + 1)).max(2) {
            session += 1;
            let minutes = ((key * 7919 + j * 104_729) % (44 * 60)) as i64;
            let start = now - chrono::Duration::minutes(minutes) - chrono::Duration::seconds(13);
            let (signature, _) =
                simulate::DEMO_SIGNATURES[(key + j) % simulate::DEMO_SIGNATURES.len()];
            let (id, file) = (format!("walk-{session}"), format!("walk-{session}-f"));
            events.push(serde_json::json!({"id": uuid::Uuid::new_v4(), "type": "SessionDiscovered", "data": {"session_id": id, "start_time": start, "protocol": "http", "source_ip": format!("10.7.0.{}", session % 97), "destination_ip": "10.7.1.1", "source_port": 1234, "destination_port": 80}}));
            events.push(serde_json::json!({"id": uuid::Uuid::new_v4(), "type": "FileDiscovered", "data": {"file_id": file, "session_id": id, "md5": format!("{key:032x}"), "filename": "w.exe", "file_type": "pe", "size_bytes": 10}}));
            events.push(serde_json::json!({"id": uuid::Uuid::new_v4(), "type": "FileScored", "data": {"file_id": file, "session_id": id, "integration": "yara", "score": (key * 31 + j) % 100, "signature": signature}}));
        }
    }
    for batch in events.chunks(900) {
        post(&mut conn, batch);
    }
    reports.settle(&app);
    let hour = |t: chrono::DateTime<chrono::Utc>| {
        heyboss::threats::buckets::bucket_start(t, heyboss::threats::buckets::Grain::Hour)
    };
    let ago = |minutes: i64| now - chrono::Duration::minutes(minutes);
    let ranges = [
        Window::Day.range(now),
        TimeRange {
            from: Some(ago(36 * 60 + 17)),
            to: Some(ago(3 * 60 + 29)),
        },
        TimeRange {
            from: Some(hour(ago(30 * 60))),
            to: Some(hour(ago(6 * 60))),
        },
    ];
    let rows = |page: queries::ReportPage| {
        let rows = page.rows.into_iter().map(Row::from).collect::<Vec<_>>();
        (rows, page.total)
    };
    let analyst = AnalystScope::cleared_for(vec!["malware".into(), "recon".into()]);
    for scope in [analyst, AnalystScope::admin()] {
        for report in [Report::Hash, Report::IpPair] {
            for range in &ranges {
                let leaders = on_demand(&mut conn, &scope, report, range, 2);
                let mut hidden: Vec<String> = leaders.into_iter().map(|r| r.key).collect();
                hidden.push("nowhere".into());
                for (hidden, page) in [(&[][..], (10, 0)), (&[][..], (1, 0))]
                    .into_iter()
                    .chain([(11, 0), (7, 7), (50, 3), (10, 95)].map(|p| (&hidden[..], p)))
                {
                    let expected = on_demand_page(&mut conn, &scope, report, range, page, hidden);
                    let walked = queries::range_page_by_threshold(
                        &mut conn, &scope, report, range, page, hidden,
                    )
                    .unwrap();
                    match walked {
                        Some(walked) => assert_eq!(
                            rows(walked),
                            expected,
                            "{report:?} {page:?} hidden {hidden:?} {range:?} {scope:?}"
                        ),
                        // The hashes' leaders stand out on both days: their first page is
                        // walked, not summed.
                        None => assert!(
                            report != Report::Hash || page.0 + page.1 > 20,
                            "declined {report:?} {page:?} {range:?} {scope:?}"
                        ),
                    }
                }
            }
        }
    }
}

in_both_modes!(
    reports_equal_the_on_demand_definition_through_moves_and_rebuilds,
    a_clearance_set_first_held_during_ingest_misses_no_batch,
    a_short_range_is_walked_by_its_days_leaders,
);
