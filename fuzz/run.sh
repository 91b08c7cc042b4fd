#!/usr/bin/env bash
# Runs every fuzz target for SECONDS (default 600) each, one after the other, with corpora seeded
# from ../tests/corpus. Needs cargo-fuzz (cargo install cargo-fuzz); see README.md.
# Usage: fuzz/run.sh [SECONDS] [TARGET...]
set -uo pipefail
cd "$(dirname "$0")"
secs=${1:-600}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(header scan tarfs_index csv_index differential stream stream_gzip)
export RUSTC_BOOTSTRAP=1   # cargo-fuzz's flags are nightly-only; this lets the stable toolchain take them
for t in "${targets[@]}"; do
  mkdir -p "corpus/$t" artifacts/"$t"
  find ../tests/corpus -type f \( -name '*.tar' -o -name '*.ustar' \) -size -1M -exec cp -n {} "corpus/$t/" \; 2>/dev/null
  # Regression inputs that once crashed a target are kept in tests/fuzz_regressions and replayed.
  [ -d ../tests/fuzz_regressions ] && cp -n ../tests/fuzz_regressions/* "corpus/$t/" 2>/dev/null
  start=$(date +%s)
  cargo fuzz run -s none "$t" "corpus/$t" -- -max_total_time="$secs" -timeout=10 -rss_limit_mb=1024 \
    -malloc_limit_mb=64 -artifact_prefix="artifacts/$t/" -print_final_stats=1 > "logs-$t.txt" 2>&1
  rc=$?
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "logs-$t.txt" | grep -o '[0-9]*$')
  echo "$t: exit $rc, $(( $(date +%s) - start )) s, ${execs:-?} executions, $(ls "artifacts/$t" | wc -l) artifacts"
done
