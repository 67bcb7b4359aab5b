//! Paging and sorting of a list: `?page=N&sort=COLUMN&dir=asc|desc` (DESIGN §7), with the total
//! count shown ("41–60 of 92"). A list names the columns it sorts by (a whitelist: any other
//! `sort` falls back to its default), queries one page with [`Paging::offset`] and
//! [`Paging::limit`], counts its rows, and renders `templates/_pager.html` with the [`Pager`]
//! this gives. Links carry the list's other parameters, so filters survive paging; they work
//! without JavaScript, and HTMX swaps only the list (`target`) when it is there.

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

/// A sortable column: its key in `?sort=` and the direction a first click sorts it in.
#[derive(Debug, Clone, Copy)]
pub struct Column {
    pub key: &'static str,
    pub desc_first: bool,
}

impl Column {
    pub const fn asc(key: &'static str) -> Column {
        Column {
            key,
            desc_first: false,
        }
    }

    pub const fn desc(key: &'static str) -> Column {
        Column {
            key,
            desc_first: true,
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
#[derive(Debug, Clone)]
pub struct Paging {
    spec: ListSpec,
    pub page: i64,
    /// The column sorted by: always one of the spec's.
    pub sort: &'static str,
    pub desc: bool,
    /// The prefix of this list's parameters where a page has several lists (see
    /// [`PageParams::from_query`]); empty for most.
    prefix: &'static str,
}

impl Paging {
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
        Paging {
            spec,
            page,
            sort: column.key,
            desc,
            prefix: "",
        }
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
        let per = self.spec.per_page;
        let pages = ((total + per - 1) / per).max(1);
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
                let current = c.key == self.sort;
                let next_desc = if current { !self.desc } else { c.desc_first };
                let link = SortLink {
                    href: link(1, c.key, next_desc),
                    aria: match (current, self.desc) {
                        (false, _) => "none",
                        (true, false) => "ascending",
                        (true, true) => "descending",
                    },
                };
                (c.key, link)
            })
            .collect();
        let first = if shown == 0 { 0 } else { self.offset() + 1 };
        Pager {
            first,
            last: self.offset() + shown as i64,
            total,
            page: self.page,
            pages,
            prev: (self.page > 1).then(|| link(self.page - 1, self.sort, self.desc)),
            next: (self.page < pages).then(|| link(self.page + 1, self.sort, self.desc)),
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

/// What `templates/_pager.html` and the `sort` macro show.
#[derive(Debug, Serialize)]
pub struct Pager {
    /// 1-based index of the first row shown (0 when none).
    pub first: i64,
    pub last: i64,
    pub total: i64,
    pub page: i64,
    pub pages: i64,
    pub prev: Option<String>,
    pub next: Option<String>,
    pub sorts: BTreeMap<&'static str, SortLink>,
    pub target: String,
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
            (pager.first, pager.last, pager.total, pager.pages),
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

    #[test]
    fn like_patterns_take_wildcards_literally() {
        assert_eq!(contains_pattern(" A_b%\\ "), "%a\\_b\\%\\\\%");
    }
}
