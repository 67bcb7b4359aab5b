//! A form's mistakes, every one at once (issue 19.6). A handler's validation checks each field
//! into a [`FormErrors`] instead of stopping at the first; a form with any mistake is rendered
//! again, its input kept and nothing recorded, with each message beside its field and a summary
//! at its top that links to them (the macros of `templates/_field.html`).
//!
//! One rule names the elements, so that Rust and the template agree without a table in each:
//! the field `opens_on` of the form `fund` is the element `fund-opens-on`, its message
//! `fund-opens-on-error`, the summary `fund-errors`.

use serde::Serialize;

/// The fields of one form, in the order the form shows them: `(name, label)`. The label heads
/// the field's line in the summary ("Budget: is not an amount").
pub type Fields = &'static [(&'static str, &'static str)];

/// What is wrong with one submission of a form.
#[derive(Debug, Clone, Default)]
pub struct FormErrors {
    /// The form's id prefix: `fund`, or `decision-<application id>` where a page has many.
    form: String,
    fields: Fields,
    /// (field, message), at most one per field (the first found).
    found: Vec<(&'static str, String)>,
    /// What did not happen, for the summary ("The fund was not created").
    outcome: String,
}

/// One mistake as the templates show it.
#[derive(Debug, Clone, Serialize)]
pub struct FieldError {
    pub field: &'static str,
    /// The field's element id (`fund-opens-on`).
    pub id: String,
    pub label: &'static str,
    /// Beside the field: a sentence ("A score is from 1 to 5, not 9.").
    pub message: String,
    /// In the summary, after the label: "Academic merit: a score is from 1 to 5, not 9."
    pub line: String,
}

/// What `templates/_field.html` reads, under the context's `errors`.
#[derive(Debug, Serialize)]
struct View {
    form: String,
    summary: String,
    /// In the form's order.
    items: Vec<FieldError>,
    by_field: std::collections::BTreeMap<&'static str, FieldError>,
}

impl FormErrors {
    /// No mistakes yet for `form`, whose fields are `fields`; `outcome` says what a refused
    /// submission did not do ("The fund was not created").
    pub fn new(form: impl Into<String>, fields: Fields, outcome: impl Into<String>) -> FormErrors {
        FormErrors {
            form: form.into(),
            fields,
            found: Vec::new(),
            outcome: outcome.into(),
        }
    }

    /// Record a mistake in `field` (a field already wrong keeps its first message).
    pub fn add(&mut self, field: &'static str, message: impl std::fmt::Display) {
        debug_assert!(
            self.fields.iter().any(|(f, _)| *f == field),
            "{field} is not a field of the form {}",
            self.form
        );
        if !self.has(field) {
            self.found.push((field, message.to_string()));
        }
    }

    /// The value of a field that parsed, or `None` with its mistake recorded.
    pub fn check<T, E: std::fmt::Display>(
        &mut self,
        field: &'static str,
        parsed: Result<T, E>,
    ) -> Option<T> {
        parsed.map_err(|e| self.add(field, e)).ok()
    }

    pub fn has(&self, field: &str) -> bool {
        self.found.iter().any(|(f, _)| *f == field)
    }

    pub fn is_empty(&self) -> bool {
        self.found.is_empty()
    }

    pub fn len(&self) -> usize {
        self.found.len()
    }

    /// `value` when nothing is wrong (it is `Some` then, each of its parts having parsed).
    pub fn finish<T>(self, value: Option<T>) -> Result<T, FormErrors> {
        match value {
            Some(v) if self.is_empty() => Ok(v),
            _ => Err(self),
        }
    }

    /// The line at the top of the form: "The fund was not created: correct the 4 fields marked
    /// below."
    pub fn summary(&self) -> String {
        let n = self.len();
        let fields = if n == 1 {
            "the field".to_owned()
        } else {
            format!("the {n} fields")
        };
        format!("{}: correct {fields} marked below.", self.outcome)
    }

    /// The element id of a field of this form.
    pub fn id_of(&self, field: &str) -> String {
        format!("{}-{}", self.form, field.replace('_', "-"))
    }

    fn view(&self) -> View {
        let mut items: Vec<FieldError> = self
            .found
            .iter()
            .map(|(field, message)| {
                let label = self
                    .fields
                    .iter()
                    .find(|(f, _)| f == field)
                    .map_or(*field, |(_, l)| *l);
                FieldError {
                    field,
                    id: self.id_of(field),
                    label,
                    message: sentence(message),
                    line: format!("{label}: {}", clause(message)),
                }
            })
            .collect();
        let order = |f: &str| self.fields.iter().position(|(name, _)| *name == f);
        items.sort_by_key(|e| order(e.field));
        View {
            form: self.form.clone(),
            summary: if self.is_empty() {
                String::new()
            } else {
                self.summary()
            },
            by_field: items.iter().map(|e| (e.field, e.clone())).collect(),
            items,
        }
    }

    /// Put the mistakes into a template's context as `errors` (every page has an empty one, so
    /// the macros need no guard).
    pub fn insert(&self, ctx: &mut tera::Context) {
        ctx.insert("errors", &self.view());
    }
}

/// The empty `errors` every page starts with.
pub fn none(ctx: &mut tera::Context) {
    FormErrors::default().insert(ctx);
}

/// A message after a label: its first letter small unless the word is an acronym, and a full
/// stop.
fn clause(message: &str) -> String {
    let s = sentence(message);
    let mut chars = s.chars();
    match (chars.next(), chars.next()) {
        (Some(first), Some(second)) if !second.is_uppercase() => {
            first.to_lowercase().chain(s.chars().skip(1)).collect()
        }
        _ => s,
    }
}

/// A message as a sentence: a capital first letter and a full stop.
fn sentence(message: &str) -> String {
    let m = message.trim().trim_end_matches('.');
    let mut chars = m.chars();
    let mut s: String = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => return String::new(),
    };
    if !s.ends_with(['?', '!']) {
        s.push('.');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    const FIELDS: Fields = &[("name", "Name"), ("opens_on", "Opens on")];

    #[test]
    fn every_mistake_is_kept_in_the_forms_order_as_a_sentence() {
        let mut e = FormErrors::new("fund", FIELDS, "The fund was not created");
        assert_eq!(e.check::<i32, _>("opens_on", Err("not a date")), None);
        e.add("name", "a fund needs a name");
        e.add("name", "a second message is not shown");
        assert_eq!(e.check("name", Ok::<_, String>(3)), Some(3));
        let v = e.view();
        assert_eq!(v.items.len(), 2);
        assert_eq!(v.items[0].message, "A fund needs a name.");
        assert_eq!(v.items[1].id, "fund-opens-on");
        assert_eq!(v.items[1].label, "Opens on");
        assert_eq!(v.items[1].line, "Opens on: not a date.");
        assert_eq!(clause("SQL is odd"), "SQL is odd.");
        assert_eq!(
            e.summary(),
            "The fund was not created: correct the 2 fields marked below."
        );
        assert!(e.finish(Some(())).is_err());
    }

    #[test]
    fn a_form_without_mistakes_gives_its_value() {
        let e = FormErrors::new("fund", FIELDS, "x");
        assert_eq!(e.finish(Some(5)).unwrap(), 5);
    }
}
