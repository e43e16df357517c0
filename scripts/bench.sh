#!/usr/bin/env bash
# make bench: pgbench through warden beside a direct connection and
# PgBouncer, in one run; latency, masking cost, connection set-up, memory
# per idle connection, audit events/s; warden's CPU and allocation
# profiles are kept in bench/profiles-<sync>/.
# Knobs: BENCH_TIME (s per run, default 10), BENCH_ROUNDS (3), BENCH_SYNC
# (fsync and os, the two audit.sync settings), BENCH_IDLE (2000).
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
mkdir -p bench
for sync in ${BENCH_SYNC:-fsync os}; do
  echo "== audit.sync=$sync" >&2
  go run ./tools/bench -warden bin/warden -T "${BENCH_TIME:-10}" -rounds "${BENCH_ROUNDS:-3}" \
    -idle "${BENCH_IDLE:-2000}" -sync "$sync" -profiles "bench/profiles-$sync" -o "bench/results-$sync.md" "$@"
done
