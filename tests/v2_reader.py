#!/usr/bin/env python3
"""A reader of `.tarfs` v2.0 sidecars, written from docs/FORMAT.md ("The `.tarfs` index,
version 2.0") alone, with Python's standard library.

Usage: v2_reader.py INDEX [ARCHIVE]

Checks the head's and every chunk's CRC-32, then prints one JSON object per member: its path,
its position in bytes and its size, and where the body has member digests (head flag 4), its
SHA-256 and its number of chunk digests. With ARCHIVE, it also checks that each position holds a
tar header whose checksum is the record's, that looking each path up through the hash table
finds its entry, and that each member's digests (whole and per 4 MiB chunk) are those of its
data (sparse members, whose map is in their header chain, aside). Exits 1 on any mismatch.
"""
import hashlib
import json
import sys
import zlib

BLOCK = 512
CHUNK = 4 << 20


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
                    "sum": u(body, r + 32, 4), "tag": u(body, r + 38, 2),
                    "type": body[r + 36:r + 37], "flags": body[r + 37]})
    return out


def digests(body, head, entries):
    """The member digests part (head flag 4; offset and length at head [168, 184)): adds to
    each entry its SHA-256 and chunk digests, and checks the part's shape."""
    if u(head, 124, 4) & 4 == 0:
        return False
    at, length = u(head, 168, 8), u(head, 176, 8)
    part = body[at:at + length]
    if part[:4] != b"TFSD" or u(part, 4, 4) != 1 or u(part, 16, 8) != CHUNK:
        fail("bad digests head")
    n, c = u(part, 8, 8), u(part, 24, 8)
    if n != len(entries) or length != 32 + 48 * n + 32 * c:
        fail("the digests part is out of shape")
    chunks_at = 32 + 48 * n
    firsts = [u(part, 32 + 48 * i + 40, 8) for i in range(n)] + [c]
    for i, e in enumerate(entries):
        r = 32 + 48 * i
        if u(part, r + 32, 8) != e["position"]:
            fail("entry %d: its digests record another position" % i)
        count = firsts[i + 1] - firsts[i]
        if count != (-(-e["size"] // CHUNK) if e["size"] > CHUNK else 0):
            fail("entry %d: %d chunk digests for %d bytes" % (i, count, e["size"]))
        e["sha256"] = part[r:r + 32]
        e["chunks"] = [part[chunks_at + 32 * k:chunks_at + 32 * (k + 1)] for k in range(firsts[i], firsts[i + 1])]
    return True


def check_digests(archive, entries):
    """Each member that is not sparse: its data's SHA-256, whole and per chunk."""
    for i, e in enumerate(entries):
        if "sha256" not in e or e["flags"] & 2 or e["type"] not in b"0\x007":
            continue
        start = e["position"] + e["chain"] * BLOCK
        data = archive[start:start + e["size"]]
        if hashlib.sha256(data).digest() != e["sha256"]:
            fail("entry %d (%r): its data's SHA-256 is not the index's" % (i, e["path"]))
        for k, want in enumerate(e["chunks"]):
            if hashlib.sha256(data[k * CHUNK:(k + 1) * CHUNK]).digest() != want:
                fail("entry %d (%r): chunk %d's SHA-256 is not the index's" % (i, e["path"], k))


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
    digested = digests(body, head, entries)
    archive = open(sys.argv[2], "rb").read() if len(sys.argv) > 2 else None
    for i, e in enumerate(entries):
        if archive is not None:
            if i not in lookup(body, head, entries, e["path"]):
                fail("entry %d (%r) is not found by its path" % (i, e["path"]))
        out = {"path": e["path"].hex(), "position": e["position"], "size": e["size"]}
        if digested:
            out["sha256"], out["chunks"] = e["sha256"].hex(), len(e["chunks"])
        print(json.dumps(out))
    if archive is not None:
        check_positions(archive, body, head, entries)
        check_digests(archive, entries)


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
        e["chain"] = chain
        block = archive[e["position"] + main * BLOCK:e["position"] + (main + 1) * BLOCK]
        if len(block) != BLOCK or header_sum(block) != e["sum"]:
            fail("entry %d (%r): no header with its checksum at byte %d" % (i, e["path"], e["position"]))


if __name__ == "__main__":
    main()
