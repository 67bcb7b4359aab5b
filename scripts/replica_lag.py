#!/usr/bin/env python3
"""Replica lag under the sensor ingest, and which server answered the reads (docs/SCALING.md).

    bash scripts/replica.sh ensure                      # the streaming replica on port 5433
    cargo build --release
    EVENTS=200000 python3 scripts/replica_lag.py        # BIN=... for another binary

Makes the database `repl_measure` on the local primary (port 5432; the replica follows it), starts
`heyboss serve --demo` on it with HEYBOSS_REPLICA_URL on the replica, and while `heyboss simulate`
posts EVENTS sensor events: an analyst and an admin browse report pages and the audit log; staff
changes their email and then opens their audit log (a read that must show their own write);
pg_stat_replication is sampled every 250 ms on the primary. Prints the replay lag, the WAL behind,
the pages' times and `heyboss_reads_total{served_by}` over the run, then drops the database.
Needs python3-requests (Debian's package)."""
import os, re, subprocess, sys, threading, time, statistics
import requests

BIN = os.environ.get("BIN", "target/release/heyboss")
DB = "repl_measure"
EVENTS = int(os.environ.get("EVENTS", "100000"))
PORT = 18282
BASE = f"http://127.0.0.1:{PORT}"
P = f"postgres://root@localhost:5432/{DB}?sslmode=disable"
R = f"postgres://root@localhost:5433/{DB}?sslmode=disable"

def psql(sql, port=5432, db="postgres"):
    return subprocess.run(["psql", "-p", str(port), "-Atqd", db, "-c", sql], capture_output=True, text=True).stdout.strip()

psql(f"drop database if exists {DB}")
psql(f"create database {DB}")
env = dict(os.environ, DATABASE_URL=P, HEYBOSS_REPLICA_URL=R)
server = subprocess.Popen([BIN, "serve", "--demo", "--bind", f"127.0.0.1:{PORT}"], env=env,
                          stdout=open("/tmp/replm-serve.log", "w"), stderr=subprocess.STDOUT)
for _ in range(120):
    try:
        if requests.get(BASE + "/healthz", timeout=1).ok: break
    except Exception: pass
    time.sleep(1)
time.sleep(15)

def login(user):
    s = requests.Session()
    page = s.get(BASE + "/login").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
    r = s.post(BASE + "/login", data={"csrf_token": token, "username": user, "password": "heyboss-demo"}, allow_redirects=False)
    assert r.status_code in (302, 303), r.status_code
    return s

analyst, admin = login("analyst"), login("admin")
pages = {
    analyst: ["/threats/top/hash", "/threats/top/hash?window=24h", "/threats/top/ip-pair?window=7d",
              "/threats/top/file-type", "/threats/top/protocol?window=1h", "/threats/sessions", "/threats/rescans"],
    admin: ["/audit", "/threats/top/file-type?window=30d", "/threats/sessions?window=24h"],
}
writer = login("staff")
own_reads, writes, seen = [], [0], [0]
def write_then_read():
    import uuid
    n = 0
    while not stop.is_set():
        page = writer.get(BASE + "/account").text
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        n += 1
        r = writer.post(BASE + "/account/email", data={"csrf_token": token, "command_id": str(uuid.uuid4()),
                        "email": f"staff{n}@example.edu"}, allow_redirects=False)
        assert r.status_code == 303, r.status_code
        writes[0] += 1
        t = time.perf_counter()
        r = writer.get(BASE + "/audit")
        own_reads.append((time.perf_counter() - t) * 1000)
        if f"staff{n}@example.edu" in r.text:
            seen[0] += 1
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        time.sleep(0.3)
def metrics():
    return requests.get(BASE + "/metrics").text
def reads(text):
    out = {}
    for m in re.finditer(r'heyboss_reads_total\{served_by="([^"]+)"\} (\d+)', text):
        out[m.group(1)] = int(m.group(2))
    return out

before = reads(metrics())
stop = threading.Event()
lags, lag_bytes, timings, statuses = [], [], [], {}
def sample():
    while not stop.is_set():
        row = psql("select coalesce(extract(epoch from replay_lag)*1000, 0), pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn) from pg_stat_replication limit 1")
        if row:
            a, b = row.split("|")
            lags.append(float(a)); lag_bytes.append(int(float(b)))
        time.sleep(0.25)
def browse(s):
    i = 0
    while not stop.is_set():
        path = pages[s][i % len(pages[s])]; i += 1
        t = time.perf_counter()
        r = s.get(BASE + path)
        timings.append((time.perf_counter() - t) * 1000)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        time.sleep(0.05)
threads = [threading.Thread(target=sample), threading.Thread(target=write_then_read)] + [threading.Thread(target=browse, args=(s,)) for s in (analyst, admin)]
for t in threads: t.start()
t0 = time.time()
load0 = os.getloadavg()[0]
sim = subprocess.run([BIN, "simulate", "--url", BASE, "--events", str(EVENTS), "--batch", "500", "--seed", "22"],
                     env=env, capture_output=True, text=True)
elapsed = time.time() - t0
stop.set()
for t in threads: t.join()
after_text = metrics()
after = reads(after_text)
print("simulate:", sim.stdout.strip().splitlines()[-1] if sim.stdout.strip() else sim.stderr[-300:])
print(f"load {load0:.2f} -> {os.getloadavg()[0]:.2f}, {elapsed:.1f} s")
def pct(xs, p):
    xs = sorted(xs); return xs[min(len(xs) - 1, int(p / 100 * len(xs)))] if xs else float('nan')
print(f"replay lag ms (pg_stat_replication.replay_lag, {len(lags)} samples): p50 {pct(lags,50):.1f} p99 {pct(lags,99):.1f} max {max(lags):.1f}")
print(f"WAL behind bytes: mean {statistics.mean(lag_bytes):,.0f} p99 {pct(lag_bytes,99):,} max {max(lag_bytes):,}")
print(f"pages: {len(timings)} requests, statuses {statuses}, p50 {pct(timings,50):.1f} ms p99 {pct(timings,99):.1f} ms")
print(f"staff: {writes[0]} email changes, each followed by their audit log, which showed the new address {seen[0]} times: p50 {pct(own_reads,50):.1f} ms p99 {pct(own_reads,99):.1f} ms")
delta = {k: after.get(k, 0) - before.get(k, 0) for k in after}
total = sum(delta.values())
print("reads during the run by served_by:", delta, f"replica share {delta.get('replica',0)/max(total,1):.3f}")
for line in after_text.splitlines():
    if line.startswith("heyboss_replica_"): print(line)
server.terminate(); server.wait()
psql(f"drop database {DB}")
