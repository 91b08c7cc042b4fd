#!/usr/bin/env bash
# Times member digests (issue #36), in one run, warm (each archive read just before each run):
#   - `tarfs index --digests` of the large plain archive against `sha256sum` of the same file
#     (goal: at most 1.3x);
#   - indexing the .tar.gz of it with and without digests (`index --no-digests`; goal: at most
#     1.1x);
#   - `tarfs scrub` against `tar -xOf a.tar | sha256sum` (and ratarmount --hashes where it is
#     installed in DIR/venv, as bench-peers.sh installs it).
#
#   bash scripts/bench-digests.sh DIR       # DIR receives large.tar (about 2.9 GB) and its .gz
#
# Environment: RUNS (default 3), SCALE (gen-bench-archives.py --scale, default 1).
set -euo pipefail

DIR=${1:?usage: bench-digests.sh DIR}
RUNS=${RUNS:-3}
SCALE=${SCALE:-1}
ROOT=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$DIR"
DIR=$(cd "$DIR" && pwd)
command -v hyperfine >/dev/null || { echo "hyperfine is needed (Debian package hyperfine)" >&2; exit 1; }
TARFS="$ROOT/target/release/tarfs"
[ -x "$TARFS" ] || (cd "$ROOT" && cargo build --release --quiet --bin tarfs)
A="$DIR/large.tar"
[ -f "$A" ] || python3 "$ROOT/scripts/gen-bench-archives.py" "$DIR" --only large --scale "$SCALE" >&2
[ -f "$A.gz" ] || gzip -1 -k "$A"
warm() { cat "$1" > /dev/null; }
export TARFS A
OUT="$DIR/digests.md"

hyperfine --style basic -r "$RUNS" --export-markdown "$DIR/plain.md" \
    --prepare "cat $A > /dev/null; rm -f $A.tarfs" -n "sha256sum" "sha256sum $A" \
    -n "tarfs index --digests" "$TARFS index -q --digests $A" \
    -n "tarfs index (headers only)" "$TARFS index -q --force $A" 2>&1 | tail -n 20 >&2 || true
hyperfine --style basic -r "$RUNS" --export-markdown "$DIR/gz.md" \
    --prepare "cat $A.gz > /dev/null; rm -f $A.gz.tarfs" -n "tarfs index .tar.gz (with digests)" "$TARFS index -q $A.gz" \
    -n "tarfs index --no-digests .tar.gz" "$TARFS index -q --no-digests $A.gz" 2>&1 | tail -n 20 >&2 || true
"$TARFS" index -q --force --digests "$A"
RATAR=""
[ -x "$DIR/venv/bin/ratarmount" ] && RATAR="$DIR/venv/bin/ratarmount"
hyperfine --style basic -r "$RUNS" --export-markdown "$DIR/scrub.md" \
    --prepare "cat $A > /dev/null" -n "tarfs scrub" "$TARFS scrub -q $A" \
    -n "tar -xOf | sha256sum" "tar -xOf $A | sha256sum" \
    ${RATAR:+-n "ratarmount --hashes (index)" "rm -f $A.index.sqlite; mkdir -p $DIR/rmnt; $RATAR --hashes sha256 --recreate-index --index-file $DIR/r.sqlite $A $DIR/rmnt && fusermount3 -u $DIR/rmnt"} 2>&1 | tail -n 20 >&2 || true
cat "$DIR/plain.md" "$DIR/gz.md" "$DIR/scrub.md" | tee "$OUT"
