//! Sorting and paging of the threat tables (`?sort=COLUMN&dir=asc|desc&page=N`, DESIGN
//! section 7): a table names its sortable columns, each with the SQL that orders by it (code, not
//! input); a request picks one and a page, parsed at the edge; the page shows where it is in the
//! total. Nothing here knows the threat tables, so other pages can take it as it is.

use serde::{Deserialize, Serialize};

/// A sortable column of a table: its name in the URL, its heading, and its `ORDER BY` each way
/// (with the table's tie-breaks, so that pages never overlap).
#[derive(Debug)]
pub struct Column {
    pub name: &'static str,
    pub asc: &'static str,
    pub desc: &'static str,
    /// The direction a first click on the heading sorts.
    pub first_desc: bool,
}

/// `?sort=&dir=&page=` as given.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct SortParams {
    #[serde(default)]
    pub sort: Option<String>,
    #[serde(default)]
    pub dir: Option<String>,
    #[serde(default)]
    pub page: Option<String>,
}

/// A table's sort and page, valid for its columns.
#[derive(Debug, Clone, Copy)]
pub struct Sorted {
    pub column: &'static Column,
    pub desc: bool,
    /// From 1.
    pub page: i64,
}

/// Pages beyond this are refused (an offset that large is a crawl, not a reader).
pub const MAX_PAGE: i64 = 100_000;

impl SortParams {
    /// The sort and page on `columns` (`columns[0]` in its first direction by default). A column
    /// the table does not have, a bad direction or page is an error message for a 400.
    pub fn parse(&self, columns: &'static [Column]) -> Result<Sorted, String> {
        let column = match self.sort.as_deref().map(str::trim) {
            None | Some("") => &columns[0],
            Some(name) => columns.iter().find(|c| c.name == name).ok_or_else(|| {
                format!(
                    "sort {:?} is not one of {}",
                    name.chars().take(30).collect::<String>(),
                    columns
                        .iter()
                        .map(|c| c.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?,
        };
        let desc = match self.dir.as_deref().map(str::trim) {
            None | Some("") => column.first_desc,
            Some("desc") => true,
            Some("asc") => false,
            Some(_) => return Err("dir is asc or desc".into()),
        };
        let page = match self.page.as_deref().map(str::trim) {
            None | Some("") => 1,
            Some(p) => p
                .parse::<i64>()
                .ok()
                .filter(|p| (1..=MAX_PAGE).contains(p))
                .ok_or_else(|| format!("page is a number from 1 to {MAX_PAGE}"))?,
        };
        Ok(Sorted { column, desc, page })
    }
}

impl Sorted {
    /// The first column in its first direction, page 1.
    pub fn default_of(columns: &'static [Column]) -> Sorted {
        Sorted {
            column: &columns[0],
            desc: columns[0].first_desc,
            page: 1,
        }
    }
    pub fn order_sql(&self) -> &'static str {
        if self.desc {
            self.column.desc
        } else {
            self.column.asc
        }
    }
    pub fn is_default(&self, columns: &'static [Column]) -> bool {
        std::ptr::eq(self.column, &columns[0]) && self.desc == columns[0].first_desc
    }
    pub fn offset(&self, size: i64) -> i64 {
        (self.page - 1) * size
    }
    pub fn dir(&self) -> &'static str {
        if self.desc {
            "desc"
        } else {
            "asc"
        }
    }
}

/// What a page template needs: the sort (for the headings' links and `aria-sort`) and where the
/// page is in the total.
#[derive(Debug, Clone, Serialize)]
pub struct Pager {
    pub sort: &'static str,
    pub dir: &'static str,
    pub page: i64,
    pub pages: i64,
    pub total: i64,
    /// The rows shown, from 1 (0 and 0 when none).
    pub first: i64,
    pub last: i64,
}

impl Pager {
    pub fn new(sorted: &Sorted, size: i64, total: i64, shown: usize) -> Pager {
        let first = if shown == 0 {
            0
        } else {
            sorted.offset(size) + 1
        };
        Pager {
            sort: sorted.column.name,
            dir: sorted.dir(),
            page: sorted.page,
            pages: ((total + size - 1) / size.max(1)).max(1),
            total,
            first,
            last: if shown == 0 {
                0
            } else {
                first + shown as i64 - 1
            },
        }
    }
}

/// A table heading as a page shows it: sortable ones link to the table sorted by them (the
/// other way when they sort it now) and carry `aria-sort`.
#[derive(Debug, Clone, Serialize)]
pub struct Heading {
    pub label: &'static str,
    pub num: bool,
    pub href: Option<String>,
    pub aria_sort: Option<&'static str>,
}

/// The headings of a table: `(label, column name or "" when not sortable, numeric)`. `base` is
/// the page's URL with its other parameters (the range, filters, size), without sort and page.
pub fn headings(
    spec: &[(&'static str, &'static str, bool)],
    columns: &'static [Column],
    pager: &Pager,
    base: &str,
) -> Vec<Heading> {
    spec.iter()
        .map(|&(label, name, num)| {
            let column = columns.iter().find(|c| !name.is_empty() && c.name == name);
            let current = column.is_some_and(|c| c.name == pager.sort);
            Heading {
                label,
                num,
                href: column.map(|c| {
                    let desc = if current {
                        pager.dir != "desc"
                    } else {
                        c.first_desc
                    };
                    let dir = if desc { "desc" } else { "asc" };
                    format!("{base}&sort={}&dir={dir}", c.name)
                }),
                aria_sort: current.then_some(if pager.dir == "desc" {
                    "descending"
                } else {
                    "ascending"
                }),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    static COLUMNS: [Column; 2] = [
        Column {
            name: "hits",
            asc: "hits ASC, key",
            desc: "hits DESC, key",
            first_desc: true,
        },
        Column {
            name: "key",
            asc: "key ASC",
            desc: "key DESC",
            first_desc: false,
        },
    ];

    fn params(sort: &str, dir: &str, page: &str) -> SortParams {
        SortParams {
            sort: Some(sort.into()),
            dir: Some(dir.into()),
            page: Some(page.into()),
        }
    }

    #[test]
    fn a_sort_is_a_known_column_and_a_page_a_number() {
        let s = SortParams::default().parse(&COLUMNS).unwrap();
        assert_eq!((s.order_sql(), s.page), ("hits DESC, key", 1));
        let s = params("key", "", "3").parse(&COLUMNS).unwrap();
        assert_eq!((s.order_sql(), s.offset(10)), ("key ASC", 20));
        assert!(params("hits; DROP", "", "").parse(&COLUMNS).is_err());
        assert!(params("key", "up", "").parse(&COLUMNS).is_err());
        assert!(params("key", "asc", "0").parse(&COLUMNS).is_err());
        let p = Pager::new(
            &params("key", "asc", "3").parse(&COLUMNS).unwrap(),
            10,
            25,
            5,
        );
        assert_eq!((p.first, p.last, p.pages), (21, 25, 3));
    }
}
