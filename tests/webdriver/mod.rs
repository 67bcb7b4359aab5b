//! A small synchronous WebDriver client for Debian's chromium + chromedriver: enough to drive the
//! real app in a real headless browser (navigate, find, click, type, wait, run a script, read the
//! console log, take a screenshot). Written over the test HTTP client instead of pulling in an
//! async WebDriver crate and its runtime.
#![allow(dead_code)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";

/// Whether this machine has the browser and its driver (`.ci/run` installs them).
pub fn available() -> bool {
    std::path::Path::new("/usr/bin/chromium").exists()
        && std::path::Path::new("/usr/bin/chromedriver").exists()
}

pub struct Browser {
    driver: Child,
    base: String,
    session: String,
    agent: ureq::Agent,
    profile: std::path::PathBuf,
    /// Chromium's own log (its console messages, as it prints them), and how much of it
    /// `console_errors` has read.
    chromium_log: std::path::PathBuf,
    chromium_log_read: std::cell::Cell<usize>,
}

#[derive(Clone, Debug)]
pub struct Element(String);

impl Browser {
    pub fn start() -> Browser {
        assert!(
            available(),
            "chromium and chromium-driver are needed: apt-get install -y chromium chromium-driver"
        );
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let chromium_log = std::env::temp_dir().join(format!(
            "heyboss-chromium-{}.log",
            uuid::Uuid::new_v4().simple()
        ));
        // Chromium's own log of every console message, whatever the page's scripts do and
        // whatever WebDriver's log keeps: the one place a blocked inline style cannot hide.
        let driver = Command::new("/usr/bin/chromedriver")
            .arg(format!("--port={port}"))
            .arg(format!("--log-path={}", chromium_log.display()))
            .arg("--enable-chrome-logs")
            .arg("--log-level=OFF")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let base = format!("http://127.0.0.1:{port}");
        let agent = ureq::AgentBuilder::new()
            .timeout(Duration::from_secs(60))
            .build();
        let deadline = Instant::now() + Duration::from_secs(20);
        while agent.get(&format!("{base}/status")).call().is_err() {
            assert!(Instant::now() < deadline, "chromedriver did not answer");
            std::thread::sleep(Duration::from_millis(100));
        }
        let profile = std::env::temp_dir().join(format!(
            "heyboss-chromium-{}",
            uuid::Uuid::new_v4().simple()
        ));
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                    "--disable-quic", "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync", "--window-size=1280,900",
                    "--hide-scrollbars", "--force-device-scale-factor=1",
                    format!("--user-data-dir={}", profile.display()),
                ]
            }
        }}});
        let res: Value = agent
            .post(&format!("{base}/session"))
            .send_json(caps)
            .expect("a browser session")
            .into_json()
            .unwrap();
        let session = res["value"]["sessionId"]
            .as_str()
            .expect("session id")
            .to_owned();
        let browser = Browser {
            driver,
            base,
            session,
            agent,
            profile,
            chromium_log,
            chromium_log_read: std::cell::Cell::new(0),
        };
        browser.record_csp_violations();
        browser
    }

    /// Chromium does not put Content-Security-Policy violations in the `browser` log that
    /// WebDriver reads (an inline style blocked after an HTMX swap went unseen): every document
    /// records them itself, from its first script on, in sessionStorage (kept across the
    /// navigations of the tab), and `console_errors` reads them with the log.
    fn record_csp_violations(&self) {
        let source = "document.addEventListener('securitypolicyviolation', function (e) {
             try {
               var seen = JSON.parse(sessionStorage.getItem('__heybossCsp') || '[]');
               seen.push('CSP ' + e.violatedDirective + ' blocked ' + (e.blockedURI || 'inline') + ' at ' + e.sourceFile + ':' + e.lineNumber + (e.sample ? ' (' + e.sample + ')' : ''));
               sessionStorage.setItem('__heybossCsp', JSON.stringify(seen));
             } catch (_) {}
           }, true);";
        self.call(
            "POST",
            "/goog/cdp/execute",
            Some(json!({"cmd": "Page.addScriptToEvaluateOnNewDocument", "params": {"source": source}})),
        );
    }

    /// The violations recorded since the last call (see `record_csp_violations`).
    fn csp_violations(&self) -> Vec<String> {
        // The event is dispatched in a task after the violation: let it run first.
        let found = self.try_call(
            "POST",
            "/execute/async",
            json!({"script": "const done = arguments[arguments.length - 1];
                setTimeout(function () {
                  try {
                    const seen = JSON.parse(sessionStorage.getItem('__heybossCsp') || '[]');
                    sessionStorage.removeItem('__heybossCsp');
                    done(seen);
                  } catch (_) { done([]); }
                }, 0);", "args": []}),
        );
        found
            .and_then(|v| v.as_array().cloned())
            .unwrap_or_default()
            .into_iter()
            .filter_map(|v| v.as_str().map(str::to_owned))
            .collect()
    }

    fn call(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        let req = self.agent.request(method, &url);
        let res = match body {
            Some(b) => req.send_json(b),
            None => req.call(),
        };
        match res {
            Ok(r) => r.into_json::<Value>().unwrap()["value"].take(),
            Err(ureq::Error::Status(code, r)) => {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                panic!(
                    "webdriver {method} {path} -> {code}: {}",
                    v["value"]["message"]
                )
            }
            Err(e) => panic!("webdriver {method} {path}: {e}"),
        }
    }

    fn try_call(&self, method: &str, path: &str, body: Value) -> Option<Value> {
        let url = format!("{}/session/{}{path}", self.base, self.session);
        match self.agent.request(method, &url).send_json(body) {
            Ok(r) => Some(r.into_json::<Value>().unwrap()["value"].take()),
            Err(_) => None,
        }
    }

    pub fn goto(&self, url: &str) {
        self.call("POST", "/url", Some(json!({ "url": url })));
    }

    pub fn current_url(&self) -> String {
        self.call("GET", "/url", None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn set_window_size(&self, width: u32, height: u32) {
        self.call(
            "POST",
            "/window/rect",
            Some(json!({"width": width, "height": height})),
        );
    }

    pub fn find(&self, css: &str) -> Element {
        self.wait_for(css, Duration::from_secs(10))
            .unwrap_or_else(|| panic!("no element matches {css:?} on {}", self.current_url()))
    }

    pub fn try_find(&self, css: &str) -> Option<Element> {
        let v = self.try_call(
            "POST",
            "/element",
            json!({"using": "css selector", "value": css}),
        )?;
        v[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned()))
    }

    pub fn find_all(&self, css: &str) -> Vec<Element> {
        self.call(
            "POST",
            "/elements",
            Some(json!({"using": "css selector", "value": css})),
        )
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .filter_map(|v| v[ELEMENT_KEY].as_str().map(|id| Element(id.to_owned())))
        .collect()
    }

    pub fn wait_for(&self, css: &str, timeout: Duration) -> Option<Element> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(e) = self.try_find(css) {
                return Some(e);
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Wait until the page's text contains `text` (after an HTMX swap, say).
    pub fn wait_for_text(&self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.page_text().contains(text) {
            assert!(
                Instant::now() < deadline,
                "page never showed {text:?}; it shows:\n{}",
                self.page_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    pub fn click(&self, e: &Element) {
        self.call("POST", &format!("/element/{}/click", e.0), Some(json!({})));
    }

    pub fn type_into(&self, e: &Element, text: &str) {
        self.call("POST", &format!("/element/{}/clear", e.0), Some(json!({})));
        self.call(
            "POST",
            &format!("/element/{}/value", e.0),
            Some(json!({ "text": text })),
        );
    }

    /// Fill a field found by CSS selector.
    pub fn fill(&self, css: &str, text: &str) {
        let e = self.find(css);
        self.type_into(&e, text);
    }

    pub fn text(&self, e: &Element) -> String {
        self.call("GET", &format!("/element/{}/text", e.0), None)
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    pub fn page_text(&self) -> String {
        self.execute(
            "return document.body ? document.body.innerText : '';",
            json!([]),
        )
        .as_str()
        .unwrap_or_default()
        .to_owned()
    }

    pub fn execute(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/sync",
            Some(json!({"script": script, "args": args})),
        )
    }

    pub fn execute_async(&self, script: &str, args: Value) -> Value {
        self.call(
            "POST",
            "/execute/async",
            Some(json!({"script": script, "args": args})),
        )
    }

    /// A marker on the window that a full page load clears: proves an HTMX swap did not reload.
    pub fn mark_page(&self) {
        self.execute("window.__heybossMark = 'still here';", json!([]));
    }

    pub fn page_was_reloaded(&self) -> bool {
        self.execute("return window.__heybossMark !== 'still here';", json!([]))
            .as_bool()
            .unwrap_or(true)
    }

    /// The Content-Security-Policy messages Chromium printed to its own log since the last call.
    fn chromium_csp_messages(&self) -> Vec<String> {
        let log = std::fs::read(&self.chromium_log).unwrap_or_default();
        let from = self.chromium_log_read.replace(log.len()).min(log.len());
        String::from_utf8_lossy(&log[from..])
            .lines()
            .filter(|l| l.contains(":CONSOLE") && l.contains("Content Security Policy"))
            .map(|l| format!("chromium: {}", l.split_once("] ").map_or(l, |(_, m)| m)))
            .collect()
    }

    /// Browser console entries at SEVERE level (errors and failed requests) and Content Security
    /// Policy violations since the last call: as the page saw them, as WebDriver's log kept them
    /// and as Chromium printed them.
    pub fn console_errors(&self) -> Vec<String> {
        let mut errors = self.csp_violations();
        // Chromium writes its log as it goes: give the last lines a moment to land.
        std::thread::sleep(Duration::from_millis(50));
        errors.extend(self.chromium_csp_messages());
        let url = format!("{}/session/{}/se/log", self.base, self.session);
        let logs: Value = match self.agent.post(&url).send_json(json!({"type": "browser"})) {
            Ok(r) => r.into_json().unwrap_or(Value::Null),
            Err(_) => Value::Null,
        };
        logs["value"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_owned())
            .for_each(|e| errors.push(e));
        errors
    }

    /// The text of the open dialog (`window.confirm`), waiting up to 5 s for it to open.
    pub fn alert_text(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let url = format!("{}/session/{}/alert/text", self.base, self.session);
            if let Ok(r) = self.agent.get(&url).call() {
                let v: Value = r.into_json().unwrap_or(Value::Null);
                return v["value"].as_str().unwrap_or_default().to_owned();
            }
            assert!(Instant::now() < deadline, "no dialog opened");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Answer the open dialog: OK (`true`) or Cancel.
    pub fn answer_alert(&self, ok: bool) {
        let what = if ok { "accept" } else { "dismiss" };
        self.call("POST", &format!("/alert/{what}"), Some(json!({})));
    }

    /// Drag with the mouse from a point of `e` (`from`: offset from its centre, in CSS pixels) by
    /// `by`, as a person drags a text box's resize grip.
    pub fn drag(&self, e: &Element, from: (i64, i64), by: (i64, i64)) {
        self.call(
            "POST",
            "/actions",
            Some(json!({"actions": [{"type": "pointer", "id": "mouse", "parameters": {"pointerType": "mouse"}, "actions": [
                {"type": "pointerMove", "duration": 0, "origin": {ELEMENT_KEY: e.0}, "x": from.0, "y": from.1},
                {"type": "pointerDown", "button": 0},
                {"type": "pointerMove", "duration": 100, "origin": "pointer", "x": by.0, "y": by.1},
                {"type": "pointerUp", "button": 0}
            ]}]})),
        );
        self.call("DELETE", "/actions", None);
    }

    /// Press Tab (keyboard focus moves as a person's would, so `:focus-visible` applies).
    pub fn press_tab(&self) {
        self.call(
            "POST",
            "/actions",
            Some(
                json!({"actions": [{"type": "key", "id": "keyboard", "actions": [
                    {"type": "keyDown", "value": "\u{E004}"}, {"type": "keyUp", "value": "\u{E004}"}
                ]}]}),
            ),
        );
    }

    pub fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let b64 = self.call("GET", "/screenshot", None);
        let png = base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().unwrap_or_default())
            .unwrap();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).unwrap();
        }
        std::fs::write(path, png).unwrap();
    }

    /// Run axe-core (vendored in tests/vendor) on the current page; returns the serious and
    /// critical violations as "rule: help (n nodes)".
    pub fn accessibility_violations(&self) -> Vec<String> {
        self.accessibility_findings(&["serious", "critical"])
    }

    /// Run axe-core and return the violations of the given impacts ("minor", "moderate",
    /// "serious", "critical") as "rule: help (nodes)".
    pub fn accessibility_findings(&self, impacts: &[&str]) -> Vec<String> {
        let axe = include_str!("../vendor/axe.min.js");
        self.execute(axe, json!([]));
        let result = self.execute_async(
            "const done = arguments[arguments.length - 1];
             axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations.map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.target.join(' '))})))).catch(e => done([{id: 'axe-error', impact: 'critical', help: String(e), nodes: []}]));",
            json!([]),
        );
        result
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|v| impacts.iter().any(|i| v["impact"] == *i))
            .map(|v| format!("{}: {} ({})", v["id"], v["help"], v["nodes"]))
            .collect()
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self
            .agent
            .delete(&format!("{}/session/{}", self.base, self.session))
            .call();
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
        let _ = std::fs::remove_file(&self.chromium_log);
    }
}
