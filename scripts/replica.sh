#!/usr/bin/env bash
# A streaming read replica of the local PostgreSQL server, for the replica tests
# (tests/replicas.rs) and for trying HEYBOSS_REPLICA_URL by hand:
#
#   bash scripts/replica.sh ensure   # make it (pg_basebackup -R) if missing, start it if down
#   bash scripts/replica.sh stop     # stop it (fast)
#   bash scripts/replica.sh start    # start it again (start_if_down: only when it is down)
#
# It listens on localhost:5433 (HEYBOSS_REPLICA_PORT) with its data in
# /var/lib/postgresql/heyboss-replica (HEYBOSS_REPLICA_DIR), streams from the server on 5432 through
# a physical replication slot (heyboss_replica) so that a stopped replica can catch up, and trusts
# local connections like the primary the tests use. Needs root (it acts as the postgres user).
set -euo pipefail

action=${1:-ensure}
dir=${HEYBOSS_REPLICA_DIR:-/var/lib/postgresql/heyboss-replica}
port=${HEYBOSS_REPLICA_PORT:-5433}
slot=heyboss_replica
version=$(ls /usr/lib/postgresql | sort -V | tail -n 1)
bin=/usr/lib/postgresql/$version/bin
log=$dir.log

log() { printf '\n==> %s\n' "$*"; }
as_postgres() { su postgres -s /bin/bash -c "$*"; }
primary() { psql -h localhost -p 5432 -U postgres -tAc "$1" postgres; }

start() {
  as_postgres "$bin/pg_ctl -D '$dir' -l '$log' -w -t 60 start" >/dev/null
  pg_isready -h localhost -p "$port" -q
}

stop() {
  if [ -f "$dir/postmaster.pid" ]; then
    as_postgres "$bin/pg_ctl -D '$dir' -m fast -w stop" >/dev/null
  fi
}

make_replica() {
  log "making a streaming replica on port $port (pg_basebackup -R into $dir)"
  # Replication connections need a pg_hba.conf line of their own ("all" does not cover them).
  hba=$(primary 'SHOW hba_file')
  if ! grep -Eq '^local[[:space:]]+replication' "$hba"; then
    sed -i '1i local replication all trust' "$hba"
    primary 'SELECT pg_reload_conf()' >/dev/null
  fi
  primary "SELECT pg_drop_replication_slot('$slot') FROM pg_replication_slots WHERE slot_name = '$slot'" >/dev/null
  rm -rf "$dir"
  install -d -o postgres -g postgres -m 700 "$dir"
  as_postgres "$bin/pg_basebackup -h /var/run/postgresql -p 5432 -D '$dir' -R -X stream -c fast -C -S $slot"
  # Debian keeps the primary's configuration outside its data folder, so the copy has none: a
  # hot standby needs at least the primary's values of these settings.
  {
    echo "port = $port"
    echo "listen_addresses = 'localhost'"
    echo "unix_socket_directories = '/var/run/postgresql'"
    echo "hot_standby = on"
    # No feedback: with it the replica's oldest snapshot becomes the slot's xmin on the primary,
    # which the slot keeps while the replica is stopped, and no vacuum on the primary can then
    # remove a dead row or mark a page all-visible (README, "Read replicas"). heyboss reads on a
    # replica are short and go to the primary if recovery cancels one.
    echo "hot_standby_feedback = off"
    for setting in max_connections max_worker_processes max_wal_senders max_locks_per_transaction max_prepared_transactions shared_buffers; do
      echo "$setting = '$(primary "SHOW $setting")'"
    done
  } >"$dir/postgresql.conf"
  printf 'local all all trust\nhost all all 127.0.0.1/32 trust\nhost all all ::1/128 trust\n' >"$dir/pg_hba.conf"
  : >"$dir/pg_ident.conf"
  chown postgres:postgres "$dir/postgresql.conf" "$dir/pg_hba.conf" "$dir/pg_ident.conf"
}

# A replica made before feedback was turned off: turn it off (and reload one that runs).
no_feedback() {
  if [ -f "$dir/postgresql.conf" ] && grep -q '^hot_standby_feedback = on' "$dir/postgresql.conf"; then
    sed -i 's/^hot_standby_feedback = on/hot_standby_feedback = off/' "$dir/postgresql.conf"
    if [ -f "$dir/postmaster.pid" ]; then
      as_postgres "$bin/pg_ctl -D '$dir' reload" >/dev/null
    fi
  fi
}

case "$action" in
  ensure)
    if [ "$(id -u)" = 0 ]; then
      no_feedback
    fi
    if pg_isready -h localhost -p "$port" -q 2>/dev/null; then
      # A test stopped mid-way (killed) may have left the replay paused.
      psql -h localhost -p "$port" -U postgres -tAc 'SELECT pg_wal_replay_resume()' postgres >/dev/null 2>&1 || true
      exit 0
    fi
    if [ "$(id -u)" != 0 ]; then
      echo "scripts/replica.sh: no replica on port $port and not root; the replica test will say so" >&2
      exit 0
    fi
    if [ ! -f "$dir/standby.signal" ]; then
      make_replica
    fi
    log "starting the read replica on port $port"
    if ! start; then
      # A replica that cannot start (a slot or WAL gone) is made again.
      stop || true
      make_replica
      start
    fi
    ;;
  start) no_feedback; start ;;
  start_if_down) no_feedback; pg_isready -h localhost -p "$port" -q 2>/dev/null || start ;;
  stop) stop ;;
  *) echo "usage: $0 ensure|start|start_if_down|stop" >&2; exit 2 ;;
esac
