#!/usr/bin/env bash
# Install and start what the tests need, where it is missing: a PostgreSQL server on
# localhost:5432 that trusts local connections and knows the current user, and Debian's headless
# Chromium with its WebDriver (the browser tests). Safe to run again: it changes only what is
# missing. Needs root (apt-get) only when something must be installed.
set -euo pipefail

log() { printf '\n==> %s\n' "$*"; }

apt_install() {
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# PostgreSQL: install when missing, start when down.
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  log "installing PostgreSQL"
  apt_install postgresql
fi
if ! pg_isready -h localhost -p 5432 -q 2>/dev/null; then
  log "starting PostgreSQL"
  cluster_version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  if [ -z "$cluster_version" ] || ! pg_lsclusters -h 2>/dev/null | grep -q .; then
    cluster_version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
    pg_createcluster "$cluster_version" main >/dev/null
  fi
  pg_ctlcluster --skip-systemctl-redirect "$cluster_version" main start || true
  for _ in $(seq 1 30); do pg_isready -h localhost -p 5432 -q && break; sleep 1; done
fi
pg_isready -h localhost -p 5432 -q
# A fresh Debian cluster asks for passwords over TCP; the tests connect as local trusted users.
if ! psql -h localhost -U postgres -tAc 'SELECT 1' postgres >/dev/null 2>&1; then
  log "trusting local TCP connections"
  hba=$(su postgres -c "psql -tAc 'SHOW hba_file'")
  sed -i '1i host all all 127.0.0.1/32 trust\nhost all all ::1/128 trust' "$hba"
  su postgres -c "psql -tAc 'SELECT pg_reload_conf()'" >/dev/null
fi
# Tests connect over TCP as the current user; make sure that role exists and may create databases.
if ! psql -h localhost -U postgres -tAc "SELECT 1 FROM pg_roles WHERE rolname = '$(id -un)'" postgres 2>/dev/null | grep -q 1; then
  log "creating the database role $(id -un)"
  su postgres -c "createuser --superuser $(id -un)" 2>/dev/null ||
    psql -h localhost -U postgres -c "CREATE ROLE \"$(id -un)\" SUPERUSER LOGIN" postgres
fi

# The browser tests: Debian's headless Chromium and its WebDriver.
if [ ! -x /usr/bin/chromium ] || [ ! -x /usr/bin/chromedriver ]; then
  log "installing chromium and chromium-driver"
  apt_install chromium chromium-driver
fi

# The load-balancer test (tests/load_balancer.rs): Debian's HAProxy, run by the test itself (the
# package's own service is not needed).
if ! command -v haproxy >/dev/null 2>&1 && [ ! -x /usr/sbin/haproxy ]; then
  log "installing haproxy"
  apt_install haproxy
fi

# The read-replica test (tests/replicas.rs): a streaming replica of the server on port 5433.
bash "$(dirname "$0")/replica.sh" ensure

# The email tests' SMTP server (tests/notifications.rs): Python's standard smtpd up to Python 3.11,
# aiosmtpd from PyPI on later versions, which no longer ship smtpd.
if ! command -v python3 >/dev/null; then
  log "installing python3"
  apt_install python3 python3-pip
fi
if ! python3 -W ignore -c 'import smtpd' 2>/dev/null && ! python3 -c 'import aiosmtpd' 2>/dev/null; then
  log "installing aiosmtpd"
  python3 -m pip install -q aiosmtpd 2>/dev/null || python3 -m pip install -q --break-system-packages aiosmtpd
fi
