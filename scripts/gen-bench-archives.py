#!/usr/bin/env python3
"""Writes the three benchmark archives of issue 6 into a directory, with Python's tarfile (a
writer independent of tarfs), deterministically (seeded):

  small.tar  201,000 members of 0-4 KiB, ustar headers, names under 100 bytes  (~564 MB)
  pax.tar     50,000 members of 0-2 KiB, each with a pax header for a name of 120-200 bytes
  large.tar   20,000 members: 40 of 32-64 MiB, the rest 0-100 KiB                (~2.9 GB)

Usage: gen-bench-archives.py DIR [--only small,pax,large] [--scale F]
An archive already present with the expected size is kept. --scale shrinks member counts (for
quick trials); the default is 1.
"""

import argparse
import io
import os
import random
import sys
import tarfile

BUF = random.Random(6).randbytes(80 << 20)


class Slice(io.RawIOBase):
    """A read-only file over BUF[start:start+size], without copying it."""

    def __init__(self, start, size):
        self.view = memoryview(BUF)[start:start + size]
        self.pos = 0

    def readable(self):
        return True

    def read(self, n=-1):
        end = len(self.view) if n is None or n < 0 else min(len(self.view), self.pos + n)
        out = self.view[self.pos:end].tobytes()
        self.pos = end
        return out


def member(name, size, rng, mtime):
    info = tarfile.TarInfo(name)
    info.size = size
    info.mtime = mtime
    info.mode = 0o644
    info.uid, info.gid = 1000, 1000
    info.uname, info.gname = "bench", "bench"
    return info, Slice(rng.randrange(0, len(BUF) - size), size)


def small(path, scale):
    rng = random.Random(1)
    n = int(201_000 * scale)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        for i in range(n):
            info, f = member(f"small/d{i // 1000:04d}/file-{i:07d}.bin", rng.randrange(0, 4097), rng, 1_700_000_000 + i)
            t.addfile(info, f)


def pax(path, scale):
    rng = random.Random(2)
    n = int(50_000 * scale)
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as t:
        for i in range(n):
            depth = "/".join(f"level-{j:02d}-{'x' * rng.randrange(8, 24)}" for j in range(6))
            name = f"pax/{depth}/member-{i:07d}-{'long' * rng.randrange(2, 8)}.dat"
            while len(name) < 120:
                name = "pax/padding-" + name[4:]
            info, f = member(name[:200], rng.randrange(0, 2049), rng, 1_700_000_000 + i)
            t.addfile(info, f)


def large(path, scale):
    rng = random.Random(3)
    n = int(20_000 * scale)
    with tarfile.open(path, "w", format=tarfile.GNU_FORMAT) as t:
        for i in range(n):
            size = rng.randrange(32 << 20, (64 << 20) + 1) if i % 500 == 250 else rng.randrange(0, 100 * 1024 + 1)
            info, f = member(f"large/d{i // 100:03d}/blob-{i:06d}", size, rng, 1_700_000_000 + i)
            t.addfile(info, f)


SHAPES = {"small": small, "pax": pax, "large": large}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir")
    ap.add_argument("--only", default="small,pax,large")
    ap.add_argument("--scale", type=float, default=1.0)
    a = ap.parse_args()
    os.makedirs(a.dir, exist_ok=True)
    for shape in a.only.split(","):
        path = os.path.join(a.dir, f"{shape}.tar")
        stamp = path + ".done"
        want = f"{shape} scale={a.scale} v1\n"
        if os.path.exists(stamp) and open(stamp).read() == want and os.path.exists(path):
            print(f"{path}: present", file=sys.stderr)
            continue
        tmp = path + ".part"
        SHAPES[shape](tmp, a.scale)
        os.replace(tmp, path)
        with open(stamp, "w") as f:
            f.write(want)
        print(f"{path}: {os.path.getsize(path):,} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
