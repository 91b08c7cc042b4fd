#!/usr/bin/env bash
# `tarfs mount` against ratarmount on the same archives, in the same run (issue #16):
#
#   bash scripts/bench-mount.sh DIR [RATARMOUNT]   # DIR receives the archives (about 2.6 GB)
#
# bench-peers.sh runs it last, with the ratarmount it installed; alone, it installs ratarmount
# into DIR/venv. Both mount with an index made beforehand (not timed). It prints medians of RUNS
# (default 3) runs and ratios:
#   - mount time, on an archive of 1M empty members in 1,000 directories;
#   - `find MOUNT | wc -l` and `du -s MOUNT` on it (tarfs: also with --readdirplus);
#   - the daemon's anonymous memory (RssAnon) after find, per member;
#   - a sequential read of a 1 GiB member, against `cat` of the same bytes from the page cache;
#   - 8 parallel readers, 200 random members of a 1 GB archive of mixed sizes.
# Needs fusermount3 (Debian fuse3) and /dev/fuse.
set -euo pipefail

DIR=${1:?usage: bench-mount.sh DIR [RATARMOUNT]}
RUNS=${RUNS:-3}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
TARFS=${TARFS:-$ROOT/target/release/tarfs}
[ -x "$TARFS" ] || (cd "$ROOT" && cargo build --release --quiet --bin tarfs)
RATAR=${2:-}
if [ -z "$RATAR" ]; then
    [ -x "$DIR/venv/bin/ratarmount" ] || { python3 -m venv "$DIR/venv" && "$DIR/venv/bin/pip" install -q ratarmount; } >/dev/null 2>&1 || true
    [ -x "$DIR/venv/bin/ratarmount" ] && RATAR="$DIR/venv/bin/ratarmount"
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
big="$DIR/big.tar"
if [ ! -f "$big" ]; then
    head -c 1G /dev/urandom > "$DIR/big"
    tar -C "$DIR" -cf "$big" big
fi
mixed="$DIR/mixed.tar"
if [ ! -f "$mixed" ]; then
    python3 - "$mixed" <<'PY'
import io, random, sys, tarfile
r = random.Random(16)
blob = r.randbytes(16 << 20)
total, i = 0, 0
with tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT) as t:
    while total < 1 << 30:
        n = r.choice([100, 4000, 60000, 500000, 4 << 20])
        at = r.randrange(0, len(blob) - n)
        ti = tarfile.TarInfo('m/d%02d/f%06d' % (i % 50, i)); ti.size = n
        t.addfile(ti, io.BytesIO(blob[at:at + n]))
        total += n; i += 1
PY
fi
for a in "$million" "$big" "$mixed"; do
    [ -f "$a.tarfs" ] || "$TARFS" index -q "$a"
    if [ -n "$RATAR" ] && [ ! -f "$a.ratar.sqlite" ]; then
        m=$(mktemp -d); "$RATAR" --index-file "$a.ratar.sqlite" "$a" "$m" >/dev/null 2>&1; fusermount3 -u "$m"; rmdir "$m"
    fi
done
tar -tf "$mixed" | python3 -c "import random,sys; l=sys.stdin.read().split(); random.Random(3).shuffle(l); print('\n'.join(l[:200]))" > "$DIR/random200.txt"

MNT="$DIR/mnt"
mkdir -p "$MNT"
fusermount3 -u "$MNT" 2>/dev/null || true
# Mounts $2 at $MNT with tool $1 ("tarfs" or "ratarmount") and extra flags.
up() {
    case "$1" in
        tarfs) shift; local a=$1; shift; "$TARFS" mount --fuse "$@" "$a" "$MNT" ;;
        ratarmount) shift; local a=$1; shift; "$RATAR" --index-file "$a.ratar.sqlite" "$@" "$a" "$MNT" >/dev/null ;;
    esac
}
down() { fusermount3 -u "$MNT"; sleep 0.3; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
# Median seconds of RUNS runs of "$@" with the archive $A mounted fresh by $TOOL each time.
timed() {
    for _ in $(seq "$RUNS"); do
        cat "$A" "$A.tarfs" > /dev/null 2>&1 || true
        up $TOOL "$A" $FLAGS
        local s e; s=$(now); eval "$*" > /dev/null; e=$(now)
        down
        echo "$e - $s" | bc -l
    done | median
}
mount_time() {
    for _ in $(seq "$RUNS"); do
        cat "$A" "$A.tarfs" > /dev/null 2>&1 || true
        local s e; s=$(now); up $TOOL "$A" $FLAGS; e=$(now)
        down
        echo "$e - $s" | bc -l
    done | median
}
ratio() { echo "scale=1; $1 / $2" | bc -l; }

echo "== tarfs mount against ratarmount ($RUNS runs, medians in seconds; $(nproc) cores)"
tools="tarfs"; [ -n "$RATAR" ] && tools="tarfs ratarmount" || echo "(ratarmount could not be installed: skipped)"
A=$million
declare -A T
for TOOL in $tools; do
    FLAGS=""
    T[$TOOL.mount]=$(mount_time)
    T[$TOOL.find]=$(timed "find $MNT | wc -l")
    T[$TOOL.du]=$(timed "du -s $MNT")
    up $TOOL "$A"; find "$MNT" > /dev/null
    pid=$(pgrep -f -n "$MNT") || pid=""
    T[$TOOL.anon]=$( [ -n "$pid" ] && awk '/RssAnon/ {print $2}' "/proc/$pid/status" || echo 0)
    down
done
TOOL=tarfs FLAGS=--readdirplus
T[tarfs.find_rdp]=$(timed "find $MNT | wc -l")
T[tarfs.du_rdp]=$(timed "du -s $MNT")
members=$(( 1000 * 1000 + 1000 ))
echo "1M members ($(stat -c %s "$million") bytes):"
for k in mount find du; do
    line="  $k: tarfs ${T[tarfs.$k]}"
    [ -n "$RATAR" ] && line="$line, ratarmount ${T[ratarmount.$k]} ($(ratio "${T[ratarmount.$k]}" "${T[tarfs.$k]}")x)"
    echo "$line"
done
echo "  with --readdirplus: find ${T[tarfs.find_rdp]}, du ${T[tarfs.du_rdp]}"
echo "  anonymous memory after find: tarfs ${T[tarfs.anon]} kB ($(( ${T[tarfs.anon]} * 1024 / members )) B per member)$([ -n "$RATAR" ] && echo ", ratarmount ${T[ratarmount.anon]} kB")"

A=$big
pc=$(for _ in $(seq "$RUNS"); do cat "$DIR/big" > /dev/null; s=$(now); cat "$DIR/big" > /dev/null; e=$(now); echo "$e - $s" | bc -l; done | median)
for TOOL in $tools; do FLAGS=""; T[$TOOL.seq]=$(timed "cat $MNT/big"); done
echo "sequential read of a 1 GiB member: page cache $pc; tarfs ${T[tarfs.seq]} ($(echo "scale=0; 100 * $pc / ${T[tarfs.seq]}" | bc -l)% of the page cache's speed)$([ -n "$RATAR" ] && echo "; ratarmount ${T[ratarmount.seq]}")"

A=$mixed
for TOOL in $tools; do FLAGS=""; T[$TOOL.par]=$(timed "(cd $MNT && xargs -P 8 -n 25 cat < $DIR/random200.txt)"); done
echo "8 parallel readers, 200 random members of $(stat -c %s "$mixed") bytes: tarfs ${T[tarfs.par]}$([ -n "$RATAR" ] && echo ", ratarmount ${T[ratarmount.par]} ($(ratio "${T[ratarmount.par]}" "${T[tarfs.par]}")x)")"
