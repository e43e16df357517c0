#!/usr/bin/env bash
# Runs every Go fuzz target in the module for a bounded time each.
# Usage: scripts/fuzz.sh 10s
#
# A run that fails only with "context deadline exceeded" and writes no
# failing input is the fuzzing engine timing out a worker at the very end
# of a short run on a loaded machine, not a finding: it is run once more.
# Any real finding (a "Failing input written" line, a crasher in
# testdata/fuzz) fails at once.
set -euo pipefail
t="${1:-10s}"
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
run() { go test -run '^$' -fuzz "^$2\$" -fuzztime "$t" "./$1" >"$log" 2>&1; }
grep -rl --include='*_test.go' '^func Fuzz' internal | xargs -n1 dirname | sort -u | while read -r dir; do
  for f in $(grep -h '^func Fuzz' "$dir"/*_test.go | sed 's/func \(Fuzz[A-Za-z0-9_]*\).*/\1/'); do
    echo "fuzz: ./$dir $f ($t)"
    if ! run "$dir" "$f"; then
      if grep -q 'context deadline exceeded' "$log" && ! grep -q 'Failing input written' "$log"; then
        echo "fuzz: ./$dir $f: engine deadline at the end of the run (no failing input); once more"
        run "$dir" "$f" || { cat "$log"; exit 1; }
      else
        cat "$log"
        exit 1
      fi
    fi
    tail -1 "$log"
  done
done
