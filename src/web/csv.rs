//! The one CSV writer of every export: RFC 4180 (the `csv` crate's quoting, CRLF line ends), every
//! cell defused against spreadsheet formulas, and the same response headers everywhere
//! (`Cache-Control: no-store`: exports hold what only the viewer may see).
//!
//! A spreadsheet runs a cell as a formula when it starts with `=`, `+`, `-` or `@` (and some treat
//! a leading tab or carriage return the same). Quoting alone is not enough: a spreadsheet that
//! splits lines on `;` (the default in many locales) reads `inv;=1+1;.pdf` as three cells, the
//! second a formula, quotes or not. So a formula character is neutralized, with a leading
//! apostrophe, wherever a cell could begin: at the start of the value and after any character a
//! spreadsheet may split on. Plain numbers (`-12.50`) are left as they are.

use std::borrow::Cow;

use actix_web::http::header;
use actix_web::HttpResponse;

/// Characters a spreadsheet may split a line on, besides the comma we use.
const SPLITS: [char; 6] = [',', ';', '\t', '|', '\n', '\r'];
const FORMULA: [char; 4] = ['=', '+', '-', '@'];

/// A CSV file being written, sent as an attachment.
pub struct CsvExport {
    filename: String,
    writer: csv::Writer<Vec<u8>>,
}

impl CsvExport {
    /// An export named `filename` (without `.csv`) with this header row.
    pub fn new(filename: impl Into<String>, header: &[&str]) -> CsvExport {
        let mut export = CsvExport {
            filename: filename.into(),
            writer: csv::WriterBuilder::new()
                .terminator(csv::Terminator::CRLF)
                .from_writer(Vec::new()),
        };
        export.row(header.iter().copied());
        export
    }

    /// One row; each cell defused, then quoted where RFC 4180 needs it.
    pub fn row<I, S>(&mut self, cells: I)
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let cells: Vec<String> = cells
            .into_iter()
            .map(|c| defuse(c.as_ref()).into_owned())
            .collect();
        self.writer
            .write_record(&cells)
            .expect("writing to memory does not fail");
    }

    pub fn into_response(self) -> HttpResponse {
        let body = self
            .writer
            .into_inner()
            .expect("writing to memory does not fail");
        HttpResponse::Ok()
            .content_type("text/csv; charset=utf-8")
            .insert_header((
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}.csv\"", self.filename),
            ))
            .insert_header((header::CACHE_CONTROL, "no-store"))
            .body(body)
    }
}

/// The cell with an apostrophe before every formula character that could begin a cell.
pub fn defuse(cell: &str) -> Cow<'_, str> {
    if is_plain_number(cell) {
        return Cow::Borrowed(cell);
    }
    let starts_cell = |i: usize| i == 0 || cell[..i].ends_with(SPLITS);
    let risky = |(i, c): (usize, char)| {
        (FORMULA.contains(&c) && starts_cell(i)) || (i == 0 && (c == '\t' || c == '\r'))
    };
    if !cell.char_indices().any(risky) {
        return Cow::Borrowed(cell);
    }
    let mut out = String::with_capacity(cell.len() + 2);
    for (i, c) in cell.char_indices() {
        if risky((i, c)) {
            out.push('\'');
        }
        out.push(c);
    }
    Cow::Owned(out)
}

/// `-12`, `3.50`: a spreadsheet reads these as numbers, never as formulas.
fn is_plain_number(cell: &str) -> bool {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    !whole.is_empty()
        && whole.chars().all(|c| c.is_ascii_digit())
        && !fraction.is_empty()
        && fraction.chars().all(|c| c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(rows: &[&[&str]]) -> String {
        let mut export = CsvExport::new("t", &["a", "b"]);
        for r in rows {
            export.row(r.iter());
        }
        String::from_utf8(export.writer.into_inner().unwrap()).unwrap()
    }

    #[test]
    fn cells_are_quoted_per_rfc_4180_with_crlf_lines() {
        assert_eq!(
            body(&[&["plain", "a,b"], &["say \"hi\"", "two\nlines"]]),
            "a,b\r\nplain,\"a,b\"\r\n\"say \"\"hi\"\"\",\"two\nlines\"\r\n"
        );
    }

    #[test]
    fn a_formula_is_defused_wherever_a_spreadsheet_could_start_a_cell() {
        assert_eq!(defuse("=1+1"), "'=1+1");
        assert_eq!(defuse("@SUM(A1)"), "'@SUM(A1)");
        assert_eq!(defuse("\tcmd"), "'\tcmd");
        assert_eq!(defuse("\r=x"), "'\r'=x");
        // Split on ';' by a spreadsheet in another locale: still no formula cell.
        assert_eq!(defuse("Bob;=1+1"), "Bob;'=1+1");
        assert_eq!(defuse("inv;=1+1;.pdf"), "inv;'=1+1;.pdf");
        assert_eq!(defuse("a|+cmd|' /C calc'!A0"), "a|'+cmd|' /C calc'!A0");
        // Left alone: numbers, and formula characters inside a cell's text.
        assert_eq!(defuse("-12.50"), "-12.50");
        assert_eq!(defuse("1500.00"), "1500.00");
        assert_eq!(defuse("a-b=c"), "a-b=c");
        assert_eq!(
            defuse("2026-11-27T04:00:00+00:00"),
            "2026-11-27T04:00:00+00:00"
        );
        assert!(matches!(defuse("plain"), Cow::Borrowed(_)));
    }
}
