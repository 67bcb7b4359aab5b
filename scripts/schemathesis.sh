#!/usr/bin/env bash
# The sensor API against its own OpenAPI document, with schemathesis: starts `heyboss serve` on a
# scratch database with a sensor made through the CLI, lets schemathesis generate valid and invalid
# batches from GET /api/v1/openapi.json, and fails when an answer is a 5xx, is not documented, does
# not match its documented body, when invalid data is accepted, or when valid data is refused for
# any reason but the state-dependent references the 422 description names
# (scripts/schemathesis_hooks.py). Then stops the server and drops the scratch database.
#
# Needs python3 (with venv) and PostgreSQL on localhost:5432 (scripts/setup.sh). Settings:
#   SCHEMATHESIS_EXAMPLES  examples per operation and phase (default 150)
#   SCHEMATHESIS_SEED      replay a run (the seed is printed)
#   HEYBOSS_BIN            the binary to test (default: target/debug/heyboss, built when stale)
# Extra arguments go to `schemathesis run`.
set -euo pipefail
cd "$(dirname "$0")/.."

SCHEMATHESIS_VERSION=4.32.5
target=${CARGO_TARGET_DIR:-target}
venv=$target/schemathesis-venv
examples=${SCHEMATHESIS_EXAMPLES:-150}
seed=${SCHEMATHESIS_SEED:-$RANDOM$RANDOM}
pg=postgres://localhost:5432
db=heyboss_schemathesis_$$

log() { printf '\n==> %s\n' "$*"; }

# A pinned schemathesis in a virtual environment, reused when it holds that version.
if [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" != "schemathesis, version $SCHEMATHESIS_VERSION" ]; then
  log "installing schemathesis $SCHEMATHESIS_VERSION into $venv"
  rm -rf "$venv"
  python3 -m venv "$venv" || {
    echo "python3 cannot make a virtual environment: install python3 with venv (Debian: apt-get install -y python3-venv)" >&2
    exit 1
  }
  "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi

if [ -z "${HEYBOSS_BIN:-}" ]; then
  log "building heyboss (a no-op when up to date)"
  cargo build --quiet --bin heyboss
  HEYBOSS_BIN=$target/debug/heyboss
fi

server=
cleanup() {
  if [ -n "$server" ]; then
    kill "$server" 2>/dev/null || true
    wait "$server" 2>/dev/null || true
  fi
  dropdb --if-exists -h localhost -p 5432 "$db" 2>/dev/null || true
}
trap cleanup EXIT

log "scratch database $db, sensor st"
createdb -h localhost -p 5432 "$db"
export DATABASE_URL=$pg/$db
"$HEYBOSS_BIN" migrate >/dev/null
token=$("$HEYBOSS_BIN" sensors create --name st | tail -n 1)

port=$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
base=http://127.0.0.1:$port
RUST_LOG=${RUST_LOG:-warn} "$HEYBOSS_BIN" serve --bind "127.0.0.1:$port" >"$target/schemathesis-server.log" 2>&1 &
server=$!
up() { "$venv/bin/python" -c 'import sys, urllib.request; urllib.request.urlopen(sys.argv[1], timeout=2)' "$base/healthz" 2>/dev/null; }
for _ in $(seq 1 100); do
  up && break
  kill -0 "$server" 2>/dev/null || { cat "$target/schemathesis-server.log"; exit 1; }
  sleep 0.1
done
up || { echo "heyboss did not answer on $base/healthz" >&2; exit 1; }

log "schemathesis $SCHEMATHESIS_VERSION on $base (seed $seed, $examples examples)"
# positive_data_acceptance is replaced by the hook's check, which allows a 422 only for the
# references a schema cannot know; every other check is schemathesis's own.
SCHEMATHESIS_HOOKS=scripts.schemathesis_hooks PYTHONPATH=. \
  "$venv/bin/schemathesis" --config-file scripts/schemathesis.toml run "$base/api/v1/openapi.json" \
  --header "Authorization: Bearer $token" \
  --checks not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance,negative_data_rejection,ignored_auth,positive_data_acceptance_except_references \
  --max-examples "$examples" --seed "$seed" --workers 2 \
  --suppress-health-check too_slow \
  --report junit --report-dir "$target/schemathesis-report" \
  "$@"
