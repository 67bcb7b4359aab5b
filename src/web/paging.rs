//! Paging and sorting of a list: `?page=N&sort=COLUMN&dir=asc|desc` (DESIGN §7), with the total
//! count shown ("41–60 of 92"). A list names the columns it sorts by (a whitelist), queries one
//! page with [`Paging::offset`] and [`Paging::limit`] (and, where a column carries its SQL,
//! [`Paging::order_sql`]), counts its rows, and renders `templates/_pager.html` with the
//! [`Pager`] this gives. Links carry the list's other parameters, so filters survive paging;
//! they work without JavaScript, and HTMX swaps only the list (`target`) when it is there.
//!
//! Most lists read a bad `sort`, `dir` or `page` as the default ([`Paging::parse`]: a stale
//! bookmark still shows the list); the threat tables refuse it with a 400 that says why
//! ([`Paging::parse_strict`]) and build their links from a base URL
//! (`templates/threats/_pager.html`, [`Paging::headings`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::render::percent_encode;

/// The paging part of a list's query string.
#[derive(Debug, Default, Clone, Deserialize, Serialize)]
pub struct PageParams {
    #[serde(default)]
    pub page: Option<String>,
    #[serde(default)]
    pub sort: Option<String>,
    #[serde(default)]
    pub dir: Option<String>,
}

impl PageParams {
    /// The paging part of `query` for one of several lists on a page, whose parameters carry
    /// `prefix` (`scored_page`, `scored_sort`, `scored_dir`).
    pub fn from_query(query: &str, prefix: &str) -> PageParams {
        let mut params = PageParams::default();
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query).unwrap_or_default();
        for (k, v) in pairs {
            let Some(name) = k.strip_prefix(prefix) else {
                continue;
            };
            let slot = match name {
                "page" => &mut params.page,
                "sort" => &mut params.sort,
                "dir" => &mut params.dir,
                _ => continue,
            };
            *slot = Some(v);
        }
        params
    }
}

/// A sortable column: its key in `?sort=`, the direction a first click sorts it in, and, for a
/// list ordered in SQL by [`Paging::order_sql`], its `ORDER BY` each way (code, not input, with
/// the table's tie-breaks so that pages never overlap; empty for lists that order otherwise).
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub key: &'static str,
    pub desc_first: bool,
    pub asc: &'static str,
    pub desc: &'static str,
}

impl Column {
    pub const fn asc(key: &'static str) -> Column {
        Column {
            key,
            desc_first: false,
            asc: "",
            desc: "",
        }
    }

    pub const fn desc(key: &'static str) -> Column {
        Column {
            key,
            desc_first: true,
            asc: "",
            desc: "",
        }
    }
}

/// How one list sorts and pages: its columns (the first is the default sort) and page size.
#[derive(Debug, Clone, Copy)]
pub struct ListSpec {
    pub columns: &'static [Column],
    pub per_page: i64,
}

/// One request's page of a list.
#[derive(Debug, Clone, Copy)]
pub struct Paging {
    spec: ListSpec,
    pub page: i64,
    /// The column sorted by: always one of the spec's.
    pub sort: &'static str,
    pub desc: bool,
    column: &'static Column,
    /// The prefix of this list's parameters where a page has several lists (see
    /// [`PageParams::from_query`]); empty for most.
    prefix: &'static str,
}

/// Pages beyond this are refused by [`Paging::parse_strict`] (an offset that large is a crawl,
/// not a reader).
pub const MAX_PAGE: i64 = 100_000;

impl Paging {
    fn new(spec: ListSpec, column: &'static Column, desc: bool, page: i64) -> Paging {
        Paging {
            spec,
            page,
            sort: column.key,
            desc,
            column,
            prefix: "",
        }
    }

    /// Read `params` against the list's whitelist: an unknown column or direction, or a page
    /// that is not a positive number, is the default rather than an error (a stale bookmark
    /// still shows the list).
    pub fn parse(spec: ListSpec, params: &PageParams) -> Paging {
        let column = params
            .sort
            .as_deref()
            .and_then(|s| spec.columns.iter().find(|c| c.key == s))
            .unwrap_or(&spec.columns[0]);
        let desc = match params.dir.as_deref() {
            Some("asc") => false,
            Some("desc") => true,
            _ => column.desc_first,
        };
        let page = params
            .page
            .as_deref()
            .and_then(|p| p.trim().parse::<i64>().ok())
            .filter(|p| *p >= 1)
            .unwrap_or(1)
            .min(1_000_000);
        Paging::new(spec, column, desc, page)
    }

    /// Read `params` against the list's whitelist, refusing what is not in it: a column the
    /// list does not have, a bad direction or page is an error message for a 400. An empty
    /// value is the default.
    pub fn parse_strict(spec: ListSpec, params: &PageParams) -> Result<Paging, String> {
        let columns = spec.columns;
        let column = match params.sort.as_deref().map(str::trim) {
            None | Some("") => &columns[0],
            Some(name) => columns.iter().find(|c| c.key == name).ok_or_else(|| {
                format!(
                    "sort {:?} is not one of {}",
                    name.chars().take(30).collect::<String>(),
                    columns.iter().map(|c| c.key).collect::<Vec<_>>().join(", ")
                )
            })?,
        };
        let desc = match params.dir.as_deref().map(str::trim) {
            None | Some("") => column.desc_first,
            Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err("dir is asc or desc".into()),
        };
        let page = match params.page.as_deref().map(str::trim) {
            None | Some("") => 1,
            Some(p) => p
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=MAX_PAGE).contains(p))
                .ok_or_else(|| format!("page is a number from 1 to {MAX_PAGE}"))?,
        };
        Ok(Paging::new(spec, column, desc, page))
    }

    /// The same list with its parameters named with `prefix` in its links.
    pub fn prefixed(self, prefix: &'static str) -> Paging {
        Paging { prefix, ..self }
    }

    pub fn limit(&self) -> i64 {
        self.spec.per_page
    }

    pub fn offset(&self) -> i64 {
        (self.page - 1) * self.spec.per_page
    }

    /// The sort column's `ORDER BY` in the chosen direction.
    pub fn order_sql(&self) -> &'static str {
        if self.desc {
            self.column.desc
        } else {
            self.column.asc
        }
    }

    /// Whether the list is in its default order (its first column's first direction).
    pub fn is_default(&self) -> bool {
        let first = &self.spec.columns[0];
        self.sort == first.key && self.desc == first.desc_first
    }

    fn dir(&self) -> &'static str {
        if self.desc {
            "desc"
        } else {
            "asc"
        }
    }

    /// The direction a click on `column`'s heading sorts: the other way when it sorts the list
    /// now, else its first direction.
    fn next_desc(&self, column: &Column) -> bool {
        if column.key == self.sort {
            !self.desc
        } else {
            column.desc_first
        }
    }

    /// The heading's `aria-sort` of `column`.
    fn aria_sort(&self, column: &Column) -> Option<&'static str> {
        (column.key == self.sort).then_some(if self.desc { "descending" } else { "ascending" })
    }

    /// Where the page is in `total` rows of which it shows `shown`.
    pub fn position(&self, total: i64, shown: usize) -> Position {
        let per = self.spec.per_page.max(1);
        let first = if shown == 0 { 0 } else { self.offset() + 1 };
        Position {
            first,
            last: if shown == 0 {
                0
            } else {
                self.offset() + shown as i64
            },
            total,
            counted: true,
            page: self.page,
            pages: ((total + per - 1) / per).max(1),
            sort: self.sort,
            dir: self.dir(),
        }
    }

    /// Where the page is in a list not counted yet (its total comes after, as a many-key
    /// threat report's does): it shows `shown` rows and `more` follow them. `total` is 0 and
    /// `pages` is this page, or the next when more follow (so that "Next" links on).
    pub fn position_uncounted(&self, shown: usize, more: bool) -> Position {
        Position {
            total: 0,
            counted: false,
            pages: self.page + i64::from(more),
            ..self.position(0, shown)
        }
    }

    /// The headings of a table whose template builds its links from `base` (the page's URL with
    /// its other parameters, without sort and page): `(label, column key or "" when not
    /// sortable, numeric)`. A sortable one links to the table sorted by it.
    pub fn headings(
        &self,
        spec: &[(&'static str, &'static str, bool)],
        base: &str,
    ) -> Vec<Heading> {
        spec.iter()
            .map(|&(label, key, num)| {
                let column = self
                    .spec
                    .columns
                    .iter()
                    .find(|c| !key.is_empty() && c.key == key);
                Heading {
                    label,
                    num,
                    href: column.map(|c| {
                        let dir = if self.next_desc(c) { "desc" } else { "asc" };
                        format!("{base}&sort={}&dir={dir}", c.key)
                    }),
                    aria_sort: column.and_then(|c| self.aria_sort(c)),
                }
            })
            .collect()
    }

    /// The last page for `total` rows (a page past it shows the last one).
    pub fn clamp(&mut self, total: i64) {
        let pages = ((total + self.spec.per_page - 1) / self.spec.per_page).max(1);
        self.page = self.page.min(pages);
    }

    /// What the template shows for a page of `shown` rows out of `total`. `path` is the list's
    /// URL, `params` its other query parameters (filters), `target` the id of the element HTMX
    /// swaps.
    pub fn pager(
        &self,
        total: i64,
        shown: usize,
        path: &str,
        params: &[(&str, String)],
        target: &str,
    ) -> Pager {
        let at = self.position(total, shown);
        let link = |page: i64, sort: &str, desc: bool| {
            let mut q: Vec<String> = params
                .iter()
                .filter(|(_, v)| !v.trim().is_empty())
                .map(|(k, v)| format!("{k}={}", percent_encode(v.trim())))
                .collect();
            let p = self.prefix;
            q.push(format!("{p}sort={sort}"));
            q.push(format!("{p}dir={}", if desc { "desc" } else { "asc" }));
            if page > 1 {
                q.push(format!("{p}page={page}"));
            }
            format!("{path}?{}", q.join("&"))
        };
        let sorts = self
            .spec
            .columns
            .iter()
            .map(|c| {
                let link = SortLink {
                    href: link(1, c.key, self.next_desc(c)),
                    aria: self.aria_sort(c).unwrap_or("none"),
                };
                (c.key, link)
            })
            .collect();
        Pager {
            prev: (self.page > 1).then(|| link(self.page - 1, self.sort, self.desc)),
            next: (self.page < at.pages).then(|| link(self.page + 1, self.sort, self.desc)),
            at,
            sorts,
            target: target.to_owned(),
        }
    }
}

/// A column header's link: sort by it (or reverse it when it is the current sort).
#[derive(Debug, Serialize)]
pub struct SortLink {
    pub href: String,
    /// The header's `aria-sort`.
    pub aria: &'static str,
}

/// Where a page is in its list: the rows shown ("41–60 of 92"), the page of how many, and the
/// sort (which the threat tables' templates put in their links).
#[derive(Debug, Clone, Serialize)]
pub struct Position {
    /// 1-based index of the first row shown (0 when none).
    pub first: i64,
    pub last: i64,
    pub total: i64,
    /// False while the total is not known yet (see [`Paging::position_uncounted`]).
    pub counted: bool,
    pub page: i64,
    pub pages: i64,
    pub sort: &'static str,
    pub dir: &'static str,
}

/// What `templates/_pager.html` and the `sort` macro show.
#[derive(Debug, Serialize)]
pub struct Pager {
    #[serde(flatten)]
    pub at: Position,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub sorts: BTreeMap<&'static str, SortLink>,
    pub target: String,
}

/// A table heading as the threat tables show it (`templates/threats/_thead.html`): sortable
/// ones link to the table sorted by them and carry `aria-sort` when they sort it now.
#[derive(Debug, Clone, Serialize)]
pub struct Heading {
    pub label: &'static str,
    pub num: bool,
    pub href: Option<String>,
    pub aria_sort: Option<&'static str>,
}

/// `text` as a case-insensitive `LIKE` pattern matching it anywhere (its `%`, `_` and `\` taken
/// literally).
pub fn contains_pattern(text: &str) -> String {
    let mut p = String::with_capacity(text.len() + 2);
    p.push('%');
    for ch in text.trim().to_lowercase().chars() {
        if matches!(ch, '%' | '_' | '\\') {
            p.push('\\');
        }
        p.push(ch);
    }
    p.push('%');
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPEC: ListSpec = ListSpec {
        columns: &[Column::asc("name"), Column::desc("created")],
        per_page: 20,
    };

    fn params(page: &str, sort: &str, dir: &str) -> PageParams {
        PageParams {
            page: Some(page.into()),
            sort: Some(sort.into()),
            dir: Some(dir.into()),
        }
    }

    #[test]
    fn unknown_sorts_and_pages_fall_back_to_the_defaults() {
        let p = Paging::parse(SPEC, &params("-3", "password; drop", "sideways"));
        assert_eq!((p.page, p.sort, p.desc), (1, "name", false));
        let p = Paging::parse(SPEC, &params("3", "created", ""));
        assert_eq!(
            (p.page, p.sort, p.desc, p.offset()),
            (3, "created", true, 40)
        );
    }

    #[test]
    fn the_pager_counts_rows_and_keeps_the_filters() {
        let p = Paging::parse(SPEC, &params("3", "name", "asc"));
        let pager = p.pager(
            92,
            20,
            "/x",
            &[("q", "a b".into()), ("empty", " ".into())],
            "t",
        );
        assert_eq!(
            (
                pager.at.first,
                pager.at.last,
                pager.at.total,
                pager.at.pages
            ),
            (41, 60, 92, 5)
        );
        assert_eq!(
            pager.prev.as_deref(),
            Some("/x?q=a%20b&sort=name&dir=asc&page=2")
        );
        assert_eq!(
            pager.next.as_deref(),
            Some("/x?q=a%20b&sort=name&dir=asc&page=4")
        );
        assert_eq!(pager.sorts["name"].aria, "ascending");
        assert_eq!(pager.sorts["name"].href, "/x?q=a%20b&sort=name&dir=desc");
        assert_eq!(
            pager.sorts["created"].href,
            "/x?q=a%20b&sort=created&dir=desc"
        );
    }

    #[test]
    fn a_second_list_on_a_page_reads_and_links_its_own_parameters() {
        let params = PageParams::from_query("page=2&scored_page=3&scored_sort=created", "scored_");
        let p = Paging::parse(SPEC, &params).prefixed("scored_");
        assert_eq!((p.page, p.sort, p.desc), (3, "created", true));
        let pager = p.pager(92, 20, "/x", &[("page", "2".into())], "t");
        assert_eq!(
            pager.next.as_deref(),
            Some("/x?page=2&scored_sort=created&scored_dir=desc&scored_page=4")
        );
    }

    const SQL: ListSpec = ListSpec {
        columns: &[
            Column {
                key: "hits",
                desc_first: true,
                asc: "hits ASC, key",
                desc: "hits DESC, key",
            },
            Column {
                key: "key",
                desc_first: false,
                asc: "key ASC",
                desc: "key DESC",
            },
        ],
        per_page: 10,
    };

    #[test]
    fn a_strict_list_refuses_what_it_does_not_sort_by_and_orders_in_sql() {
        let p = Paging::parse_strict(SQL, &PageParams::default()).unwrap();
        assert_eq!(
            (p.order_sql(), p.page, p.is_default()),
            ("hits DESC, key", 1, true)
        );
        let p = Paging::parse_strict(SQL, &params("3", "key", "")).unwrap();
        assert_eq!(
            (p.order_sql(), p.offset(), p.is_default()),
            ("key ASC", 20, false)
        );
        assert!(Paging::parse_strict(SQL, &params("", "hits; DROP", "")).is_err());
        assert!(Paging::parse_strict(SQL, &params("", "key", "up")).is_err());
        assert!(Paging::parse_strict(SQL, &params("0", "key", "asc")).is_err());
        let at = Paging::parse_strict(SQL, &params("3", "key", "asc"))
            .unwrap()
            .position(25, 5);
        assert_eq!(
            (at.first, at.last, at.pages, at.sort, at.dir),
            (21, 25, 3, "key", "asc")
        );
        let h = Paging::parse_strict(SQL, &params("2", "hits", "desc"))
            .unwrap()
            .headings(
                &[
                    ("Key", "key", false),
                    ("Hits", "hits", true),
                    ("Note", "", false),
                ],
                "/r?x=1",
            );
        assert_eq!(h[0].href.as_deref(), Some("/r?x=1&sort=key&dir=asc"));
        assert_eq!(h[1].href.as_deref(), Some("/r?x=1&sort=hits&dir=asc"));
        assert_eq!((h[1].aria_sort, h[0].aria_sort), (Some("descending"), None));
        assert!(h[2].href.is_none());
    }

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern(" A_b%\\ "), "%a\\_b\\%\\\\%");
    }
}
