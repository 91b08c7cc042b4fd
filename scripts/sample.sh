#!/usr/bin/env bash
# Builds tarfs, makes a sample archive with GNU tar, indexes it, and reads one member through
# the index. Usage: scripts/sample.sh [DIR]   (default: ./sample)
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-sample}
cargo build --release --quiet
tarfs=$PWD/target/release/tarfs

rm -rf "$dir" && mkdir -p "$dir/src/docs/deep/er/path"
for i in $(seq 1 2000); do printf 'member %d\n' "$i" > "$dir/src/docs/file$i.txt"; done
head -c 3000000 /dev/urandom > "$dir/src/docs/deep/er/path/blob.bin"
ln -s ../docs/file1.txt "$dir/src/docs/deep/link"
tar --format=posix -C "$dir" -cf "$dir/sample.tar" src

echo "== tarfs index $dir/sample.tar"
"$tarfs" -v index "$dir/sample.tar"
echo "== tarfs verify"
"$tarfs" verify "$dir/sample.tar"
echo "== tarfs ls -l (last 3 members)"
"$tarfs" ls -l "$dir/sample.tar" | tail -n 3
echo "== tarfs cat src/docs/file1999.txt (through the sidecar)"
"$tarfs" -v cat "$dir/sample.tar" src/docs/file1999.txt
