#!/bin/bash
# What an outcome costs Postgres written a row each, five or ten to a row
# (ADR 0023; docs/performance.md, twenty-first sitting). Run as root on a
# machine with the PostgreSQL 15 server binaries; uses a scratch cluster in
# $D (default /tmp/outcome-rows) with the embedded cluster's settings and
# the events table of the migrations.
#
#   scripts/perf/outcome-rows/run.sh [rounds]    (SECONDS_EACH=12 a measurement)
#
# Each script writes ten outcomes a transaction (`batched` five or ten to
# a row); the gen-* scripts only build the same rows (`rows.sql`), so their
# cost is subtracted from the insert's.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../../.." && pwd)
D=${D:-/tmp/outcome-rows}
B=${PG_BIN:-/usr/lib/postgresql/15/bin}
ROUNDS=${1:-3}
mkdir -p "$D" && chown postgres "$D"
runuser -u postgres -- "$B/pg_ctl" -D "$D/data" stop -m fast >/dev/null 2>&1 || true
rm -rf "$D/data"
runuser -u postgres -- "$B/initdb" -D "$D/data" -A trust >/dev/null
runuser -u postgres -- "$B/pg_ctl" -D "$D/data" -l "$D/pg.log" -o "-c listen_addresses='' -c unix_socket_directories=$D -c max_connections=64 -c shared_buffers=256MB -c wal_buffers=16MB -c max_wal_size=2GB -c checkpoint_timeout=15min" start -w >/dev/null
trap 'runuser -u postgres -- "$B/pg_ctl" -D "$D/data" stop -m fast >/dev/null' EXIT
psql -h "$D" -U postgres -d postgres -q -f "$ROOT/infrastructure/migrations/20261123000001_event_log.sql"
psql -h "$D" -U postgres -d postgres -q -c "CREATE INDEX events_tenant_commit_order ON events ((metadata ->> 'tenant_id'), tx_id, global_position);
  CREATE INDEX events_triggered_by ON events ((metadata ->> 'triggered_by')) WHERE metadata ->> 'triggered_by' IS NOT NULL;"
psql -h "$D" -U postgres -d postgres -q -f "$HERE/rows.sql"

# CPU of the cluster (the postmaster, its children, and the children it reaped).
pgcpu() {
    local pm t a
    pm=$(head -1 "$D/data/postmaster.pid")
    read -ra a < "/proc/$pm/stat"
    t=$((a[13] + a[14] + a[15] + a[16]))
    for p in $(pgrep -P "$pm"); do
        read -ra a < "/proc/$p/stat" 2>/dev/null && t=$((t + a[13] + a[14]))
    done
    echo "$t"
}
# measure SCRIPT [OUTCOMES-PER-ROW]
measure() {
    local c0 c1 tx
    c0=$(pgcpu)
    tx=$(pgbench -M prepared -h "$D" -U postgres -n -c 16 -j 2 -T "${SECONDS_EACH:-12}" -D per="${2:-1}" -f "$HERE/$1.sql" postgres 2>&1 |
        awk '/number of transactions actually processed/ {split($NF, n, "/"); print n[1]}')
    sleep 1
    c1=$(pgcpu)
    python3 -c "print(f'$1 ${2:-1} a row: {($c1 - $c0) / 100 / ($tx * 10) * 1e6:.1f} µs of Postgres per outcome')"
}
for _ in $(seq "$ROUNDS"); do
    measure one
    measure batched 5
    measure batched 10
    measure gen-one
    measure gen-batched 5
    measure gen-batched 10
done
