//! A user's view of the app over real HTTP: a cookie jar, the CSRF token from the last page, and
//! helpers to read what a person would see.
#![allow(dead_code)]

use std::io::Read;

pub mod forms;

#[allow(unused_imports)]
pub use heyboss::testing::{TestApp, TestDatabase};

pub struct Response {
    pub status: u16,
    pub body: String,
    pub headers: Vec<(String, String)>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn all_headers(&self, name: &str) -> Vec<&str> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect()
    }

    #[track_caller]
    pub fn assert_contains(&self, text: &str) -> &Self {
        assert!(
            self.body.contains(text),
            "expected the page to contain {text:?}; status {}, body:\n{}",
            self.status,
            self.body
        );
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).expect("a JSON body")
    }
}

/// One browser: cookies persist across requests; redirects are not followed, so tests see them.
pub struct Client {
    pub base: String,
    agent: ureq::Agent,
    pub csrf: String,
}

impl Client {
    pub fn new(app: &TestApp) -> Client {
        Self::new_at(&app.address)
    }

    /// A browser for an application at `base` (e.g. a second instance).
    pub fn new_at(base: &str) -> Client {
        Client {
            base: base.to_owned(),
            agent: ureq::AgentBuilder::new().redirects(0).build(),
            csrf: String::new(),
        }
    }

    fn finish(&mut self, result: Result<ureq::Response, ureq::Error>) -> Response {
        let res = match result {
            Ok(r) => r,
            Err(ureq::Error::Status(_, r)) => r,
            Err(e) => panic!("request failed: {e}"),
        };
        let status = res.status();
        let headers = res
            .headers_names()
            .into_iter()
            .flat_map(|n| {
                res.all(&n)
                    .into_iter()
                    .map(|v| (n.clone(), v.to_owned()))
                    .collect::<Vec<_>>()
            })
            .collect();
        let mut body = String::new();
        res.into_reader().read_to_string(&mut body).unwrap();
        if let Some(token) = heyboss::testing::csrf_token(&body) {
            self.csrf = token;
        }
        Response {
            status,
            body,
            headers,
        }
    }

    pub fn get(&mut self, path: &str) -> Response {
        let r = self.agent.get(&format!("{}{path}", self.base)).call();
        self.finish(r)
    }

    pub fn get_htmx(&mut self, path: &str) -> Response {
        let r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("HX-Request", "true")
            .call();
        self.finish(r)
    }

    /// A page as a browser shows it once HTMX has fetched what its pager counts after its rows
    /// (a many-key threat report's `hx-get` of `/threats/top/{report}/count`, swapped for the
    /// pager); any other page as `get` gives it.
    pub fn get_counted(&mut self, path: &str) -> Response {
        let mut page = self.get(path);
        let Some(at) = page.body.find("class=\"pager-count\" href=\"") else {
            return page;
        };
        let rest = &page.body[at + "class=\"pager-count\" href=\"".len()..];
        let url = forms::unescape(&rest[..rest.find('"').expect("the count link ends")]);
        let pager = self.get_htmx_from(&url, path);
        assert_eq!(pager.status, 200, "{url}: {}", pager.body);
        let start = page.body[..at]
            .rfind("<nav class=\"pager")
            .expect("the pager");
        let end = at + page.body[at..].find("</nav>").expect("the pager ends") + "</nav>".len();
        page.body.replace_range(start..end, pager.body.trim());
        page
    }

    /// An HTMX request from a page whose address bar shows `current` (HTMX's `HX-Current-URL`).
    pub fn get_htmx_from(&mut self, path: &str, current: &str) -> Response {
        let r = self
            .agent
            .get(&format!("{}{path}", self.base))
            .set("HX-Request", "true")
            .set("HX-Current-URL", &format!("{}{current}", self.base))
            .call();
        self.finish(r)
    }

    /// Post a form with the current CSRF token, as the page's form would.
    pub fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let csrf = self.csrf.clone();
        let mut all: Vec<(&str, &str)> = vec![("csrf_token", &csrf)];
        all.extend_from_slice(fields);
        let r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .send_form(&all);
        self.finish(r)
    }

    /// Submit a form of a page as the browser would (its own fields and key), with some fields
    /// changed as a person would change them.
    pub fn submit(&mut self, form: &forms::Form, changes: &[(&str, &str)]) -> Response {
        let mut fields = form.pairs();
        for (name, value) in changes {
            match fields.iter_mut().find(|(k, _)| k == name) {
                Some(f) => f.1 = (*value).to_owned(),
                None => fields.push(((*name).to_owned(), (*value).to_owned())),
            }
        }
        let pairs: Vec<(&str, &str)> = fields
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let r = self
            .agent
            .post(&format!("{}{}", self.base, form.action))
            .send_form(&pairs);
        self.finish(r)
    }

    /// Post through HTMX: the token travels in the X-CSRF-Token header.
    pub fn post_htmx(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("HX-Request", "true")
            .set("X-CSRF-Token", &self.csrf.clone())
            .send_form(fields);
        self.finish(r)
    }

    /// Post a raw urlencoded body after the page's CSRF token, as a form would.
    pub fn post_raw_form(&mut self, path: &str, body: &[u8]) -> Response {
        let mut all = format!("csrf_token={}&", self.csrf).into_bytes();
        all.extend_from_slice(body);
        self.post_raw(path, "application/x-www-form-urlencoded", &all)
    }

    /// Post a raw urlencoded body through HTMX (the token in the X-CSRF-Token header).
    pub fn post_htmx_raw(&mut self, path: &str, body: &[u8]) -> Response {
        let r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("HX-Request", "true")
            .set("X-CSRF-Token", &self.csrf.clone())
            .set("Content-Type", "application/x-www-form-urlencoded")
            .send_bytes(body);
        self.finish(r)
    }

    /// Post without any CSRF token.
    pub fn post_without_csrf(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .send_form(fields);
        self.finish(r)
    }

    pub fn post_raw(&mut self, path: &str, content_type: &str, body: &[u8]) -> Response {
        let r = self
            .agent
            .post(&format!("{}{path}", self.base))
            .set("Content-Type", content_type)
            .send_bytes(body);
        self.finish(r)
    }

    pub fn cookie(&self, name: &str) -> Option<String> {
        self.agent
            .cookie_store()
            .iter_any()
            .find(|c| c.name() == name)
            .map(|c| c.value().to_owned())
    }

    /// Sign in through the login form; panics unless it redirects.
    pub fn login(&mut self, username: &str, password: &str) -> Response {
        self.get("/login");
        let res = self.post("/login", &[("username", username), ("password", password)]);
        assert_eq!(
            res.status, 303,
            "sign-in of {username} failed: {}",
            res.body
        );
        // Load the landing page's CSRF token, as the browser would.
        self.get("/account");
        res
    }
}

/// Create an account directly through the accounts service (as the CLI does).
pub fn create_user(app: &TestApp, username: &str, role: &str, password: &str) -> uuid::Uuid {
    app.create_account(username, role, password)
}

pub const PASSWORD: &str = "correct horse battery";

/// Count events of a type in the log.
pub fn count_events(app: &TestApp, event_type: &str) -> i64 {
    use diesel::prelude::*;
    use heyboss::schema::events;
    let mut conn = app.state.pool.get().unwrap();
    events::table
        .filter(events::event_type.eq(event_type))
        .count()
        .get_result(&mut conn)
        .unwrap()
}

/// The real `heyboss` binary run on a database, as an operator runs it.
pub fn heyboss_cli(db_url: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_heyboss"))
        .args(args)
        .env("DATABASE_URL", db_url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap()
}

/// The text of an HTML fragment as a reader sees it: tags removed, spaces collapsed.
pub fn text_of(html: &str) -> String {
    let mut out = String::new();
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// An account with a display name, made through the accounts service as the CLI makes one.
pub fn create_named_user(app: &TestApp, username: &str, name: &str, role: &str) -> uuid::Uuid {
    let mut conn = app.state.pool.get().unwrap();
    let account = heyboss::accounts::NewAccount::parse(username, name, "", role, PASSWORD)
        .expect("a valid account");
    heyboss::accounts::service::register(
        &mut conn,
        &app.state.store,
        heyboss::es::Metadata::new(heyboss::es::Actor::Cli),
        account,
        |_, _| Ok(()),
    )
    .expect("the account is registered")
}
