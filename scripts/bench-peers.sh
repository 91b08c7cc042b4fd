#!/usr/bin/env bash
# Times `tarfs index` against its peers on the same archives, in the same run, warm and cold, and
# prints a table of medians with each peer's ratio to tarfs (above 1: tarfs is faster).
#
#   bash scripts/bench-peers.sh DIR            # DIR receives the archives (about 3.9 GB)
#
# Peers: a raw mmap header walk in C (the floor), GNU tar -tf, bsdtar -tf, Python's tarfile, the
# Rust tar crate (examples/tar_rs_list.rs) and ratarmount (pip, into a venv under DIR). A peer
# that cannot be installed is skipped, and the table says so.
#
# Warm runs read the archive just before each run (the machine pages out memory left idle);
# cold runs drop the whole page cache first (`sync; echo 1 > /proc/sys/vm/drop_caches`, as
# root; otherwise the archive's pages, posix_fadvise DONTNEED, which can leave some behind).
# Every run of an indexer starts with no index, and writes it beside the archive (same disk,
# fsync included). `tarfs` writes the default, the compact index v2.0, and `tarfs v1` the index
# v1.0 (512 bytes a member, the default before v2); TARFS_BEFORE=BINARY adds an
# older tarfs binary as a peer, for before/after in one run. Environment: RUNS (default 5), COLD_RUNS (default 5), SHAPES (default
# "small pax large"), SKIP_SLOW=1 to leave out Python and ratarmount. Last, it runs
# scripts/bench-mount.sh (the kernel and FUSE mounts beside ratarmount's) unless SKIP_MOUNT=1 or
# not root.
set -euo pipefail

DIR=${1:?usage: bench-peers.sh DIR}
RUNS=${RUNS:-5}
COLD_RUNS=${COLD_RUNS:-5}
SHAPES=${SHAPES:-small pax large}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
RESULTS="$DIR/results"
rm -rf "$RESULTS"
mkdir -p "$RESULTS"
SKIPPED="$RESULTS/skipped.txt"
: > "$SKIPPED"
skip() { echo "$1: $2" | tee -a "$SKIPPED" >&2; }

apt_install() {
    command -v apt-get >/dev/null || return 1
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    $sudo apt-get install -y -qq "$@" >/dev/null 2>&1 || { $sudo apt-get update -qq >/dev/null 2>&1 && $sudo apt-get install -y -qq "$@" >/dev/null 2>&1; }
}

command -v hyperfine >/dev/null || apt_install hyperfine || { echo "hyperfine is needed (Debian package hyperfine)" >&2; exit 1; }
command -v bsdtar >/dev/null || apt_install libarchive-tools || true

echo "== building tarfs, the tar crate lister and the raw walk" >&2
(cd "$ROOT" && cargo build --release --quiet --bin tarfs --example tar_rs_list)
TARFS="$ROOT/target/release/tarfs"
TARRS="$ROOT/target/release/examples/tar_rs_list"
RAWWALK="$DIR/rawwalk"
if ! cc -O2 -o "$RAWWALK" "$ROOT/scripts/rawwalk.c"; then
    skip "raw walk" "no C compiler"
    RAWWALK=""
fi

VENV="$DIR/venv"
RATAR=""
if [ -z "${SKIP_SLOW:-}" ]; then
    if [ ! -x "$VENV/bin/ratarmount" ]; then
        echo "== installing ratarmount into $VENV" >&2
        { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q ratarmount; } >"$RESULTS/pip.log" 2>&1 || true
    fi
    # ratarmount imports FUSE even with --no-mount.
    python3 - <<'PY' 2>/dev/null || apt_install libfuse2 || apt_install libfuse2t64 || true
import ctypes.util, sys
sys.exit(0 if ctypes.util.find_library("fuse") else 1)
PY
    if "$VENV/bin/ratarmount" --version >/dev/null 2>&1; then
        RATAR="$VENV/bin/ratarmount"
    else
        skip "ratarmount" "pip install ratarmount failed (see $RESULTS/pip.log)"
    fi
fi

echo "== generating archives in $DIR" >&2
python3 "$ROOT/scripts/gen-bench-archives.py" "$DIR" --only "$(echo $SHAPES | tr ' ' ,)"

DROP="$DIR/drop-pages.py"
cat > "$DROP" <<'EOF'
# Drops each file's pages, asking again until 16 RWF_NOWAIT reads miss: pages still in a CPU's
# batch of newly cached pages survive the first request (docs/ARCHITECTURE.md, "Speed").
import os, sys, time
for p in sys.argv[1:]:
    if not os.path.exists(p):
        continue
    fd = os.open(p, os.O_RDONLY)
    n = os.fstat(fd).st_size
    def cached():
        for i in range(16):
            try:
                os.preadv(fd, [bytearray(1)], n * i // 16, os.RWF_NOWAIT)
                return True
            except BlockingIOError:
                pass
        return False
    for _ in range(200):
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        if not cached():
            break
        time.sleep(0.02)
    os.close(fd)
EOF
PYLIST='import sys, tarfile; n = len(tarfile.open(sys.argv[1]).getmembers())'

# name|command, with ARCH for the archive and IDX for an index file to remove before each run.
peers() {
    echo "tarfs|$TARFS index --output IDX ARCH"
    echo "tarfs v1|$TARFS index --format v1 --output IDX ARCH"
    [ -n "${TARFS_BEFORE:-}" ] && echo "tarfs before|$TARFS_BEFORE index --output IDX ARCH"
    [ -n "$RAWWALK" ] && echo "raw mmap walk (C)|$RAWWALK ARCH"
    echo "GNU tar -tf|tar -tf ARCH"
    command -v bsdtar >/dev/null && echo "bsdtar -tf|bsdtar -tf ARCH"
    echo "tar crate|$TARRS ARCH"
    if [ -z "${SKIP_SLOW:-}" ]; then
        echo "Python tarfile|python3 -c '$PYLIST' ARCH"
        [ -n "$RATAR" ] && echo "ratarmount|$RATAR --no-mount --recreate-index --index-file IDX ARCH"
    fi
    return 0
}
command -v bsdtar >/dev/null || skip "bsdtar" "not installed (Debian package libarchive-tools)"

for shape in $SHAPES; do
    arch="$DIR/$shape.tar"
    for cache in warm cold; do
        runs=$RUNS
        [ "$cache" = cold ] && runs=$COLD_RUNS
        while IFS='|' read -r name cmd; do
            idx="$DIR/$shape.index.tmp"
            c=${cmd//ARCH/$arch}
            c=${c//IDX/$idx}
            if [ "$cache" = warm ]; then
                prep="rm -f $idx; cat $arch > /dev/null"
            else
                prep="rm -f $idx; python3 $DROP $arch"
                [ -w /proc/sys/vm/drop_caches ] && prep="rm -f $idx; sync; echo 1 > /proc/sys/vm/drop_caches"
            fi
            slug=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
            echo "== $shape, $cache: $name" >&2
            # Slow peers get fewer runs.
            r=$runs
            case "$name" in Python*|ratarmount) r=$(( runs < 3 ? runs : 3 ));; esac
            hyperfine --shell=bash --style basic --warmup $([ "$cache" = warm ] && echo 1 || echo 0) --runs "$r" \
                --prepare "$prep" --export-json "$RESULTS/$shape.$cache.$slug.json" --command-name "$name" "$c" >/dev/null 2>"$RESULTS/$shape.$cache.$slug.err" \
                || skip "$name on $shape ($cache)" "failed: $(tail -1 "$RESULTS/$shape.$cache.$slug.err")"
            rm -f "$idx"
        done < <(peers)
    done
done

# cat of the last member of the small archive, through the sidecar, against tar -xOf.
if [[ " $SHAPES " == *" small "* ]]; then
    arch="$DIR/small.tar"
    "$TARFS" index --force "$arch" 2>/dev/null
    last=$(tar -tf "$arch" | tail -1)
    cmp <("$TARFS" cat "$arch" "$last") <(tar -xOf "$arch" "$last")
    for pair in "tarfs cat|$TARFS cat $arch $last" "GNU tar -xOf|tar -xOf $arch $last"; do
        name=${pair%%|*}
        slug=$(echo "$name" | tr -c 'a-zA-Z0-9\n' '_')
        hyperfine --shell=bash --style basic --warmup 1 --runs "$RUNS" --prepare "cat $arch $arch.tarfs > /dev/null" \
            --export-json "$RESULTS/cat.warm.$slug.json" --command-name "$name" "${pair#*|}" >/dev/null 2>&1
    done
fi

python3 - "$RESULTS" "$SHAPES" <<'EOF'
import glob, json, os, statistics, sys
results, shapes = sys.argv[1], sys.argv[2].split()
rows, spread = {}, {}
for f in sorted(glob.glob(os.path.join(results, "*.json"))):
    shape, cache = os.path.basename(f).split(".")[:2]
    try:
        runs = json.load(open(f))["results"]
    except (ValueError, KeyError):
        continue  # a failed peer, listed under Skipped
    for r in runs:
        rows.setdefault((shape, cache), {})[r["command"]] = statistics.median(r["times"])
        spread.setdefault((shape, cache), {})[r["command"]] = (min(r["times"]), max(r["times"]))
names = []
for v in rows.values():
    for n in v:
        if n not in names and n not in ("tarfs cat", "GNU tar -xOf"):
            names.append(n)
print(f"\n`tarfs index` against its peers, {os.uname().nodename}, medians in seconds (ratio = peer / tarfs; cold rows: [min–max] of the rounds)\n")
print("| archive | cache | " + " | ".join(names) + " |")
print("|---|---|" + "---|" * len(names))
for shape in shapes:
    for cache in ("warm", "cold"):
        r = rows.get((shape, cache), {})
        base = r.get("tarfs")
        cells = []
        for n in names:
            t = r.get(n)
            lo, hi = spread.get((shape, cache), {}).get(n, (t, t))
            span = f" [{lo:.3f}–{hi:.3f}]" if cache == "cold" and t is not None else ""
            if t is None:
                cells.append("skipped")
            elif n == "tarfs" or not base:
                cells.append(f"{t:.3f}{span}")
            else:
                cells.append(f"{t:.3f} ({t / base:.1f}×){span}")
        print(f"| {shape} | {cache} | " + " | ".join(cells) + " |")
c = rows.get(("cat", "warm"), {})
if "tarfs cat" in c and "GNU tar -xOf" in c:
    print(f"\nLast member of small.tar, warm: tarfs cat {c['tarfs cat']:.3f} s, GNU tar -xOf {c['GNU tar -xOf']:.3f} s ({c['GNU tar -xOf'] / c['tarfs cat']:.1f}×)")
skipped = open(os.path.join(results, "skipped.txt")).read().strip()
if skipped:
    print("\nSkipped:\n" + "\n".join("- " + l for l in skipped.splitlines()))
EOF

if [ -z "${SKIP_MOUNT:-}" ] && [ "$(id -u)" = 0 ] && command -v fusermount3 >/dev/null; then
    echo
    bash "$ROOT/scripts/bench-mount.sh" "$DIR/mount" "$RATAR"
fi
