#!/usr/bin/env python3
"""A plain `.tarfs` v1.0 reader, written from the specification alone (../shared/seeds/004,
with DESIGN.md's reading that entries end at the first all-zero block). It knows nothing of
tarfs's extension records.

Usage: v1_reader.py sidecar INDEX   |   v1_reader.py embedded ARCHIVE

Prints one JSON object per entry: the member's name (the header's prefix/name) and its position
in bytes, counted as the specification says: from the archive's start for an external index,
and from just after the `.tarfs` member for an embedded one. Exits 1 on a bad checksum.
"""
import json
import sys

BLOCK = 512


def field(b, start, size):
    return b[start:start + size].split(b"\0", 1)[0]


def octal(b, start, size):
    text = field(b, start, size).strip(b" ")
    return int(text, 8) if text else 0


def entries(index):
    if index[:10] != b".tar-index":
        sys.exit("not a .tarfs index")
    version = index[11:35].replace(b"\0", b"").strip(b" ")
    if not version.startswith(b"v1."):
        sys.exit("not a v1 index: %r" % version)
    at = BLOCK
    while at + BLOCK <= len(index):
        block = index[at:at + BLOCK]
        if block == bytes(BLOCK):
            break
        position = int.from_bytes(block[148:153], "big")
        checksum = int.from_bytes(block[153:156], "big")
        # The checksum as tar computes it, with the checksum field taken as spaces.
        want = (sum(block[:148]) + 8 * 32 + sum(block[156:])) & 0xFFFFFF
        if checksum != want:
            sys.exit("entry at byte %d: bad checksum" % at)
        name = field(block, 0, 100)
        prefix = field(block, 345, 155) if block[257:263] == b"ustar\0" else b""
        full = prefix + b"/" + name if prefix else name
        yield full, position * BLOCK
        at += BLOCK


def main():
    kind, path = sys.argv[1], sys.argv[2]
    data = open(path, "rb").read()
    base = 0
    if kind == "embedded":
        header = data[:BLOCK]
        if field(header, 0, 100) != b".tarfs":
            sys.exit("no .tarfs first member")
        size = octal(header, 124, 12)
        index = data[BLOCK:BLOCK + size]
        base = BLOCK + (size + BLOCK - 1) // BLOCK * BLOCK
    else:
        index = data
    for name, pos in entries(index):
        print(json.dumps({"name_hex": name.hex(), "position": base + pos}))


main()
