#!/usr/bin/env bash
# Random access into compressed archives (issue #15), measured side by side in one run:
#
#   bash scripts/bench-seek.sh DIR        # DIR receives the archives (SIZE_MB, default 1024 MB)
#
# It writes one archive of many files of mixed sizes (10 B to 8 MiB; half text-like, half
# random bytes, as a mix of sources and binaries compresses), compresses it with `gzip -6`,
# `pigz -6`, `bzip2 -9`, `xz -T2 -6` (in blocks) and `pzstd -p2` (in frames), and for each prints
# medians (RUNS, default 5) and ratios:
#   - `gzip -dc > /dev/null` (or `bzip2 -dc`, `xz -dc`, `zstd -dc`), against `tarfs index` with
#     seek points (goal for gzip: at most 1.1x);
#   - `tar -xOf A.tar.gz LAST`, against `tarfs cat A.tar.gz LAST` through the sidecar (goal: 50x,
#     20x for xz);
#   - `tarfs cat` of 100 random members in one call, against 100 x one span's decode (a span:
#     the decompressed stream over the number of seek points, at the decompressor's rate);
#   - the seek section's size against the decompressed size (goal: at most 1%);
# and, for the span, the same at 1, 4 and 16 MiB. The archives' pages are read before each warm
# run. Environment: SIZE_MB, RUNS, SPANS (default "1M 4M 16M"), FORMATS (default
# "gz pigz.gz bz2 T2.xz pzstd.zst").
set -euo pipefail

DIR=${1:?usage: bench-seek.sh DIR}
SIZE_MB=${SIZE_MB:-1024}
RUNS=${RUNS:-5}
SPANS=${SPANS:-1M 4M 16M}
FORMATS=${FORMATS:-gz pigz.gz bz2 T2.xz pzstd.zst}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
TARFS=${TARFS:-$ROOT/target/release/tarfs}
[ -x "$TARFS" ] || (cd "$ROOT" && cargo build --release --quiet)

plain="$DIR/mixed-$SIZE_MB.tar"
if [ ! -f "$plain" ]; then
  python3 - "$plain" "$SIZE_MB" <<'EOF'
import io, random, sys, tarfile
out, size_mb = sys.argv[1], int(sys.argv[2])
r = random.Random(15)
rand = r.randbytes(16 << 20)
words = [bytes(r.choice(b'abcdefghijklmnopqrstuvwxyz') for _ in range(r.randint(2, 9))) for _ in range(5000)]
text = b' '.join(r.choice(words) + (b'\n' if r.random() < 0.1 else b'') for _ in range(3_000_000))
total, i = 0, 0
with tarfile.open(out + '.part', 'w', format=tarfile.GNU_FORMAT) as t:
    while total < size_mb << 20:
        n = r.choice([10, 300, 2000, 9000, 40000, 200000, 1 << 20, 8 << 20])
        src = rand if i % 2 else text
        at = r.randrange(0, len(src) - n)
        ti = tarfile.TarInfo('tree/d%03d/file-%06d.%s' % (i % 200, i, 'bin' if i % 2 else 'txt'))
        ti.size, ti.mtime = n, 1_700_000_000 + i
        t.addfile(ti, io.BytesIO(src[at:at + n]))
        total += n + 512
        i += 1
import os
os.rename(out + '.part', out)
EOF
fi
[ -f "$plain.gz" ] || gzip -6 -c "$plain" > "$plain.gz"
[ -f "$plain.pigz.gz" ] || pigz -6 -c "$plain" > "$plain.pigz.gz"
# xz in blocks, as xz -T2 writes it (a block is 3 x the dictionary, 24 MiB at -6).
[ -f "$plain.T2.xz" ] || xz -T2 -6 -c "$plain" > "$plain.T2.xz"
[ -f "$plain.bz2" ] || bzip2 -9 -c "$plain" > "$plain.bz2"
# zstd in frames, as pzstd writes it (one frame per chunk of input).
[ -f "$plain.pzstd.zst" ] || pzstd -q -p 2 -c "$plain" > "$plain.pzstd.zst"
last=$(tar -tf "$plain" | tail -1)
tar -tf "$plain" | grep -v '/$' | python3 -c "import random,sys; l=sys.stdin.read().split(); random.Random(1).shuffle(l); print('\n'.join(l[:100]))" > "$DIR/random100.txt"

# Median wall seconds of RUNS runs of a command (the archive read just before each).
median() {
  local warm=$1; shift
  local times=()
  for _ in $(seq "$RUNS"); do
    cat "$warm" > /dev/null
    local s e
    s=$(date +%s.%N)
    "$@" > /dev/null 2>&1
    e=$(date +%s.%N)
    times+=("$(echo "$e - $s" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.4f", m}'
}

ratio() { echo "scale=1; $1 / $2" | bc -l; }

echo "archive: $plain ($(stat -c %s "$plain") bytes, $(tar -tf "$plain" | wc -l) members); runs: $RUNS; $(nproc) cores"
for f in $FORMATS; do
  z="$plain.$f"
  name=$(basename "$z")
  dec=gzip
  case "$z" in *.xz) dec=xz ;; *.bz2) dec=bzip2 ;; *.zst) dec=zstd ;; esac
  echo
  echo "== $name ($(stat -c %s "$z") bytes)"
  dc=$(median "$z" "$dec" -dc "$z")
  idx=$(median "$z" "$TARFS" index --force "$z")
  points=$("$TARFS" -v index --force "$z" 2>&1 | grep -o '[0-9]* seek points' | grep -o '^[0-9]*' || echo 1)
  echo "$dec -dc > /dev/null            $dc s"
  echo "tarfs index (seek points)     $idx s   ratio $(ratio "$idx" "$dc")x of $dec -dc"
  tarx=$(median "$z" tar -xOf "$z" "$last")
  ours=$(median "$z" "$TARFS" cat "$z" "$last")
  echo "tar -xOf LAST                 $tarx s"
  echo "tarfs cat LAST                $ours s   tarfs is $(ratio "$tarx" "$ours")x faster"
  mapfile -t members < "$DIR/random100.txt"
  many=$(median "$z" "$TARFS" cat "$z" "${members[@]}")
  # One span's decode, at the decompressor's rate: the goal for 100 members is 100 of them.
  span=$(( $(stat -c %s "$plain") / points ))
  span_s=$(echo "$dc / $points" | bc -l)
  echo "tarfs cat, 100 random members $many s   ($points seek points; 100 spans of $span bytes at $dec -dc's rate: $(printf '%.3f' "$(echo "100 * $span_s" | bc -l)") s)"
  seek_len=$(python3 -c "
import sys; b=open(sys.argv[1],'rb').read(512); print(int.from_bytes(b[120:128],'big'))" "$z.tarfs")
  echo "seek section                  $seek_len bytes = $(echo "scale=3; $seek_len * 100 / $(stat -c %s "$plain")" | bc -l)% of the decompressed size"
  "$TARFS" -v cat "$z" "$last" 2>&1 >/dev/null | grep -o '[0-9]* bytes decompressed' | sed 's/^/cat LAST decompressed         /'
done

[ -z "$SPANS" ] && exit 0
echo
echo "== span ($(basename "$plain.gz"))"
printf '%-6s %-10s %-12s %-14s %-10s\n' span index_s seek_bytes seek_pct cat_last_s
for span in $SPANS; do
  idx=$(median "$plain.gz" "$TARFS" index --force --span "$span" "$plain.gz")
  ours=$(median "$plain.gz" "$TARFS" cat "$plain.gz" "$last")
  seek_len=$(python3 -c "
import sys; b=open(sys.argv[1],'rb').read(512); print(int.from_bytes(b[120:128],'big'))" "$plain.gz.tarfs")
  printf '%-6s %-10s %-12s %-14s %-10s\n' "$span" "$idx" "$seek_len" "$(echo "scale=3; $seek_len * 100 / $(stat -c %s "$plain")" | bc -l)%" "$ours"
done
"$TARFS" index --force "$plain.gz" > /dev/null 2>&1
