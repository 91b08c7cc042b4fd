#!/usr/bin/env python3
"""Compares what GNU tar, bsdtar and Python's tarfile extract from pairs of archives.

Usage: trees.py ORIGINAL CHANGED [ORIGINAL CHANGED ...]

For each pair and each reader, both archives are extracted into fresh directories and the trees
are described: every path with its type, permission bits, content hash, link target, mtime (not
for directories, whose mtime may come from extraction), and which paths share an inode (hard
links); plus whether extraction reported an error. The changed archive may add index members
(`.tarfs`, `.tarindex_N.csv`) that the original does not have. Prints each difference and exits
1 if there is any, 0 if every pair extracts alike with every reader.
"""
import hashlib
import os
import re
import subprocess
import sys
import tarfile
import tempfile

INDEX = re.compile(r"^(\.tarfs|\.tarindex_\d+\.csv)$")


def describe(root):
    """The tree under root, as a dict path -> tuple, plus the hard-link groups."""
    tree = {}
    inodes = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            full = os.path.join(dirpath, name)
            rel = os.path.relpath(full, root)
            st = os.lstat(full)
            if os.path.islink(full):
                # Python does not set the times of symlinks: they are the extraction's.
                entry = ("symlink", os.readlink(full))
            elif os.path.isdir(full):
                entry = ("dir", oct(st.st_mode & 0o7777))
            elif os.path.isfile(full):
                with open(full, "rb") as f:
                    digest = hashlib.sha256(f.read()).hexdigest()
                entry = ("file", oct(st.st_mode & 0o7777), digest, int(st.st_mtime))
            else:
                entry = ("other", oct(st.st_mode), int(st.st_mtime))
            tree[rel] = entry
            if not os.path.isdir(full) or os.path.islink(full):
                inodes.setdefault(st.st_ino, []).append(rel)
    links = sorted(sorted(v) for v in inodes.values() if len(v) > 1)
    return tree, links


def extract(reader, archive, dest):
    """Extracts archive into dest with reader; returns whether it reported an error."""
    if reader == "python":
        try:
            with tarfile.open(archive) as t:
                kwargs = {"filter": "fully_trusted"} if hasattr(tarfile, "fully_trusted_filter") else {}
                t.extractall(dest, **kwargs)
            return False
        except Exception:
            return True
    cmd = ["tar", "-xf", archive, "-C", dest] if reader == "gnu" else ["bsdtar", "-xf", archive, "-C", dest]
    return subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).returncode != 0


def compare(original, changed):
    problems = []
    for reader in ("gnu", "bsdtar", "python"):
        with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
            err_a = extract(reader, original, a)
            err_b = extract(reader, changed, b)
            tree_a, links_a = describe(a)
            tree_b, links_b = describe(b)
            added = {p for p in tree_b if p not in tree_a and INDEX.match(p)}
            for p in added:
                del tree_b[p]
            links_b = [l for l in links_b if not any(p in added for p in l)]
            if err_a != err_b:
                problems.append(f"{reader}: extraction error {err_a} before, {err_b} after")
            for p in sorted(set(tree_a) | set(tree_b)):
                if tree_a.get(p) != tree_b.get(p):
                    problems.append(f"{reader}: {p}: {tree_a.get(p)} before, {tree_b.get(p)} after")
            if links_a != links_b:
                problems.append(f"{reader}: hard links {links_a} before, {links_b} after")
    return problems


def main():
    args = sys.argv[1:]
    if not args or len(args) % 2:
        print(__doc__, file=sys.stderr)
        return 2
    bad = 0
    for original, changed in zip(args[::2], args[1::2]):
        for p in compare(original, changed):
            print(f"{changed}: {p}")
            bad = 1
    return bad


if __name__ == "__main__":
    sys.exit(main())
