//! Hand-written SQL that the connection prepares once and reuses.
//!
//! `diesel::sql_query` marks its statement unsafe to cache, so the server parses and analyzes its
//! text on every run. The sensor ingest runs some twenty such statements per batch, hundreds of
//! lines of SQL in all: `perf` put their parsing and analysis at about 3% of the machine's CPU
//! (the throughput change it made was inside this machine's noise). [`prepared`] takes the same
//! SQL (placeholders `$1`, `$2`, ... as PostgreSQL writes them) and the same
//! `.bind::<Type, _>(value)` calls, and lets diesel's statement cache keep the prepared
//! statement, keyed by its text. The server still plans each run for its own parameters (see
//! `db::plan_each_statement`: generic plans made while the tables were small went stale).
//!
//! Only for SQL whose text is one of a few per call site: every distinct text is one prepared
//! statement kept for the connection's life.

use std::borrow::Cow;
use std::marker::PhantomData;

use diesel::pg::Pg;
use diesel::query_builder::{AstPass, Query, QueryFragment, QueryId};
use diesel::query_dsl::RunQueryDsl;
use diesel::serialize::ToSql;
use diesel::sql_types::{HasSqlType, Untyped};
use diesel::QueryResult;

/// A statement of `sql`, its parameters bound in order by [`Prepared::bind`].
pub fn prepared<'a>(sql: impl Into<Cow<'static, str>>) -> Prepared<'a> {
    Prepared {
        sql: sql.into(),
        binds: Vec::new(),
    }
}

#[must_use = "a statement runs only with `load`, `get_result` or `execute`"]
pub struct Prepared<'a> {
    sql: Cow<'static, str>,
    binds: Vec<Box<dyn QueryFragment<Pg> + 'a>>,
}

impl<'a> Prepared<'a> {
    /// The value of the next placeholder (`$1` first), as SQL type `ST`.
    pub fn bind<ST, V>(mut self, value: V) -> Self
    where
        Pg: HasSqlType<ST>,
        V: ToSql<ST, Pg> + 'a,
        ST: 'a,
    {
        self.binds.push(Box::new(Bind {
            value,
            _type: PhantomData::<ST>,
        }));
        self
    }
}

struct Bind<ST, V> {
    value: V,
    _type: PhantomData<ST>,
}

impl<ST, V> QueryFragment<Pg> for Bind<ST, V>
where
    Pg: HasSqlType<ST>,
    V: ToSql<ST, Pg>,
{
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        out.push_bind_param::<ST, V>(&self.value)
    }
}

impl QueryFragment<Pg> for Prepared<'_> {
    /// The text as written, each `$n` handed to diesel as its bind: diesel numbers the
    /// placeholders itself, in the order they appear, so a `$n` used twice is bound twice.
    fn walk_ast<'b>(&'b self, mut out: AstPass<'_, 'b, Pg>) -> QueryResult<()> {
        let mut rest: &str = &self.sql;
        while let Some(at) = rest.find('$') {
            let digits = rest[at + 1..]
                .find(|c: char| !c.is_ascii_digit())
                .unwrap_or(rest.len() - at - 1);
            out.push_sql(&rest[..at]);
            if digits == 0 {
                out.push_sql("$");
            } else {
                let n: usize = rest[at + 1..at + 1 + digits].parse().unwrap_or(0);
                let bind = n
                    .checked_sub(1)
                    .and_then(|i| self.binds.get(i))
                    .ok_or_else(|| {
                        diesel::result::Error::QueryBuilderError(
                            format!("${n} has no bound value ({} bound)", self.binds.len()).into(),
                        )
                    })?;
                bind.walk_ast(out.reborrow())?;
            }
            rest = &rest[at + 1 + digits..];
        }
        out.push_sql(rest);
        Ok(())
    }
}

impl QueryId for Prepared<'_> {
    type QueryId = ();
    // Keyed by its text in diesel's cache, not by type.
    const HAS_STATIC_QUERY_ID: bool = false;
}

impl Query for Prepared<'_> {
    type SqlType = Untyped;
}

impl<Conn> RunQueryDsl<Conn> for Prepared<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use diesel::debug_query;

    #[test]
    fn placeholders_are_numbered_in_order_of_appearance() {
        let q = prepared("SELECT $2::int4 + $1::int4, $2::int4, '$'")
            .bind::<diesel::sql_types::Int4, _>(1)
            .bind::<diesel::sql_types::Int4, _>(2);
        let text = debug_query::<Pg, _>(&q).to_string();
        assert!(
            text.starts_with("SELECT $1::int4 + $2::int4, $3::int4, '$'"),
            "{text}"
        );
        assert!(text.ends_with("-- binds: [2, 1, 2]"), "{text}");
    }
}
