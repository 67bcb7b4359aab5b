//! What an analyst may see: hits, score changes and report rows of the signatures whose group
//! they hold now; admins see every signature. [`AnalystScope`] is that rule as a value, and the
//! only way to read those tables is a [`ScopedQuery`], which only a scope makes and which binds
//! the scope itself: a read of hits cannot be written without a scope, and no query numbers the
//! scope's parameters by hand.

use chrono::{DateTime, Utc};
use diesel::pg::Pg;
use diesel::prelude::*;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::sql_types::{Array, BigInt, Bool, Nullable, Text, Timestamptz, Untyped};

use super::error::ThreatsError;
use crate::accounts::{Role, Viewer};
use crate::schema::threat_clearances;

/// The signatures a viewer may see: all of them (admins), or those of the groups an analyst is
/// cleared for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnalystScope {
    all: bool,
    groups: Vec<String>,
}

/// The rule in SQL, over the signatures aliased `s`. Queries name it `:visible`.
const VISIBLE: &str = "(:visible_all OR s.group_name = ANY(:visible_groups))";

impl AnalystScope {
    /// An admin's: every signature.
    pub fn admin() -> AnalystScope {
        AnalystScope {
            all: true,
            groups: Vec::new(),
        }
    }

    /// An analyst's, cleared for these groups.
    pub fn cleared_for(groups: Vec<String>) -> AnalystScope {
        AnalystScope { all: false, groups }
    }

    /// The viewer's scope, read fresh on every request (a revoked clearance counts at once).
    /// Other roles read no threat data.
    pub fn of(conn: &mut PgConnection, viewer: &Viewer) -> Result<AnalystScope, ThreatsError> {
        match viewer.role {
            Role::Admin => Ok(AnalystScope::admin()),
            Role::Analyst => Ok(AnalystScope::cleared_for(
                threat_clearances::table
                    .filter(threat_clearances::user_id.eq(viewer.user_id))
                    .select(threat_clearances::group_name)
                    .order(threat_clearances::group_name.asc())
                    .load(conn)?,
            )),
            _ => Err(ThreatsError::Forbidden(
                "Threat reports are for analysts and admins.".into(),
            )),
        }
    }

    pub fn sees_all(&self) -> bool {
        self.all
    }

    /// The groups held (empty for admins, who need none).
    pub fn groups(&self) -> &[String] {
        &self.groups
    }

    pub fn sees_group(&self, group: &str) -> bool {
        self.all || self.groups.iter().any(|g| g == group)
    }

    /// A query over what this scope sees. `sql` joins `threat_signatures s` and says `:visible`
    /// where the rule applies; its other `:name`s are bound with the builder's methods.
    pub fn query(&self, sql: &'static str) -> ScopedQuery {
        ScopedQuery {
            sql,
            params: vec![
                ("visible", Param::Sql(VISIBLE)),
                ("visible_all", Param::Bool(self.all)),
                ("visible_groups", Param::Texts(self.groups.clone())),
            ],
        }
    }
}

/// SQL text (a file of `src/threats/sql/`) with named parameters (`:key`, `:limit`) bound by
/// name, and the viewer's scope as `:visible`. Parameters become `$n` in the order they appear,
/// so a text and its binds cannot disagree on numbers; a name without a value, or a text without
/// `:visible`, is an error on the query's first run.
#[derive(Debug, Clone)]
pub struct ScopedQuery {
    sql: &'static str,
    params: Vec<(&'static str, Param)>,
}

#[derive(Debug, Clone)]
enum Param {
    /// SQL from the code (a report's key expression), expanded in place; `'static`, so never
    /// input.
    Sql(&'static str),
    Text(String),
    Texts(Vec<String>),
    Bool(bool),
    Int8(i64),
    Time(Option<DateTime<Utc>>),
    Times(Vec<DateTime<Utc>>),
}

impl ScopedQuery {
    fn with(mut self, name: &'static str, value: Param) -> ScopedQuery {
        self.params.push((name, value));
        self
    }
    /// A fragment of SQL written in the code, such as a report's grouping expression.
    pub fn sql(self, name: &'static str, fragment: &'static str) -> ScopedQuery {
        self.with(name, Param::Sql(fragment))
    }
    pub fn text(self, name: &'static str, value: impl Into<String>) -> ScopedQuery {
        self.with(name, Param::Text(value.into()))
    }
    pub fn texts(self, name: &'static str, values: Vec<String>) -> ScopedQuery {
        self.with(name, Param::Texts(values))
    }
    pub fn int8(self, name: &'static str, value: i64) -> ScopedQuery {
        self.with(name, Param::Int8(value))
    }
    pub fn time(self, name: &'static str, value: Option<DateTime<Utc>>) -> ScopedQuery {
        self.with(name, Param::Time(value))
    }
    pub fn times(self, name: &'static str, values: Vec<DateTime<Utc>>) -> ScopedQuery {
        self.with(name, Param::Times(values))
    }

    fn param(&self, name: &str) -> QueryResult<&Param> {
        self.params
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| p)
            .ok_or_else(|| {
                diesel::result::Error::QueryBuilderError(
                    format!("the query names :{name} and nothing binds it").into(),
                )
            })
    }

    /// Writes `text` with its parameters, fragments expanded (a fragment may name parameters).
    fn emit<'b>(
        &'b self,
        text: &'b str,
        out: &mut AstPass<'_, 'b, Pg>,
        depth: usize,
    ) -> QueryResult<()> {
        if depth > 3 {
            return Err(diesel::result::Error::QueryBuilderError(
                "SQL fragments nest too deep".into(),
            ));
        }
        let mut rest = text;
        while let Some(at) = rest.find(':') {
            out.push_sql(&rest[..at]);
            let after = &rest[at + 1..];
            // `::type` is a cast, not a parameter.
            if let Some(cast) = after.strip_prefix(':') {
                out.push_sql("::");
                rest = cast;
                continue;
            }
            let len = after
                .bytes()
                .take_while(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
                .count();
            if len == 0 {
                out.push_sql(":");
                rest = after;
                continue;
            }
            let (name, tail) = after.split_at(len);
            match self.param(name)? {
                Param::Sql(fragment) => self.emit(fragment, out, depth + 1)?,
                Param::Text(v) => out.push_bind_param::<Text, _>(v)?,
                Param::Texts(v) => out.push_bind_param::<Array<Text>, _>(v)?,
                Param::Bool(v) => out.push_bind_param::<Bool, _>(v)?,
                Param::Int8(v) => out.push_bind_param::<BigInt, _>(v)?,
                Param::Time(v) => out.push_bind_param::<Nullable<Timestamptz>, _>(v)?,
                Param::Times(v) => out.push_bind_param::<Array<Timestamptz>, _>(v)?,
            }
            rest = tail;
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl QueryFragment<Pg> for ScopedQuery {
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        if !self.sql.contains(":visible") {
            return Err(diesel::result::Error::QueryBuilderError(
                "a scoped query must apply the scope (:visible)".into(),
            ));
        }
        // As `sql_query`: planned for each run's values (a window or none, one group or ten).
        out.unsafe_to_cache_prepared();
        self.emit(self.sql, &mut out, 0)
    }
}

impl QueryId for ScopedQuery {
    type QueryId = ();
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for ScopedQuery {
    type SqlType = Untyped;
}

impl RunQueryDsl<PgConnection> for ScopedQuery {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::debug_query;

    #[test]
    fn parameters_are_numbered_where_they_appear_and_casts_are_kept() {
        let q = AnalystScope::cleared_for(vec!["b".into(), "a".into()])
            .query("SELECT :key::text FROM t JOIN threat_signatures s ON :visible WHERE :match LIMIT :limit")
            .sql("match", "h.md5 = :key")
            .text("key", "k")
            .int8("limit", 3);
        assert_eq!(
            debug_query::<Pg, _>(&q).to_string().split(" -- ").next().unwrap(),
            "SELECT $1::text FROM t JOIN threat_signatures s ON ($2 OR s.group_name = ANY($3)) WHERE h.md5 = $4 LIMIT $5"
        );
    }

    #[test]
    fn a_query_without_the_scope_or_with_an_unbound_name_does_not_run() {
        use std::fmt::Write;
        let scope = AnalystScope::admin();
        let mut sql = String::new();
        let unscoped = scope.query("SELECT 1");
        assert!(write!(sql, "{}", debug_query::<Pg, _>(&unscoped)).is_err());
        let unbound = scope.query("SELECT 1 FROM threat_signatures s WHERE :visible AND :key");
        assert!(write!(sql, "{}", debug_query::<Pg, _>(&unbound)).is_err());
    }
}
