#!/usr/bin/env bash
# Lighthouse accessibility on every page each demo role reaches, phone and desktop.
#
#   scripts/lighthouse.sh                          # starts `serve --demo` on a scratch database
#   scripts/lighthouse.sh http://127.0.0.1:8080    # an app already serving the demo data
#
# Signs in as each demo account (student, staff, analyst, admin; password heyboss-demo), follows
# the links of its pages (one page of each kind: numbers, uuids and names in a path count as one
# kind), runs `lighthouse --only-categories=accessibility` on each, as a phone (Lighthouse's default
# emulation) and with `--preset=desktop`, prints the table and exits 1 when any score is below 100
# (the failing audits are listed under the table). Not part of CI (it needs npm and Chromium).
#
# LIGHTHOUSE: the lighthouse command (default: `lighthouse` on PATH, else lighthouse@12 installed
# by npm into $LH_HOME, default /tmp/heyboss-lighthouse). CHROME_PATH: Chromium (/usr/bin/chromium).
# LH_OUT: where the JSON reports go (a temporary folder). LH_ROLES: the roles (all four).
# LH_MAX_PAGES: pages per role at most (60). LH_LIST_ONLY=1: list the pages found, run nothing.
# LH_JOBS: Lighthouse runs at a time (2). LH_EVERY_ROLE=1: measure a kind of page for every role
# that reaches it (by default only for the first role, in the order of LH_ROLES).
set -euo pipefail

cd "$(dirname "$0")/.."
base=${1:-}
roles=${LH_ROLES:-"visitor student staff analyst admin"}
max_pages=${LH_MAX_PAGES:-60}
out=${LH_OUT:-$(mktemp -d /tmp/heyboss-lighthouse-out.XXXXXX)}
mkdir -p "$out"
export CHROME_PATH=${CHROME_PATH:-/usr/bin/chromium}

lighthouse_cmd() {
  if [[ -n ${LIGHTHOUSE:-} ]]; then
    echo "$LIGHTHOUSE"
  elif command -v lighthouse >/dev/null; then
    echo lighthouse
  else
    local home=${LH_HOME:-/tmp/heyboss-lighthouse}
    if [[ ! -x $home/node_modules/.bin/lighthouse ]]; then
      mkdir -p "$home"
      (cd "$home" && npm install --no-audit --no-fund lighthouse@12 >&2)
    fi
    echo "$home/node_modules/.bin/lighthouse"
  fi
}
lh=$(lighthouse_cmd)

server_pid=
scratch_db=
cleanup() {
  if [[ -n $server_pid ]]; then kill "$server_pid" 2>/dev/null || true; wait "$server_pid" 2>/dev/null || true; fi
  if [[ -n $scratch_db ]]; then psql -q -h localhost -d postgres -c "drop database if exists $scratch_db" || true; fi
}
trap cleanup EXIT

if [[ -z $base ]]; then
  port=${LH_PORT:-8097}
  scratch_db=heyboss_lighthouse_$$
  psql -q -h localhost -d postgres -c "create database $scratch_db"
  cargo build -q
  DATABASE_URL=postgres://localhost:5432/$scratch_db ./target/debug/heyboss serve --demo \
    --bind "127.0.0.1:$port" >"$out/serve.log" 2>&1 &
  server_pid=$!
  base=http://127.0.0.1:$port
  for _ in $(seq 1 120); do
    curl -fsS "$base/healthz" >/dev/null 2>&1 && grep -q 'demo data ready' "$out/serve.log" && break
    sleep 1
  done
  grep -q 'demo data ready' "$out/serve.log" || { echo "the demo did not start: $out/serve.log" >&2; exit 1; }
fi
base=${base%/}

# The kind of a page: numbers, uuids, hashes and signature/account names count as one.
kind_of() {
  sed -E -e 's/\?.*$//' \
    -e 's#/[^/]*[0-9][^/]*(/|$)#/{id}\1#g' -e 's#/[^/]*[0-9][^/]*(/|$)#/{id}\1#g' \
    -e 's#^/threats/signatures/[^/]+#/threats/signatures/{name}#' \
    -e 's#^/threats/top/[^/]+#/threats/top/{report}#' \
    -e 's#^/history/([^/]+)/[^/]+#/history/\1/{id}#' <<<"$1"
}

# Links a page offers that a crawl may follow: same-site GETs that are pages (no exports, no API).
links_of() {
  # Tera escapes `/` in values as `&#x2F;`.
  sed 's|&#x2F;|/|g' "$1" | grep -oE 'href="/[^"#]*"' | sed -E 's/^href="//; s/"$//; s/&amp;/\&/g' |
    grep -vE '^/(static|api|metrics|healthz|logout)|format=csv|/progress|/banner' || true
}

sign_in() { # role jar
  local role=$1 jar=$2 token
  token=$(curl -fsS -c "$jar" -b "$jar" "$base/login" | grep -oE 'name="csrf_token" value="[^"]+"' | head -1 |
    sed -E 's/.*value="([^"]+)"/\1/')
  curl -fsS -o /dev/null -c "$jar" -b "$jar" --data-urlencode "csrf_token=$token" \
    --data-urlencode "username=$role" --data-urlencode "password=heyboss-demo" "$base/login"
  grep -q heyboss_session "$jar" || { echo "could not sign in as $role" >&2; exit 1; }
}

# Phase 1: each role's pages, one of each kind (a kind measured for an earlier role is not measured
# again unless LH_EVERY_ROLE=1), plus pages a crawl cannot reach (a search, a form's error state).
extras_for() {
  case $1 in
    analyst) echo "/threats/search?q=DocuSign /threats/search?q=no-such-thing-at-all" ;;
    admin) echo "/audit?actor=no-such-actor /audit?from=not-a-time" ;;
  esac
}
pages_file=$out/pages.tsv
: >"$pages_file"
declare -A measured=()
for role in $roles; do
  jar=$out/$role.jar
  : >"$jar"
  headers=$out/$role.headers.json
  if [[ $role == visitor ]]; then
    echo '{}' >"$headers"
    queue=(/login /signup)
  else
    sign_in "$role" "$jar"
    cookie=$(awk '!/^#/ || /^#HttpOnly_/ { sub(/^#HttpOnly_/, ""); if (NF >= 7) printf "%s%s=%s", (n++ ? "; " : ""), $6, $7 }' "$jar")
    jq -n --arg c "$cookie" '{Cookie: $c}' >"$headers"
    queue=(/ /account /notifications)
  fi
  declare -A seen=()
  pages=()
  while ((${#queue[@]})) && ((${#pages[@]} < max_pages)); do
    url=${queue[0]}
    queue=("${queue[@]:1}")
    kind=$(kind_of "$url")
    [[ -n ${seen[$kind]:-} ]] && continue
    seen[$kind]=1
    # Follow redirects (/ goes to the role's home) and keep only pages that answer 200 with HTML.
    final=$(curl -sS -o "$out/page.html" -w '%{http_code}\t%{url_effective}\t%{content_type}' -L -b "$jar" "$base$url")
    IFS=$'\t' read -r code effective type <<<"$final"
    [[ $code == 200 && $type == text/html* ]] || continue
    path=${effective#"$base"}
    [[ $role != visitor && $path == /login* ]] && continue
    if [[ $path != "$url" ]]; then
      kind=$(kind_of "$path")
      [[ -n ${seen[$kind]:-} && $url != / ]] && continue
      seen[$kind]=1
    fi
    pages+=("$path")
    [[ $role == visitor ]] && continue
    while read -r link; do
      [[ -n $link && -z ${seen[$(kind_of "$link")]:-} ]] && queue+=("$link")
    done < <(links_of "$out/page.html")
  done
  unset seen
  for path in "${pages[@]}"; do
    kind=$(kind_of "$path")
    [[ -n ${measured[$kind]:-} && -z ${LH_EVERY_ROLE:-} ]] && continue
    measured[$kind]=1
    printf '%s\t%s\n' "$role" "$path" >>"$pages_file"
  done
  for path in $(extras_for "$role"); do
    code=$(curl -sS -o /dev/null -w '%{http_code}' -b "$jar" "$base$path")
    [[ $code == 200 ]] && printf '%s\t%s\n' "$role" "$path" >>"$pages_file"
  done
done
if [[ -n ${LH_LIST_ONLY:-} ]]; then cat "$pages_file"; exit 0; fi

# Phase 2: Lighthouse on each page as a phone and as a desktop, LH_JOBS at a time (2).
measure() { # role path form
  local role=$1 path=$2 form=$3 report preset
  report=$out/$role$(tr -c 'a-zA-Z0-9\n' _ <<<"$path")-$form.json
  if [[ $form == desktop ]]; then preset=--preset=desktop; else preset=--form-factor=mobile; fi
  "$lh" "$base$path" --quiet --only-categories=accessibility "$preset" \
    --extra-headers="$out/$role.headers.json" --chrome-flags="--headless=new --no-sandbox" \
    --output=json --output-path="$report" >/dev/null 2>&1 || true
  echo "$role $path $form $(jq -r '(.categories.accessibility.score // empty) * 100 | round' "$report" 2>/dev/null)" >&2
}
export -f measure
export out lh base
awk -F'\t' '{ print $1 "\t" $2 "\tmobile"; print $1 "\t" $2 "\tdesktop" }' "$pages_file" |
  xargs -d '\n' -P "${LH_JOBS:-2}" -I{} bash -c 'IFS=$'"'"'\t'"'"' read -r r p f <<<"$1"; measure "$r" "$p" "$f"' _ {}

# Phase 2b: forms in their error state (a form answering 422, which the CLI cannot measure; see
# scripts/lighthouse_errors.mjs): the largest POST form of these kinds of page, submitted empty, and
# GETs whose own answer is an error state.
error_kinds=" /signup /login /account /scholarships /scholarships/funds /scholarships/applications/{id}/review
  /threats/hashes/{id} /admin/accounts /admin/signatures /admin/sensors /admin/accounts/{id} "
errors_file=$out/errors.tsv
: >"$errors_file"
while IFS=$'\t' read -r role path; do
  [[ $error_kinds == *" $(kind_of "$path")"[[:space:]]* ]] && printf '%s\t%s\t%s\n' "$role" "$path" "$out/$role.headers.json" >>"$errors_file"
done <"$pages_file"
[[ $roles == *admin* ]] && printf 'admin\t/audit?from=not-a-time\t%s\tget\n' "$out/admin.headers.json" >>"$errors_file"
# Where lighthouse is installed, for the script's imports: .../node_modules/lighthouse/cli/index.js.
lh_home=$(cd "$(dirname "$(readlink -f "$(command -v "$lh")")")/../../.." && pwd)
cp scripts/lighthouse_errors.mjs "$lh_home/heyboss_lighthouse_errors.mjs"
(cd "$lh_home" && node heyboss_lighthouse_errors.mjs "$base" "$out" <"$errors_file" >"$out/errors-scores.tsv") ||
  echo "the error states could not all be measured" >&2

# Phase 3: the table, and every failing audit.
failed=0
: >"$out/failures.txt"
score_of() { # report
  local s
  s=$(jq -r '(.categories.accessibility.score // empty) * 100 | round' "$1" 2>/dev/null || true)
  echo "${s:-error}"
}
echo
echo "Lighthouse $("$lh" --version) accessibility, $(date -u +%Y-%m-%d), $base"
echo
echo "| role | page | phone | desktop |"
echo "| --- | --- | --- | --- |"
# One table row: the scores of a page's phone and desktop reports (`$out/<role><path><suffix>-<form>.json`),
# each below 100 listed with its failed audits in failures.txt.
score_row() {
  local role=$1 path=$2 label=$3 suffix=$4 what=$5 form report score
  local row="| $role | \`$path\`$label"
  for form in mobile desktop; do
    report=$out/$role$(tr -c 'a-zA-Z0-9\n' _ <<<"$path")$suffix-$form.json
    score=$(score_of "$report")
    row+=" | $score"
    if [[ $score != 100 ]]; then
      failed=1
      jq -r --arg p "$role $path$what $form" '.audits | to_entries[] | select(.value.score == 0) |
        "\($p): \(.key): \(.value.details.items // [] | map(.node.snippet // "") | .[:3] | join(" | "))"' \
        "$report" >>"$out/failures.txt" 2>/dev/null || echo "$role $path$what $form: no report" >>"$out/failures.txt"
    fi
  done
  echo "$row |"
}
while IFS=$'\t' read -r role path; do
  score_row "$role" "$path" "" "" ""
done <"$pages_file"
while IFS=$'\t' read -r role path _; do
  score_row "$role" "$path" ", its form's errors" "-error" " (errors)"
done <"$errors_file"
if ((failed)); then
  echo
  echo "Below 100 (reports in $out):"
  cat "$out/failures.txt"
  exit 1
fi
