#!/bin/bash
# One system of ../shared/peers/run.sh alone: schema reset, checkpoint, run; prints its rate, the
# client process CPU and the machine busy ticks. From the heyboss project root (see README.md).
cd "${HEYBOSS_DIR:-$PWD}/target/peers-bench"
export PGHOST=127.0.0.1 PGPORT=5432 PGUSER=root PGPASSWORD=root COMMANDS=${COMMANDS:-20000} WARMUP=500 POOL_PING=0
export DATABASE_URL="postgres://root:root@127.0.0.1:5432/peers_bench"
sys=$1; c=${2:-8}
case $sys in bare*) f=bare;; *) f=${sys/-/_};; esac
psql -d peers_bench -q -v ON_ERROR_STOP=1 -f sql/$f.sql 2>/dev/null; psql -d peers_bench -qc CHECKPOINT
s0=$(awk '{print $2+$3+$4+$5+$6+$7+$8}' <(head -1 /proc/stat))
if [[ $sys == bare* ]]; then
  PGOPTIONS="-c search_path=bare" pgbench -n -M prepared -f sql/bare.pgbench -c $c -j 2 -D n=0 -t $((500/c)) peers_bench >/dev/null 2>&1
  s0=$(awk '{print $2+$3+$4+$5+$6+$7+$8}' <(head -1 /proc/stat))
  /usr/bin/time -f "client cpu %U user %S sys" env PGOPTIONS="-c search_path=bare" pgbench -n -M prepared -f sql/bare.pgbench -c $c -j 2 -D n=$((500/c)) -t $((COMMANDS/c)) peers_bench 2>&1 | grep -E "^tps|client cpu"
else
  /usr/bin/time -f "client cpu %U user %S sys" ./target/release/peers-bench $sys $c 2>&1 | grep -E "RESULT|client cpu"
fi
s1=$(awk '{print $2+$3+$4+$5+$6+$7+$8}' <(head -1 /proc/stat)); echo "machine busy ticks $((s1-s0))"
