#!/usr/bin/env bash
# `tarfs ls` through a sidecar: a .tar.xz of pax-named members against the plain .tar (issue #14).
# Usage: scripts/bench-index-ls.sh [MEMBERS]   (default 80000). Prints medians of 11 runs and the
# ratio, and the extension bytes per member. Needs python3 and xz.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-80000}
# TARFS=path times another build (for before/after figures).
if [ -z "${TARFS:-}" ]; then cargo build --release --quiet; fi
t=${TARFS:-target/release/tarfs}
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir/pax.tar" "$n" <<'PY'
import io, sys, tarfile
n = int(sys.argv[2])
with tarfile.open(sys.argv[1], "w", format=tarfile.PAX_FORMAT) as t:
    for i in range(n):
        name = "project-1.0/dir-%04d/" % (i % 1000) + "long-name-" * 12 + "%d.txt" % i
        data = b"x" * (i % 300)
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mtime = 1700000000.5
        t.addfile(info, io.BytesIO(data))
PY
xz -T2 -3 -k "$dir/pax.tar"
"$t" index "$dir/pax.tar" "$dir/pax.tar.xz" 2>/dev/null
# Median wall time of 11 runs, in seconds (the machine is noisy: medians, never means).
time_ls() {
  python3 - "$t" "$1" <<'PY'
import statistics, subprocess, sys, time
runs = []
for _ in range(11):
    t0 = time.perf_counter()
    subprocess.run([sys.argv[1], "ls", sys.argv[2]], stdout=subprocess.DEVNULL, check=True)
    runs.append(time.perf_counter() - t0)
print("%.4f" % statistics.median(runs))
PY
}
cat "$dir/pax.tar" "$dir/pax.tar.tarfs" "$dir/pax.tar.xz.tarfs" >/dev/null # warm
plain=$(time_ls "$dir/pax.tar")
xzed=$(time_ls "$dir/pax.tar.xz")
side=$(stat -c %s "$dir/pax.tar.tarfs")
names=$("$t" ls "$dir/pax.tar" | wc -c)
echo "members:            $n"
echo "archive:            $(stat -c %s "$dir/pax.tar") bytes (.tar), $(stat -c %s "$dir/pax.tar.xz") bytes (.tar.xz)"
echo "ls .tar  (sidecar): ${plain} s median of 11"
echo "ls .tar.xz (sidecar): ${xzed} s median of 11"
awk -v a="$xzed" -v b="$plain" 'BEGIN { if (b > 0) printf "ratio xz/plain:     %.2f\n", a / b; else print "ratio xz/plain:     (plain under timer resolution)" }'
awk -v s="$side" -v n="$n" -v names="$names" 'BEGIN { printf "sidecar:            %d bytes; %.1f bytes per member beyond its 512-byte entry (%.1f of them names and their lengths)\n", s, (s - 512 * (n + 2)) / n, names / n }'
