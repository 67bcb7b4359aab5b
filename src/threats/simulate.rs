//! A simulated sensor: a generator of realistic sensor event streams (sessions with files, scores
//! by several integrations, occasional rescans) and a minimal keep-alive HTTP/1.1 client over
//! `std::net::TcpStream` to post them through the real API (no HTTP client crate needed).

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use serde_json::{json, Value};

/// Signature names and their groups used by the demo and the simulator.
pub const DEMO_SIGNATURES: &[(&str, &str)] = &[
    ("ET-TROJAN-Emotet", "malware"),
    ("ET-TROJAN-Qakbot", "malware"),
    ("YARA-Ransom-Lockbit", "malware"),
    ("ET-PHISH-Office365", "phishing"),
    ("ET-PHISH-DocuSign", "phishing"),
    ("DLP-Exfil-Archive", "exfiltration"),
    ("DLP-Exfil-Database", "exfiltration"),
    ("ET-SCAN-Nmap", "recon"),
];

const PROTOCOLS: &[&str] = &["http", "https", "smtp", "smb", "ftp", "dns"];
const FILE_TYPES: &[(&str, &str)] = &[
    ("pe", "exe"),
    ("pdf", "pdf"),
    ("docx", "docx"),
    ("zip", "zip"),
    ("js", "js"),
    ("elf", "bin"),
];
const INTEGRATIONS: &[&str] = &["clamav", "yara", "sandbox", "virustotal"];

/// Where a simulated sensor takes its batches from.
pub trait EventSource {
    /// The next `n` events to post.
    fn batch(&mut self, n: usize) -> Vec<Value>;
}

/// Events listed in advance, posted in order.
impl EventSource for std::collections::VecDeque<Value> {
    fn batch(&mut self, n: usize) -> Vec<Value> {
        let n = n.min(self.len());
        self.drain(..n).collect()
    }
}

/// A deterministic generator of sensor events (xorshift, so runs are repeatable by seed).
pub struct Generator {
    state: u64,
    prefix: String,
    signatures: Vec<String>,
    hashes: u64,
    counter: u64,
    pending: std::collections::VecDeque<Value>,
    /// Hits scored so far that may be rescanned: (file, session, integration, signature).
    scored: Vec<(String, String, String, String)>,
}

impl EventSource for Generator {
    fn batch(&mut self, n: usize) -> Vec<Value> {
        Generator::batch(self, n)
    }
}

impl Generator {
    /// `hashes`: how many distinct md5s the files draw from (skewed: a few are frequent).
    pub fn new(seed: u64, signatures: Vec<String>, hashes: u64) -> Generator {
        Generator {
            state: seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1,
            prefix: format!("{:08x}", seed),
            signatures,
            hashes: hashes.max(1),
            counter: 0,
            pending: Default::default(),
            scored: Vec::new(),
        }
    }

    fn next(&mut self) -> u64 {
        let mut x = self.state;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.state = x;
        x
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn uuid(&mut self) -> String {
        let (a, b) = (self.next(), self.next());
        uuid::Uuid::from_u64_pair(a, b).to_string()
    }

    fn push(&mut self, event_type: &str, data: Value) {
        let id = self.uuid();
        self.pending
            .push_back(json!({"id": id, "type": event_type, "data": data}));
    }

    /// The next `n` events (a session's events may span batches, in order).
    pub fn batch(&mut self, n: usize) -> Vec<Value> {
        while self.pending.len() < n {
            self.session();
        }
        self.pending.drain(..n).collect()
    }

    fn session(&mut self) {
        self.counter += 1;
        let session_id = format!("s-{}-{}", self.prefix, self.counter);
        let minutes_ago = self.below(60 * 24 * 40) as i64;
        let start = chrono::Utc::now() - chrono::Duration::minutes(minutes_ago);
        let src = format!(
            "10.{}.{}.{}",
            self.below(4),
            self.below(16),
            1 + self.below(200)
        );
        let dst = format!("198.51.100.{}", 1 + self.below(30));
        let protocol = PROTOCOLS[self.below(PROTOCOLS.len() as u64) as usize];
        let sport = 1024 + self.below(60000);
        let dport = [80, 443, 25, 445, 21, 53][self.below(6) as usize];
        self.push(
            "SessionDiscovered",
            json!({"session_id": session_id, "start_time": start.to_rfc3339(), "protocol": protocol,
                   "source_ip": src, "destination_ip": dst, "source_port": sport, "destination_port": dport}),
        );
        let files = 1 + self.below(2);
        let mut top = (0, String::new());
        for f in 0..files {
            let file_id = format!("{session_id}-f{f}");
            // Skewed: half the files come from a hot tenth of the hashes.
            let h = if self.below(2) == 0 {
                self.below((self.hashes / 10).max(1))
            } else {
                self.below(self.hashes)
            };
            let md5 = format!(
                "{:032x}",
                (h as u128).wrapping_mul(0x9E37_79B9_7F4A_7C15_F39C_C060_5CED_C835)
            );
            let (ftype, ext) = FILE_TYPES[(h % FILE_TYPES.len() as u64) as usize];
            let size = 1000 + self.below(5_000_000);
            self.push(
                "FileDiscovered",
                json!({"file_id": file_id, "session_id": session_id, "md5": md5,
                       "filename": format!("file{h}.{ext}"), "file_type": ftype, "size_bytes": size}),
            );
            let scans = 1 + self.below(2);
            for _ in 0..scans {
                let integration =
                    INTEGRATIONS[self.below(INTEGRATIONS.len() as u64) as usize].to_owned();
                let pick = self.below(self.signatures.len() as u64) as usize;
                let signature = self.signatures[pick].clone();
                if self
                    .scored
                    .iter()
                    .rev()
                    .take(8)
                    .any(|(fi, _, i, s)| *fi == file_id && *i == integration && *s == signature)
                {
                    continue;
                }
                let score = self.below(101);
                if score > top.0 {
                    top = (score, signature.clone());
                }
                self.push(
                    "FileScored",
                    json!({"file_id": file_id, "session_id": session_id, "integration": integration, "score": score, "signature": signature}),
                );
                self.scored
                    .push((file_id.clone(), session_id.clone(), integration, signature));
            }
        }
        // Now and then a rescan of an earlier hit.
        if !self.scored.is_empty() && self.below(4) == 0 {
            let i = self.below(self.scored.len() as u64) as usize;
            let (file_id, sid, integration, signature) = self.scored[i].clone();
            let new_score = self.below(101);
            self.push(
                "FileRescored",
                json!({"file_id": file_id, "session_id": sid, "integration": integration, "new_score": new_score, "signature": signature}),
            );
        }
        if self.scored.len() > 10_000 {
            self.scored.drain(..5_000);
        }
        self.push(
            "SessionScored",
            json!({"session_id": session_id, "threat_contributor": if top.1.is_empty() { "none".to_owned() } else { top.1 }, "score": top.0}),
        );
    }
}

/// Sessions whose files several integrations score at once (the talk's "multiple daemons"): the
/// sessions and their files first ([`Scorers::discoveries`]), then scores of random files of all
/// of them, each scorer as its own integration ([`Scorers::scorer`]), so that concurrent batches
/// touch the same session streams.
#[derive(Debug, Clone, Copy)]
pub struct Scorers {
    pub sessions: u64,
    pub files_per_session: u64,
}

impl Scorers {
    fn session_id(s: u64) -> String {
        format!("overlap-{s}")
    }

    fn file_id(s: u64, f: u64) -> String {
        format!("overlap-{s}-f{f}")
    }

    /// Every session and file, in order (sessions before their files).
    pub fn discoveries(&self) -> std::collections::VecDeque<Value> {
        let mut g = Generator::new(1, Vec::new(), 1);
        let start = chrono::Utc::now().to_rfc3339();
        for s in 0..self.sessions {
            let session_id = Self::session_id(s);
            g.push(
                "SessionDiscovered",
                json!({"session_id": session_id, "start_time": start, "protocol": PROTOCOLS[(s % 6) as usize],
                       "source_ip": format!("10.1.{}.{}", s % 200, 1 + s % 250), "destination_ip": "198.51.100.7",
                       "source_port": 40000 + s % 20000, "destination_port": 443}),
            );
            for f in 0..self.files_per_session {
                let (ftype, ext) = FILE_TYPES[((s + f) % 6) as usize];
                g.push(
                    "FileDiscovered",
                    json!({"file_id": Self::file_id(s, f), "session_id": session_id,
                           "md5": format!("{:032x}", (s * 7 + f) % 5000), "filename": format!("o{s}-{f}.{ext}"),
                           "file_type": ftype, "size_bytes": 1000 + f}),
                );
            }
        }
        std::mem::take(&mut g.pending)
    }

    /// Scorer number `n`: integration `scorer-n`, scores of random files, never the same file
    /// and signature twice.
    pub fn scorer(&self, n: u64, signatures: Vec<String>) -> Scorer {
        Scorer {
            generator: Generator::new(7_000 + n, signatures, 1),
            integration: format!("scorer-{n}"),
            plan: *self,
            scored: std::collections::HashSet::new(),
        }
    }
}

/// Posts `FileScored` events for random files of [`Scorers`]' sessions.
pub struct Scorer {
    generator: Generator,
    integration: String,
    plan: Scorers,
    scored: std::collections::HashSet<(u64, u64, usize)>,
}

impl EventSource for Scorer {
    fn batch(&mut self, n: usize) -> Vec<Value> {
        let g = &mut self.generator;
        let pairs = self.plan.sessions * self.plan.files_per_session * g.signatures.len() as u64;
        while g.pending.len() < n && (self.scored.len() as u64) < pairs {
            let s = g.below(self.plan.sessions);
            let f = g.below(self.plan.files_per_session);
            let sig = g.below(g.signatures.len() as u64) as usize;
            if !self.scored.insert((s, f, sig)) {
                continue;
            }
            let score = g.below(101);
            let data = json!({"file_id": Scorers::file_id(s, f), "session_id": Scorers::session_id(s),
                              "integration": self.integration, "score": score, "signature": g.signatures[sig]});
            g.push("FileScored", data);
        }
        let n = n.min(g.pending.len());
        g.pending.drain(..n).collect()
    }
}

/// A keep-alive HTTP/1.1 connection to the app, enough to post JSON.
pub struct HttpClient {
    host: String,
    reader: BufReader<TcpStream>,
}

impl HttpClient {
    /// `base`: `http://host:port` (no TLS).
    pub fn connect(base: &str) -> std::io::Result<HttpClient> {
        let host = base
            .trim_end_matches('/')
            .strip_prefix("http://")
            .ok_or_else(|| std::io::Error::other("only http:// URLs are supported"))?
            .to_owned();
        let stream = TcpStream::connect(&host)?;
        stream.set_nodelay(true)?;
        Ok(HttpClient {
            host,
            reader: BufReader::new(stream),
        })
    }

    /// POST a JSON body; returns the status and the body.
    pub fn post_json(
        &mut self,
        path: &str,
        token: &str,
        body: &str,
    ) -> std::io::Result<(u16, String)> {
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: {}\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            self.host,
            body.len()
        );
        let stream = self.reader.get_mut();
        stream.write_all(head.as_bytes())?;
        stream.write_all(body.as_bytes())?;
        self.read_response()
    }

    fn read_response(&mut self) -> std::io::Result<(u16, String)> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| std::io::Error::other(format!("bad status line {line:?}")))?;
        let mut length = None;
        let mut chunked = false;
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let l = line.trim_end();
            if l.is_empty() {
                break;
            }
            if let Some((k, v)) = l.split_once(':') {
                let (k, v) = (k.trim().to_ascii_lowercase(), v.trim());
                if k == "content-length" {
                    length = v.parse::<usize>().ok();
                } else if k == "transfer-encoding" && v.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                }
            }
        }
        let mut body = Vec::new();
        if chunked {
            loop {
                line.clear();
                self.reader.read_line(&mut line)?;
                let size = usize::from_str_radix(line.trim(), 16).map_err(std::io::Error::other)?;
                let mut chunk = vec![0; size + 2];
                self.reader.read_exact(&mut chunk)?;
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        } else {
            body.resize(length.unwrap_or(0), 0);
            self.reader.read_exact(&mut body)?;
        }
        Ok((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// What a simulation run did.
#[derive(Debug, Clone, Copy)]
pub struct RunStats {
    pub events: u64,
    pub batches: u64,
    pub seconds: f64,
}

/// Post `total` events in batches of `batch` at about `rate` events per second (0: as fast as
/// the server takes them). Stops at the first answer other than 200.
pub fn run(
    base: &str,
    token: &str,
    generator: &mut impl EventSource,
    total: u64,
    batch: usize,
    rate: u64,
) -> Result<RunStats, String> {
    let mut client =
        HttpClient::connect(base).map_err(|e| format!("cannot connect to {base}: {e}"))?;
    let started = std::time::Instant::now();
    let (mut sent, mut batches) = (0u64, 0u64);
    while sent < total {
        let events = generator.batch(batch.min((total - sent) as usize));
        if events.is_empty() {
            break;
        }
        let n = events.len();
        let body = json!({ "events": events }).to_string();
        let (status, answer) = client
            .post_json("/api/v1/events", token, &body)
            .map_err(|e| format!("posting failed: {e}"))?;
        if status != 200 {
            return Err(format!("the server answered {status}: {answer}"));
        }
        sent += n as u64;
        batches += 1;
        if rate > 0 {
            let due = std::time::Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
    }
    Ok(RunStats {
        events: sent,
        batches,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Append `n` more of the generator's events to the log as the sensor API would, but with no
/// projection run (a benchmark then rebuilds them). `versions` holds each session stream's version.
/// A benchmark's helper: panics on any error.
pub fn append_unprojected(
    conn: &mut diesel::PgConnection,
    generator: &mut Generator,
    versions: &mut std::collections::HashMap<String, i64>,
    n: usize,
) {
    let metadata = serde_json::to_value(crate::es::Metadata::new(crate::es::Actor::Cli)).unwrap();
    let mut left = n;
    while left > 0 {
        let size = left.min(5000);
        left -= size;
        let body = serde_json::json!({ "events": generator.batch(size) }).to_string();
        let (items, errors) = super::ingest::parse_body(body.as_bytes()).unwrap();
        assert!(errors.is_empty(), "{errors:?}");
        let (order, per_stream) = super::ingest::by_session(items.iter().map(|i| &i.event));
        let appends: Vec<crate::es::store::StreamAppend> = order
            .iter()
            .map(|sid| crate::es::store::StreamAppend {
                stream_type: super::events::SESSION_STREAM,
                stream_id: sid,
                expected_version: versions.get(sid).copied().unwrap_or(0),
                events: &per_stream[sid],
            })
            .collect();
        diesel::Connection::transaction(conn, |conn| {
            crate::es::store::append_many(conn, &appends, &metadata).map(|_| ())
        })
        .unwrap();
        for sid in order {
            *versions.entry(sid.clone()).or_default() += per_stream[&sid].len() as i64;
        }
    }
}
