#!/usr/bin/env bash
# The kernel mount (EROFS image from the index) against the FUSE mount and the page cache
# (issue #33), in one run, as root:
#
#   sudo bash scripts/bench-erofs.sh DIR     # DIR receives the archives (about 1.3 GB)
#
# Medians of RUNS (default 5) runs, in seconds, each on a fresh mount:
#   - `tarfs erofs` of an archive of 1M empty members, from its sidecar, and the kernel mount's
#     mount time with the image there (reused) and without (written);
#   - a sequential read (`cat`) of a 1 GiB member: cold (`sync; echo 1 > drop_caches` before)
#     and warm (read once before), kernel, FUSE, and `cat` of the tar itself;
#   - reading every file of an archive of 50,000 files (263 MB) in archive order, cold and warm.
set -euo pipefail

DIR=${1:?usage: bench-erofs.sh DIR}
RUNS=${RUNS:-5}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
TARFS=${TARFS:-$ROOT/target/release/tarfs}
[ -x "$TARFS" ] || (cd "$ROOT" && cargo build --release --quiet --bin tarfs)

big="$DIR/big.tar"
if [ ! -f "$big" ]; then
    head -c 1G /dev/urandom > "$DIR/big"
    tar -C "$DIR" -cf "$big" big
    rm "$DIR/big"
fi
many="$DIR/many.tar"
if [ ! -f "$many" ]; then
    python3 - "$many" <<'PY'
import io, random, sys, tarfile
r = random.Random(33)
blob = r.randbytes(8 << 20)
with tarfile.open(sys.argv[1] + '.part', 'w', format=tarfile.GNU_FORMAT) as t:
    for i in range(50000):
        n = min(int(r.expovariate(1 / 5000)), 200000)
        at = r.randrange(0, len(blob) - n)
        ti = tarfile.TarInfo('m/d%03d/f%06d' % (i % 500, i)); ti.size = n; ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(blob[at:at + n]))
import os; os.rename(sys.argv[1] + '.part', sys.argv[1])
PY
fi
million="$DIR/million.tar"
if [ ! -f "$million" ]; then
    python3 - "$million" <<'PY'
import sys, tarfile
with open(sys.argv[1] + '.part', 'wb') as out:
    for d in range(1000):
        ti = tarfile.TarInfo('tree/d%03d' % d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1700000000
        out.write(ti.tobuf(tarfile.USTAR_FORMAT))
        for f in range(1000):
            ti = tarfile.TarInfo('tree/d%03d/file-%07d.txt' % (d, d * 1000 + f)); ti.mtime = 1700000000
            out.write(ti.tobuf(tarfile.USTAR_FORMAT))
    out.write(b'\0' * 1024)
import os; os.rename(sys.argv[1] + '.part', sys.argv[1])
PY
fi
for a in "$big" "$many" "$million"; do [ -f "$a.tarfs" ] || "$TARFS" index -q "$a"; done
tar -tf "$many" | awk '!/\/$/' > "$DIR/many.list"

MNT="$DIR/mnt"
mkdir -p "$MNT"
umount "$MNT" 2>/dev/null || true
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
cold() { sync; echo 1 > /proc/sys/vm/drop_caches; }
# Median seconds of "$2" (run in $MNT, with $A mounted by way $1: kernel or fuse; "tar": no
# mount), cold or warm ($3).
timed() {
    local way=$1 cmd=$2 temp=$3
    for _ in $(seq "$RUNS"); do
        [ "$way" = tar ] || "$TARFS" mount "--$way" "$A" "$MNT"
        if [ "$temp" = cold ]; then cold; else (cd "$MNT" && eval "$cmd") > /dev/null; fi
        local s e; s=$(now); (cd "$MNT" && eval "$cmd") > /dev/null; e=$(now)
        [ "$way" = tar ] || { "$TARFS" umount "$MNT"; sleep 0.3; }
        echo "$e - $s" | bc -l
    done | median
}
pct() { echo "scale=0; 100 * $1 / $2" | bc -l; }

echo "== kernel (EROFS) mount against FUSE and the page cache ($RUNS runs, medians in seconds; $(nproc) cores, $(uname -r))"
A=$million
w=$(for _ in $(seq "$RUNS"); do s=$(now); "$TARFS" erofs -o "$DIR/m.erofs" "$A" > /dev/null; e=$(now); echo "$e - $s" | bc -l; done | median)
mr=$(for _ in $(seq "$RUNS"); do s=$(now); "$TARFS" mount --kernel "$A" "$MNT"; e=$(now); "$TARFS" umount "$MNT"; echo "$e - $s" | bc -l; done | median)
mw=$(for _ in $(seq "$RUNS"); do rm -f "$A.erofs"; s=$(now); "$TARFS" mount --kernel "$A" "$MNT"; e=$(now); "$TARFS" umount "$MNT"; echo "$e - $s" | bc -l; done | median)
mf=$(for _ in $(seq "$RUNS"); do s=$(now); "$TARFS" mount --fuse "$A" "$MNT"; e=$(now); "$TARFS" umount "$MNT"; sleep 0.3; echo "$e - $s" | bc -l; done | median)
echo "1M members: tarfs erofs $w (image $(stat -c %s "$DIR/m.erofs") bytes); mount: kernel $mr (image reused), $mw (written), FUSE $mf"
n=$(find_n() { "$TARFS" mount --kernel "$A" "$MNT"; find "$MNT" | wc -l; "$TARFS" umount "$MNT"; }; find_n)
echo "  find | wc -l: $n entries"

A=$big
for t in cold warm; do
    k=$(timed kernel "cat big" $t); f=$(timed fuse "cat big" $t); p=$(timed tar "cat $big" $t)
    echo "1 GiB member, $t: kernel $k, FUSE $f, cat of the tar $p (kernel $(pct "$p" "$k")%, FUSE $(pct "$p" "$f")% of the page cache's speed)"
done
A=$many
for t in cold warm; do
    k=$(timed kernel "xargs -d '\n' cat < $DIR/many.list" $t); f=$(timed fuse "xargs -d '\n' cat < $DIR/many.list" $t); p=$(timed tar "cat $many" $t)
    echo "every file of 50,000 ($(stat -c %s "$many") bytes), $t: kernel $k, FUSE $f ($(echo "scale=1; $f / $k" | bc -l)x), cat of the tar $p"
done
