#!/usr/bin/env bash
# The three ways to mount a tar, side by side in one run (issue #33's acceptance, after #16's):
# `tarfs mount --kernel` (an EROFS image written from the index), `tarfs mount --fuse`, and
# ratarmount, with `cat` of the tar from the page cache as the floor. As root:
#
#   sudo bash scripts/bench-mount.sh DIR [RATARMOUNT]   # DIR receives the archives (about 2.7 GB)
#   sudo SMALL=1 bash scripts/bench-mount.sh DIR         # a quick check at small sizes (a minute)
#
# Alone, it installs ratarmount into DIR/venv (pip; libfuse2 from apt); bench-peers.sh passes the
# one it installed. Every way mounts with its index made beforehand (not timed); each timed run is
# on a fresh mount. Medians of RUNS runs (RATAR_RUNS for ratarmount, whose runs are the long ones):
#   - MEMBERS empty members in 1,000 directories: `tarfs erofs` (the image from the sidecar), the
#     mount time (kernel: image there, and image written; FUSE; ratarmount), `find MNT | wc -l`;
#   - reading every file of an archive of FILES files (about 5.8 kB each), in archive order, cold
#     and warm; reading RANDOM_FILES of them in a random order, cold;
#   - `cat` of a member of BIG_MIB MiB: cold, warm, and again (read once through the same mount).
# Cold: `sync; echo 1 > /proc/sys/vm/drop_caches` after mounting. Warm: the archive, its index and
# its image read just before mounting (the mount itself starts empty). Environment and defaults
# (the issue's sizes): RUNS=3, RATAR_RUNS=$RUNS, FILES=50000, RANDOM_FILES=5000, BIG_MIB=1024,
# MEMBERS=1000000; SMALL=1 makes them 1, 1, 2000, 200, 64, 20000. Archives are named by their size
# and kept in DIR for the next run; delete DIR when done.
set -euo pipefail

DIR=${1:?usage: bench-mount.sh DIR [RATARMOUNT]}
[ "$(id -u)" = 0 ] || { echo "bench-mount.sh: run as root (kernel mounts, drop_caches)" >&2; exit 1; }
if [ -n "${SMALL:-}" ]; then
    : "${RUNS:=1}" "${FILES:=2000}" "${RANDOM_FILES:=200}" "${BIG_MIB:=64}" "${MEMBERS:=20000}"
fi
RUNS=${RUNS:-3}
RATAR_RUNS=${RATAR_RUNS:-$RUNS}
FILES=${FILES:-50000}
RANDOM_FILES=${RANDOM_FILES:-5000}
BIG_MIB=${BIG_MIB:-1024}
MEMBERS=${MEMBERS:-1000000}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
TARFS=${TARFS:-$ROOT/target/release/tarfs}
[ -x "$TARFS" ] || (cd "$ROOT" && cargo build --release --quiet --bin tarfs)

RATAR=${2:-}
if [ -z "$RATAR" ]; then
    # ratarmount 1.x loads libfuse 2 through ctypes.
    python3 -c 'import ctypes.util, sys; sys.exit(not ctypes.util.find_library("fuse"))' 2>/dev/null ||
        apt-get install -y -qq libfuse2 >/dev/null 2>&1 || true
    [ -x "$DIR/venv/bin/ratarmount" ] || { python3 -m venv "$DIR/venv" && "$DIR/venv/bin/pip" install -q ratarmount; } >/dev/null 2>&1 || true
    "$DIR/venv/bin/ratarmount" --version >/dev/null 2>&1 && RATAR="$DIR/venv/bin/ratarmount"
fi
WAYS="kernel fuse"
if [ -n "$RATAR" ]; then WAYS="$WAYS ratar"; else echo "(ratarmount could not be installed: skipped)" >&2; fi

# The archives: empty members, many small files, one big member.
members="$DIR/members-$MEMBERS.tar"
if [ ! -f "$members" ]; then
    python3 - "$members" "$MEMBERS" <<'PY'
import sys, tarfile
n = int(sys.argv[2]); per = max(1, n // 1000)
with open(sys.argv[1] + '.part', 'wb') as out:
    for d in range((n + per - 1) // per):
        ti = tarfile.TarInfo('tree/d%03d' % d); ti.type = tarfile.DIRTYPE; ti.mode = 0o755; ti.mtime = 1700000000
        out.write(ti.tobuf(tarfile.USTAR_FORMAT))
        for f in range(d * per, min(n, (d + 1) * per)):
            ti = tarfile.TarInfo('tree/d%03d/file-%07d.txt' % (d, f)); ti.mtime = 1700000000
            out.write(ti.tobuf(tarfile.USTAR_FORMAT))
    out.write(b'\0' * 1024)
import os; os.rename(sys.argv[1] + '.part', sys.argv[1])
PY
fi
many="$DIR/many-$FILES.tar"
if [ ! -f "$many" ]; then
    python3 - "$many" "$FILES" <<'PY'
import io, random, sys, tarfile
r = random.Random(33)
blob = r.randbytes(8 << 20)
with tarfile.open(sys.argv[1] + '.part', 'w', format=tarfile.GNU_FORMAT) as t:
    for i in range(int(sys.argv[2])):
        n = min(int(r.expovariate(1 / 5000)), 200000)
        at = r.randrange(0, len(blob) - n)
        ti = tarfile.TarInfo('m/d%03d/f%06d' % (i % 500, i)); ti.size = n; ti.mtime = 1700000000
        t.addfile(ti, io.BytesIO(blob[at:at + n]))
import os; os.rename(sys.argv[1] + '.part', sys.argv[1])
PY
fi
big="$DIR/big-$BIG_MIB.tar"
if [ ! -f "$big" ]; then
    mkdir -p "$DIR/src"
    head -c "${BIG_MIB}M" /dev/urandom > "$DIR/src/big"
    tar -C "$DIR/src" -cf "$big.part" big && mv "$big.part" "$big"
    rm -rf "$DIR/src"
fi
tar -tf "$many" | awk '!/\/$/' > "$DIR/many.list"
python3 - "$DIR/many.list" "$RANDOM_FILES" > "$DIR/random.list" <<'PY'
import random, sys
names = open(sys.argv[1]).read().split('\n')[:-1]
random.Random(3).shuffle(names)
print('\n'.join(names[:int(sys.argv[2])]))
PY

MNT="$DIR/mnt"
mkdir -p "$MNT"
# Unmounts $MNT until nothing is mounted there (a forking process can hold it busy a moment),
# then lets a FUSE daemon exit.
down() {
    local tries=0
    while mountpoint -q "$MNT"; do
        umount "$MNT" 2>/dev/null || { tries=$((tries + 1)); [ $tries -lt 50 ] || { echo "cannot unmount $MNT" >&2; return 1; }; sleep 0.1; }
    done
    sleep 0.3
}
trap 'down || true' EXIT
trap 'exit 130' INT TERM
down

echo "== indexing (not timed)" >&2
for a in "$members" "$many" "$big"; do
    [ -f "$a.tarfs" ] || "$TARFS" index -q "$a"
    [ -f "$a.erofs" ] || "$TARFS" erofs -o "$a.erofs" "$a" > /dev/null
    if [ -n "$RATAR" ] && [ ! -f "$a.ratar.sqlite" ]; then
        "$RATAR" --index-file "$a.ratar.sqlite" "$a" "$MNT" > /dev/null 2>&1; down
    fi
done

# Mounts archive $2 at $MNT the way $1 says (kernel, fuse, ratar; tar: no mount).
up() {
    case "$1" in
        kernel) "$TARFS" mount --kernel "$2" "$MNT" ;;
        fuse) "$TARFS" mount --fuse "$2" "$MNT" ;;
        ratar) "$RATAR" --index-file "$2.ratar.sqlite" "$2" "$MNT" > /dev/null 2>&1 ;;
        tar) ;;
    esac
}
warm_files() { cat "$1" "$1.tarfs" "$1.erofs" "$1.ratar.sqlite" > /dev/null 2>&1 || true; }
cold() { sync; echo 1 > /proc/sys/vm/drop_caches; }
now() { date +%s.%N; }
median() { sort -g | awk '{a[NR]=$1} END {m=(NR%2)?a[(NR+1)/2]:(a[NR/2]+a[NR/2+1])/2; printf "%.3f", m}'; }
runs() { [ "$1" = ratar ] && echo "$RATAR_RUNS" || echo "$RUNS"; }
# Median seconds of command $4 (run in $MNT; "tar" way: anywhere) with archive $2 mounted way
# $1, a fresh mount each run, $3 = cold, warm or again (the command run once before, same mount).
timed() {
    local way=$1 a=$2 temp=$3 cmd=$4 s e
    for _ in $(seq "$(runs "$way")"); do
        warm_files "$a"
        up "$way" "$a"
        case $temp in
            cold) cold ;;
            again) (cd "$MNT" && eval "$cmd") > /dev/null ;;
        esac
        s=$(now); (cd "$MNT" && eval "$cmd") > /dev/null; e=$(now)
        [ "$way" = tar ] || down
        echo "$e - $s" | bc -l
    done | median
}
# Median seconds of mounting archive $2 way $1; "written": the kernel mount with no image there.
mount_time() {
    local way=$1 a=$2 s e
    for _ in $(seq "$(runs "$way")"); do
        warm_files "$a"
        if [ "$way" = written ]; then rm -f "$a.erofs"; s=$(now); up kernel "$a"; e=$(now)
        else s=$(now); up "$way" "$a"; e=$(now); fi
        down
        echo "$e - $s" | bc -l
    done | median
}
# $2 / $1 to one decimal: how many times faster the first time is.
x() { [ -n "$1" ] && [ -n "$2" ] && printf '%.1f×' "$(echo "$2 / $1" | bc -l)" || echo "-"; }
pct() { printf '%.0f%%' "$(echo "100 * $2 / $1" | bc -l)"; }

declare -A T
echo "== kernel (EROFS), FUSE and ratarmount mounts ($RUNS runs, ratarmount $RATAR_RUNS; medians in seconds; $(nproc) cores, $(uname -r))" >&2
A=$members
T[erofs]=$(for _ in $(seq "$RUNS"); do warm_files "$A"; s=$(now); "$TARFS" erofs -o "$DIR/image.erofs" "$A" > /dev/null; e=$(now); echo "$e - $s" | bc -l; done | median)
image_bytes=$(stat -c %s "$DIR/image.erofs"); rm -f "$DIR/image.erofs"
T[written.mount]=$(mount_time written "$A")
for w in $WAYS; do
    echo "-- $w: $MEMBERS members" >&2
    T[$w.mount]=$(mount_time "$w" "$A")
    T[$w.find]=$(timed "$w" "$A" warm "find $MNT | wc -l")
done
up kernel "$A"; entries=$(find "$MNT" | wc -l); down

A=$many
list="xargs -d '\\n' cat < $DIR/many.list"
rand="xargs -d '\\n' cat < $DIR/random.list"
for t in cold warm; do T[tar.all.$t]=$(timed tar "$A" $t "cat $A"); done
for w in $WAYS; do
    echo "-- $w: $FILES files" >&2
    T[$w.all.cold]=$(timed "$w" "$A" cold "$list")
    T[$w.all.warm]=$(timed "$w" "$A" warm "$list")
    T[$w.rand]=$(timed "$w" "$A" cold "$rand")
done

A=$big
for t in cold warm; do T[tar.seq.$t]=$(timed tar "$A" $t "cat $A"); done
for w in $WAYS; do
    echo "-- $w: $BIG_MIB MiB" >&2
    for t in cold warm again; do T[$w.seq.$t]=$(timed "$w" "$A" $t "cat big"); done
done

# The table: one row a case, each way's median, FUSE's and ratarmount's time over the kernel's.
echo
echo "Medians in seconds of $RUNS runs (ratarmount: $RATAR_RUNS), $(nproc) cores, $(uname -r), $(date -u +%Y-%m-%d)."
echo "In brackets: the time over the kernel mount's (above 1: the kernel mount is faster)."
echo
echo "| case | kernel (EROFS) | FUSE | ratarmount | cat of the tar |"
echo "|---|---|---|---|---|"
row() { # name key [tar]
    local k=$2 r="${T[ratar.$2]:-}"
    echo "| $1 | ${T[kernel.$k]} | ${T[fuse.$k]} ($(x "${T[kernel.$k]}" "${T[fuse.$k]}")) | ${r:--}$([ -n "$r" ] && echo " ($(x "${T[kernel.$k]}" "$r"))") | ${3:-} |"
}
echo "| $MEMBERS members: image from the index (\`tarfs erofs\`, $image_bytes B) | ${T[erofs]} | | | |"
echo "| $MEMBERS members: mount with the image written | ${T[written.mount]} | | | |"
row "$MEMBERS members: mount (kernel: image there)" mount
row "$MEMBERS members: \`find | wc -l\` ($entries), warm" find
row "every file of $FILES ($(stat -c %s "$many") B), cold" all.cold "${T[tar.all.cold]}"
row "every file of $FILES, warm" all.warm "${T[tar.all.warm]}"
row "$RANDOM_FILES random files of $FILES, cold" rand
for t in cold warm again; do
    row "$BIG_MIB MiB member, $t ($(pct "${T[kernel.seq.$t]}" "${T[tar.seq.${t/again/warm}]}") of the page cache's speed)" seq.$t "${T[tar.seq.${t/again/warm}]}"
done
echo
echo "Goals (#33): sequential read, warm, ≥ 90% of the page cache's speed: kernel $(pct "${T[kernel.seq.warm]}" "${T[tar.seq.warm]}") (again: $(pct "${T[kernel.seq.again]}" "${T[tar.seq.warm]}"));"
echo "every file ≥ 4× faster than FUSE: cold $(x "${T[kernel.all.cold]}" "${T[fuse.all.cold]}"), warm $(x "${T[kernel.all.warm]}" "${T[fuse.all.warm]}");"
[ -n "$RATAR" ] && echo "every file ≥ 8× faster than ratarmount: cold $(x "${T[kernel.all.cold]}" "${T[ratar.all.cold]}"), warm $(x "${T[kernel.all.warm]}" "${T[ratar.all.warm]}");"
echo "the image of $MEMBERS members from the index in ≤ 1 s: ${T[erofs]} s."
