#!/usr/bin/env bash
# make bench: pgbench -S directly, through PgBouncer and through warden, in one run.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | tail -1)"
go run ./tools/bench -warden bin/warden -T "${BENCH_TIME:-10}" -rounds "${BENCH_ROUNDS:-3}" -o bench-result.md "$@"
