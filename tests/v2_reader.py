#!/usr/bin/env python3
"""A reader of `.tarfs` v2.0 sidecars, written from docs/FORMAT.md ("The `.tarfs` index,
version 2.0") alone, with Python's standard library.

Usage: v2_reader.py INDEX [ARCHIVE]

Checks the head's and every chunk's CRC-32, then prints one JSON object per member: its path,
its position in bytes and its size. With ARCHIVE, it also checks that each position holds a
tar header whose checksum is the record's, and that looking each path up through the hash table
finds its entry. Exits 1 on any mismatch.
"""
import json
import sys
import zlib

BLOCK = 512


def u(b, at, size):
    return int.from_bytes(b[at:at + size], "little")


def leb(b, at):
    value, shift = 0, 0
    while True:
        byte = b[at]
        at += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return value, at


def key(path):
    while len(path) > 1 and path.endswith(b"/"):
        path = path[:-1]
    if path.startswith(b"./") and len(path) > 2:
        path = path[2:]
    return path


def fnv(data):
    h = 0xCBF29CE484222325
    for byte in data:
        h = ((h ^ byte) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def fail(msg):
    sys.exit("v2_reader: " + msg)


def open_index(data):
    if data[:10] != b".tar-index" or not data[11:35].replace(b"\0", b"").strip().startswith(b"v2."):
        fail("not a v2 index")
    body_len = int.from_bytes(data[112:120], "big")
    body = data[BLOCK:BLOCK + body_len]
    head = body[:256]
    if head[:4] != b"TFS2" or zlib.crc32(head[:252]) != u(head, 252, 4):
        fail("bad head")
    if zlib.crc32(data[:BLOCK]) != u(head, 144, 4):
        fail("the body belongs to another header")
    if u(head, 124, 4) & ~(1 | 2 | 4 | 8):
        fail("unknown body flags")
    if u(head, 124, 4) & 8:
        stored = body[256:256 + u(head, 192, 8)]
        if zlib.crc32(stored) != u(head, 200, 4):
            fail("the deflated parts are damaged")
        body = head + zlib.decompress(stored, -15)
        if len(body) != u(head, 184, 8):
            fail("the deflated parts inflate to another length")
    table, count = u(head, 128, 8), u(head, 136, 8)
    for k in range(count):
        start = 256 + 65536 * k
        if zlib.crc32(body[start:min(start + 65536, table)]) != u(body, table + 4 * k, 4):
            fail("chunk %d is damaged" % k)
    return body, head


def members(body, head):
    n, records, paths = u(head, 8, 8), u(head, 24, 8), u(head, 40, 8)
    out, prev, at = [], b"", paths
    for i in range(n):
        r = records + 40 * i
        shared, at = leb(body, at)
        rest, at = leb(body, at)
        prev = prev[:shared] + body[at:at + rest]
        at += rest
        out.append({"path": prev, "position": u(body, r, 6) * BLOCK, "size": u(body, r + 8, 8),
                    "sum": u(body, r + 32, 4), "tag": u(body, r + 38, 2)})
    return out


def lookup(body, head, entries, name):
    slots_at, m = u(head, 56, 8), u(head, 64, 8)
    k = key(name)
    h = fnv(k)
    s, found = h % m, []
    while True:
        v = u(body, slots_at + 4 * s, 4)
        if v == 0:
            return sorted(found)
        e = entries[v - 1]
        if e["tag"] == h >> 48 and key(e["path"]) == k:
            found.append(v - 1)
        s = (s + 1) % m


def header_sum(block):
    return sum(block[:148]) + 8 * 32 + sum(block[156:])


def main():
    data = open(sys.argv[1], "rb").read()
    body, head = open_index(data)
    entries = members(body, head)
    archive = open(sys.argv[2], "rb").read() if len(sys.argv) > 2 else None
    for i, e in enumerate(entries):
        if archive is not None:
            if i not in lookup(body, head, entries, e["path"]):
                fail("entry %d (%r) is not found by its path" % (i, e["path"]))
        print(json.dumps({"path": e["path"].hex(), "position": e["position"], "size": e["size"]}))
    if archive is not None:
        check_positions(archive, body, head, entries)


def check_positions(archive, body, head, entries):
    """The main header (the block before the data, unless the extras say otherwise) has the
    record's checksum."""
    extras = {}
    idx, count, blob = u(head, 72, 8), u(head, 80, 8), u(head, 88, 8)
    for k in range(count):
        extras[u(body, idx + 8 * k, 4)] = blob + u(body, idx + 8 * k + 4, 4)
    records = u(head, 24, 8)
    for i, e in enumerate(entries):
        chain, main = u(body, records + 40 * i + 6, 2), None
        at = extras.get(i)
        while at is not None:
            tag = body[at]
            if tag == 0:
                break
            length, at = leb(body, at + 1)
            if tag == 3:
                main = u(body, at, 8)
            if tag == 4:
                chain = u(body, at, 8)
            at += length
        main = chain - 1 if main is None else main
        block = archive[e["position"] + main * BLOCK:e["position"] + (main + 1) * BLOCK]
        if len(block) != BLOCK or header_sum(block) != e["sum"]:
            fail("entry %d (%r): no header with its checksum at byte %d" % (i, e["path"], e["position"]))


if __name__ == "__main__":
    main()
