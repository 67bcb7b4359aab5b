//! The forms of a rendered page, read the way a browser would submit them: every named input,
//! select, textarea and the first submit button's name and value. Enough HTML for our own
//! templates (attributes in double quotes), not a general parser.

/// One form of a page.
#[derive(Debug, Clone)]
pub struct Form {
    pub action: String,
    pub method: String,
    pub fields: Vec<Field>,
}

#[derive(Debug, Clone)]
pub struct Field {
    pub name: String,
    /// input type, "select", "textarea" or "button"
    pub kind: String,
    pub value: String,
    /// The choices of a select or a group of radios (first = the page's default).
    pub options: Vec<String>,
    pub required: bool,
    pub min: Option<String>,
    /// A select whose page marked an option `selected`: it shows the current state.
    pub preselected: bool,
}

impl Form {
    pub fn field(&self, name: &str) -> Option<&Field> {
        self.fields.iter().find(|f| f.name == name)
    }

    pub fn value(&self, name: &str) -> Option<&str> {
        self.field(name).map(|f| f.value.as_str())
    }

    /// The fields as the browser posts them.
    pub fn pairs(&self) -> Vec<(String, String)> {
        self.fields
            .iter()
            .map(|f| (f.name.clone(), f.value.clone()))
            .collect()
    }
}

/// Every `<form>` of a page.
pub fn forms(html: &str) -> Vec<Form> {
    let mut out = Vec::new();
    let mut rest = html;
    while let Some(start) = rest.find("<form") {
        let tag_end = match rest[start..].find('>') {
            Some(e) => start + e,
            None => break,
        };
        let tag = &rest[start..=tag_end];
        let body_end = rest[tag_end..]
            .find("</form>")
            .map_or(rest.len(), |e| tag_end + e);
        let body = &rest[tag_end + 1..body_end];
        out.push(Form {
            action: attr(tag, "action").unwrap_or_default(),
            method: attr(tag, "method")
                .unwrap_or_else(|| "get".into())
                .to_lowercase(),
            fields: fields(body),
        });
        rest = &rest[body_end.min(rest.len())..];
        if rest.starts_with("</form>") {
            rest = &rest[7..];
        }
    }
    out
}

fn fields(body: &str) -> Vec<Field> {
    let mut out: Vec<Field> = Vec::new();
    let mut i = 0;
    let mut button_taken = false;
    while let Some(at) = body[i..].find('<') {
        let start = i + at;
        let Some(end) = body[start..].find('>').map(|e| start + e) else {
            break;
        };
        let tag = &body[start..=end];
        i = end + 1;
        let name_of = |t: &str| attr(t, "name");
        if tag.starts_with("<input") {
            let Some(name) = name_of(tag) else { continue };
            let kind = attr(tag, "type").unwrap_or_else(|| "text".into());
            let value = attr(tag, "value").unwrap_or_default();
            match kind.as_str() {
                "submit" | "button" | "reset" | "file" | "image" => continue,
                "checkbox" if !tag.contains(" checked") => continue,
                "radio" => {
                    let checked = tag.contains(" checked");
                    if let Some(group) = out.iter_mut().find(|f| f.name == name) {
                        group.options.push(value.clone());
                        if checked {
                            group.value = value;
                        }
                        continue;
                    }
                    out.push(Field {
                        name,
                        kind,
                        value: value.clone(),
                        options: vec![value],
                        required: tag.contains(" required"),
                        min: None,
                        preselected: false,
                    });
                    continue;
                }
                _ => {}
            }
            out.push(Field {
                name,
                kind,
                value,
                options: Vec::new(),
                required: tag.contains(" required"),
                min: attr(tag, "min"),
                preselected: false,
            });
        } else if tag.starts_with("<textarea") {
            let Some(name) = name_of(tag) else { continue };
            let close = body[i..].find("</textarea>").map_or(body.len(), |e| i + e);
            out.push(Field {
                name,
                kind: "textarea".into(),
                value: unescape(&body[i..close]),
                options: Vec::new(),
                required: tag.contains(" required"),
                min: None,
                preselected: false,
            });
            i = close;
        } else if tag.starts_with("<select") {
            let Some(name) = name_of(tag) else { continue };
            let close = body[i..].find("</select>").map_or(body.len(), |e| i + e);
            let inner = &body[i..close];
            let mut options = Vec::new();
            let mut selected = None;
            let mut j = 0;
            while let Some(at) = inner[j..].find("<option") {
                let o = j + at;
                let oe = inner[o..].find('>').map_or(inner.len(), |e| o + e);
                let otag = &inner[o..=oe.min(inner.len() - 1)];
                let text_end = inner[oe..]
                    .find("</option>")
                    .map_or(inner.len(), |e| oe + e);
                let value =
                    attr(otag, "value").unwrap_or_else(|| unescape(inner[oe + 1..text_end].trim()));
                if otag.contains(" selected") {
                    selected = Some(value.clone());
                }
                options.push(value);
                j = text_end;
            }
            let preselected = selected.is_some();
            let value = selected
                .or_else(|| options.first().cloned())
                .unwrap_or_default();
            out.push(Field {
                name,
                kind: "select".into(),
                value,
                options,
                required: tag.contains(" required"),
                min: None,
                preselected,
            });
            i = close;
        } else if tag.starts_with("<button") && !button_taken {
            // The browser sends the clicked button; the tests click the first.
            if attr(tag, "type").is_some_and(|t| t != "submit") {
                continue;
            }
            button_taken = true;
            if let Some(name) = name_of(tag) {
                out.push(Field {
                    name,
                    kind: "button".into(),
                    value: attr(tag, "value").unwrap_or_default(),
                    options: Vec::new(),
                    required: false,
                    min: None,
                    preselected: false,
                });
            }
        }
    }
    out
}

/// An attribute's value (double-quoted), unescaped.
pub fn attr(tag: &str, name: &str) -> Option<String> {
    let needle = format!(" {name}=\"");
    let start = tag.find(&needle)? + needle.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

/// Undo Tera's HTML escaping.
pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&#x2F;", "/")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// Every same-site link of a page (`href="/..."`), unescaped.
pub fn links(html: &str) -> Vec<String> {
    html.split("href=\"")
        .skip(1)
        .filter_map(|s| s.split('"').next())
        .map(unescape)
        .filter(|h| h.starts_with('/') && !h.starts_with("//"))
        .collect()
}
