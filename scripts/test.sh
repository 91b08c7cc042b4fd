#!/usr/bin/env bash
# Runs the whole test suite. Installs the oracles the tests compare against (GNU tar, bsdtar from
# libarchive-tools, Python 3, and gzip, pigz, zstd, xz and bzip2) when they are missing and we can.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
command -v tar >/dev/null || need+=(tar)
command -v bsdtar >/dev/null || need+=(libarchive-tools)
command -v python3 >/dev/null || need+=(python3)
# Compressors the compressed-archive tests use as references.
command -v gzip >/dev/null || need+=(gzip)
command -v pigz >/dev/null || need+=(pigz)
command -v zstd >/dev/null || need+=(zstd)
command -v xz >/dev/null || need+=(xz-utils)
command -v bzip2 >/dev/null || need+=(bzip2)
command -v script >/dev/null || need+=(bsdutils)
[ -x /usr/bin/time ] || need+=(time)
command -v setpriv >/dev/null || need+=(util-linux)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, e.g. apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
[ -f ../shared/corpus/truth.jsonl ] || { echo "the corpus must be at ../shared/corpus (see README)" >&2; exit 1; }

cargo test --release --all-targets
cargo test --release --doc
