//! Click to filter (issue 20.3, DESIGN section 7): every report and list takes `?md5=`,
//! `?file_type=`, `?ip=`, `?protocol=`, `?signature=` and `?sensor=`, each repeatable. Values of
//! one key are alternatives (`ip=a&ip=b`: either address), different keys must all hold
//! (`ip=a&protocol=tcp`: that address over tcp), as chips in Kibana. [`Filters`] is that query as
//! a value: parsed and checked at the edge (a bad value is a 400 that says which and why), written
//! back into links, shown as removable chips, and applied to the hits in SQL (`:filters`, over
//! `threat_hits h`) always together with the viewer's scope, so a filter on a signature the viewer
//! is not cleared for matches nothing they can see.
//!
//! A hit's sensor is the sensor that discovered its session (the actor of the session stream's
//! first event), filtered by the sensor's name.

use serde::Serialize;

use super::error::ThreatsError;
use super::scope::ScopedQuery;
use crate::web::render::percent_encode;

/// A filter key, in the order chips show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub enum Key {
    Md5,
    FileType,
    Ip,
    Protocol,
    Signature,
    Sensor,
}

pub const KEYS: [Key; 6] = [
    Key::Md5,
    Key::FileType,
    Key::Ip,
    Key::Protocol,
    Key::Signature,
    Key::Sensor,
];

/// The most values one request may filter on (every key together).
pub const MAX_VALUES: usize = 50;

impl Key {
    pub fn name(self) -> &'static str {
        match self {
            Key::Md5 => "md5",
            Key::FileType => "file_type",
            Key::Ip => "ip",
            Key::Protocol => "protocol",
            Key::Signature => "signature",
            Key::Sensor => "sensor",
        }
    }
    pub fn label(self) -> &'static str {
        match self {
            Key::Md5 => "MD5",
            Key::FileType => "File type",
            Key::Ip => "IP",
            Key::Protocol => "Protocol",
            Key::Signature => "Signature",
            Key::Sensor => "Sensor",
        }
    }
    pub fn parse(name: &str) -> Option<Key> {
        KEYS.into_iter().find(|k| k.name() == name)
    }

    /// The value as the filter compares it, or why it cannot be one.
    pub fn check(self, raw: &str) -> Result<String, String> {
        let v = raw.trim();
        let shown = || v.chars().take(40).collect::<String>();
        match self {
            Key::Md5 => {
                let md5 = v.to_ascii_lowercase();
                if md5.len() == 32 && md5.bytes().all(|b| b.is_ascii_hexdigit()) {
                    Ok(md5)
                } else {
                    Err(format!(
                        "md5 {:?} is not an MD5 hash: 32 hexadecimal digits",
                        shown()
                    ))
                }
            }
            Key::Ip => v
                .parse::<std::net::IpAddr>()
                .map(|ip| ip.to_string())
                .map_err(|_| {
                    format!(
                        "ip {:?} is not an IP address (such as 10.0.0.5 or 2001:db8::1)",
                        shown()
                    )
                }),
            Key::Protocol => {
                if v.len() <= 32
                    && v.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_./".contains(&b))
                {
                    Ok(v.to_ascii_lowercase())
                } else {
                    Err(format!(
                        "protocol {:?} is not a protocol name (letters, digits, - _ . /; at most 32)",
                        shown()
                    ))
                }
            }
            Key::FileType | Key::Signature | Key::Sensor => {
                if v.chars().count() <= 200 && !v.chars().any(char::is_control) {
                    Ok(v.to_owned())
                } else {
                    Err(format!(
                        "{} {:?} is too long or holds control characters (at most 200)",
                        self.name(),
                        shown()
                    ))
                }
            }
        }
    }
}

/// The filters of a request: each key's values, in the order given, without repeats.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    values: Vec<(Key, String)>,
}

/// An active filter as a chip: its label and value, and the page without it.
#[derive(Debug, Clone, Serialize)]
pub struct Chip {
    pub key: &'static str,
    pub label: &'static str,
    pub value: String,
    pub remove: String,
    /// How it combines with the next chip: "or" (same key), "and", or "" for the last.
    pub then: &'static str,
}

/// The SQL of the filters over `threat_hits h`; an empty key holds for every hit. (Bound as
/// values: the planner folds away the keys not given, so a given md5, file type or protocol reads
/// its index. The sensor API stores md5 and protocol in lower case and IPs canonical, as
/// [`Key::check`] makes the values.)
const HIT_FILTERS: &str = "(cardinality(:f_md5::text[]) = 0 OR h.md5 = ANY(:f_md5))
 AND (cardinality(:f_file_type::text[]) = 0 OR h.file_type = ANY(:f_file_type))
 AND (cardinality(:f_ip::text[]) = 0 OR h.source_ip = ANY(:f_ip) OR h.destination_ip = ANY(:f_ip))
 AND (cardinality(:f_protocol::text[]) = 0 OR h.protocol = ANY(:f_protocol))
 AND (cardinality(:f_signature::text[]) = 0 OR h.signature = ANY(:f_signature))
 AND (cardinality(:f_sensor::text[]) = 0 OR :sensor_of_session)";

/// The session `h.session_id` was discovered by a sensor named in `:f_sensor` (the stream's first
/// event, by the stream index).
pub const SENSOR_OF_SESSION: &str = "EXISTS (SELECT 1 FROM events e
      WHERE e.stream_type = 'threat_session' AND e.stream_id = h.session_id AND e.stream_version = 1
        AND e.metadata->'actor'->>'kind' = 'sensor'
        AND e.metadata->'actor'->>'id' IN (SELECT se.id::text FROM sensors se WHERE se.name = ANY(:f_sensor)))";

impl Filters {
    /// The filters of a query string (other parameters are left to their own parsers; an empty
    /// value, as an empty form field sends it, is no filter).
    pub fn from_query(query: &str) -> Result<Filters, ThreatsError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query)
            .map_err(|_| ThreatsError::BadQuery("the query string is not URL-encoded".into()))?;
        let mut filters = Filters::default();
        for (name, raw) in pairs {
            let Some(key) = Key::parse(&name) else {
                continue;
            };
            if raw.trim().is_empty() {
                continue;
            }
            let value = key.check(&raw).map_err(ThreatsError::BadQuery)?;
            filters = filters.with(key, &value);
            if filters.values.len() > MAX_VALUES {
                return Err(ThreatsError::BadQuery(format!(
                    "at most {MAX_VALUES} filter values at once"
                )));
            }
        }
        Ok(filters)
    }

    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The values of one key.
    pub fn of(&self, key: Key) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// Whether the filters hold only keys of `keys`.
    pub fn only(&self, keys: &[Key]) -> bool {
        self.values.iter().all(|(k, _)| keys.contains(k))
    }

    /// These filters and one more value (no change when it is there already).
    pub fn with(&self, key: Key, value: &str) -> Filters {
        let mut f = self.clone();
        if !f.values.iter().any(|(k, v)| *k == key && v == value) {
            f.values.push((key, value.to_owned()));
            // Grouped by key (stable: values keep their order), so URLs read the same way.
            f.values.sort_by_key(|(k, _)| *k);
        }
        f
    }

    /// These filters without one value.
    pub fn without(&self, key: Key, value: &str) -> Filters {
        let mut f = self.clone();
        f.values.retain(|(k, v)| !(*k == key && v == value));
        f
    }

    /// The filters as a query string part (`md5=...&ip=...`; empty without filters).
    pub fn query_string(&self) -> String {
        self.values
            .iter()
            .map(|(k, v)| format!("{}={}", k.name(), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// `&` and the query string, or nothing: for appending to a URL that has a query already.
    pub fn and_query(&self) -> String {
        if self.is_empty() {
            String::new()
        } else {
            format!("&{}", self.query_string())
        }
    }

    /// The chips of the active filters; `base` is the page's URL with its other parameters (a
    /// query string included), without the filters and the page number.
    pub fn chips(&self, base: &str) -> Vec<Chip> {
        self.values
            .iter()
            .enumerate()
            .map(|(i, (k, v))| Chip {
                key: k.name(),
                label: k.label(),
                value: v.clone(),
                remove: format!("{base}{}", self.without(*k, v).and_query()),
                then: match self.values.get(i + 1) {
                    None => "",
                    Some((next, _)) if next == k => "or",
                    Some(_) => "and",
                },
            })
            .collect()
    }

    /// Binds `:filters` (the filters over `threat_hits h`) in a scoped query.
    pub fn hit_filters(&self, q: ScopedQuery) -> ScopedQuery {
        let mut q = q
            .sql("filters", HIT_FILTERS)
            .sql("sensor_of_session", SENSOR_OF_SESSION);
        for key in KEYS {
            q = q.texts(param(key), self.of(key));
        }
        q
    }

    /// The (key name, values) pairs as hidden form fields carry them.
    pub fn pairs(&self) -> Vec<(&'static str, String)> {
        self.values
            .iter()
            .map(|(k, v)| (k.name(), v.clone()))
            .collect()
    }
}

fn param(key: Key) -> &'static str {
    match key {
        Key::Md5 => "f_md5",
        Key::FileType => "f_file_type",
        Key::Ip => "f_ip",
        Key::Protocol => "f_protocol",
        Key::Signature => "f_signature",
        Key::Sensor => "f_sensor",
    }
}

/// What the page templates need: the chips, the URL that keeps everything but the filters
/// (`clear`), and the URL that keeps everything (`filter_base`, to which a link appends
/// `&KEY=VALUE` to add a filter). Filter links load the whole page (not an HTMX swap of the
/// table): the range and search forms above the table must carry the new filters too.
#[derive(Debug, Clone, Serialize)]
pub struct FilterView {
    pub chips: Vec<Chip>,
    pub clear: String,
    pub filter_base: String,
}

impl FilterView {
    /// `base`: the page's URL and its parameters other than the filters and the page.
    pub fn new(filters: &Filters, base: &str) -> FilterView {
        FilterView {
            chips: filters.chips(base),
            clear: base.to_owned(),
            filter_base: format!("{base}{}", filters.and_query()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_repeat_values_are_checked_and_links_round_trip() {
        let f = Filters::from_query(
            "ip=10.0.0.1&limit=5&ip=10.0.0.2&md5=D41D8CD98F00B204E9800998ECF8427E&protocol=&ip=10.0.0.1",
        )
        .unwrap();
        assert_eq!(f.of(Key::Ip), vec!["10.0.0.1", "10.0.0.2"]);
        assert_eq!(f.of(Key::Md5), vec!["d41d8cd98f00b204e9800998ecf8427e"]);
        assert!(f.of(Key::Protocol).is_empty());
        assert_eq!(Filters::from_query(&f.query_string()).unwrap(), f);
        assert_eq!(
            f.query_string(),
            "md5=d41d8cd98f00b204e9800998ecf8427e&ip=10.0.0.1&ip=10.0.0.2"
        );
        let chips = f.chips("/r?window=all");
        assert_eq!(
            chips[1].remove,
            "/r?window=all&md5=d41d8cd98f00b204e9800998ecf8427e&ip=10.0.0.2"
        );
        for bad in [
            "md5=abc",
            "ip=10.0.0.300",
            "protocol=t%20cp",
            "signature=%07",
        ] {
            let e = Filters::from_query(bad).unwrap_err().to_string();
            assert!(e.contains(bad.split('=').next().unwrap()), "{e}");
        }
        let spaced = Filters::from_query("file_type=PE%20executable&sensor=edge+1").unwrap();
        assert_eq!(spaced.of(Key::FileType), vec!["PE executable"]);
        assert_eq!(Filters::from_query(&spaced.query_string()).unwrap(), spaced);
    }
}
