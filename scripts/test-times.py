#!/usr/bin/env python3
"""Sums up a `cargo test` log: the build's time and each test binary's, slowest first.

Usage: test-times.py LOG BUILD_SECONDS. cargo prints `Running tests/NAME.rs (...)` before a
binary's tests and `test result: ... finished in S s` after them; this pairs the two.
"""
import re
import sys

log, build = sys.argv[1], int(sys.argv[2])
times, current = [], None
for line in open(log, errors="replace"):
    m = re.match(r"\s*Running (\S+)", line)
    if m:
        current = m.group(1)
        continue
    m = re.search(r"test result: .* finished in ([0-9.]+)s", line)
    if m and current:
        times.append((float(m.group(1)), current))
        current = None
total = sum(t for t, _ in times)
print(f"\ntest times: build {build} s; tests {total:.0f} s in {len(times)} binaries")
for t, name in sorted(times, reverse=True):
    if t >= 1:
        print(f"  {t:7.1f} s  {name}")
