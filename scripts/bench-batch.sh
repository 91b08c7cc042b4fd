#!/usr/bin/env bash
# `tarfs index DIR` over a directory of many small archives (issue #18): the first run (no
# sidecars, on archives written afresh for each round) and a --force run over the same archives,
# warm. Prints medians and the spread. Nothing is deleted until the runs are over: ext4 spends
# most of a file creation searching past inodes freed in the last minutes (recently_deleted), so
# a run right after deleting thousands of files measures that. Wait a few minutes between runs
# of this script.
#
#   bash scripts/bench-batch.sh DIR      # DIR receives ROUNDS x 1,000 archives (about 275 MB each)
#
# Environment: ARCHIVES (default 1000), MEMBERS (default 100), ROUNDS (default 5).
set -euo pipefail
DIR=${1:?usage: bench-batch.sh DIR}
ARCHIVES=${ARCHIVES:-1000}
MEMBERS=${MEMBERS:-100}
ROUNDS=${ROUNDS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
TARFS=${TARFS:-$ROOT/target/release/tarfs}
[ -x "$TARFS" ] || (cd "$ROOT" && cargo build --release --quiet --bin tarfs)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
for r in $(seq "$ROUNDS"); do
    python3 - "$DIR/r$r" "$ARCHIVES" "$MEMBERS" <<'PY'
import io, os, random, sys, tarfile
root, n, m = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
r = random.Random(18)
for a in range(n):
    d = '%s/g%02d' % (root, a % 20)
    os.makedirs(d, exist_ok=True)
    with tarfile.open('%s/a%05d.tar' % (d, a), 'w', format=tarfile.GNU_FORMAT) as t:
        for i in range(m):
            k = r.randrange(0, 4096)
            ti = tarfile.TarInfo('p/m%04d' % i); ti.size = k; ti.mtime = 1700000000
            t.addfile(ti, io.BytesIO(bytes(k)))
PY
done
sync
now() { date +%s.%N; }
stats() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "median %.3f s (min %.3f, max %.3f, %d runs)", m, a[1], a[NR], NR}'; }
first=$(for r in $(seq "$ROUNDS"); do
    find "$DIR/r$r" -name '*.tarfs' -delete
    sync; sleep 2
    cat "$DIR"/r$r/*/*.tar > /dev/null
    s=$(now); "$TARFS" index -q "$DIR/r$r"; e=$(now)
    echo "$e - $s" | bc -l
done | stats)
force=$(for r in $(seq "$ROUNDS"); do
    cat "$DIR"/r$r/*/*.tar "$DIR"/r$r/*/*.tarfs > /dev/null
    s=$(now); "$TARFS" index -q --force "$DIR/r$r"; e=$(now)
    echo "$e - $s" | bc -l
done | stats)
echo "tarfs index of $ARCHIVES archives of $MEMBERS members ($(nproc) cores):"
echo "  first run: $first"
echo "  --force:   $force"
rm -rf "$DIR"/r*
