#!/usr/bin/env python3
"""The shape of the code (issue #31), checked by CI through scripts/test.sh.

- src/main.rs is at most 150 lines, and no file under src/cmd/ (the binary's commands) is over
  150 lines;
- no function in src/ is over 80 lines (from its `fn` line to its closing brace);
- no `Invalid(String)` error variant and no `Result<_, String>` in src/;
- no `Box::leak` in src/;
- every `unsafe` block or impl in src/ has a `// SAFETY:` comment on one of the 15 lines before
  it, and docs/ARCHITECTURE.md lists each file that holds one.

Usage: python3 scripts/check-shape.py [--report]   (--report: the longest functions too)
Exit status 1 on any breach, each printed as FILE:LINE: what.
"""

import pathlib
import re
import sys

ROOT = pathlib.Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
MAX_FN = 80
MAX_MAIN = 150
MAX_CMD = 150


def strip(line):
    """A line without its string literals and `//` comment (good enough for brace counting)."""
    line = re.sub(r"b?r#*\"[^\"]*\"#*", '""', line)
    line = re.sub(r'b?"(\\.|[^"\\])*"', '""', line)
    line = re.sub(r"'(\\.|[^'\\])'", "' '", line)
    return line.split("//", 1)[0]


def functions(lines):
    """(name, first line number, length) of each function with a body."""
    out = []
    fn_re = re.compile(r"^\s*(pub(\([^)]*\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?(extern\s+\"[^\"]*\"\s+)?fn\s+(\w+)")
    i = 0
    while i < len(lines):
        m = fn_re.match(lines[i])
        if not m:
            i += 1
            continue
        depth, started, j = 0, False, i
        while j < len(lines):
            code = strip(lines[j])
            if not started and ";" in code and "{" not in code:
                break  # a declaration without a body (in a trait)
            for ch in code:
                if ch == "{":
                    depth += 1
                    started = True
                elif ch == "}":
                    depth -= 1
            if started and depth <= 0:
                out.append((m.group(7), i + 1, j - i + 1))
                break
            j += 1
        i += 1
    return out


def main():
    report = "--report" in sys.argv
    breaches, lengths = [], []
    arch = (ROOT / "docs/ARCHITECTURE.md").read_text()
    for path in sorted(SRC.rglob("*.rs")):
        rel = path.relative_to(ROOT)
        lines = path.read_text().splitlines()
        if rel.as_posix() == "src/main.rs" and len(lines) > MAX_MAIN:
            breaches.append(f"{rel}:1: {len(lines)} lines, over {MAX_MAIN}")
        if rel.parts[:2] == ("src", "cmd") and len(lines) > MAX_CMD:
            breaches.append(f"{rel}:1: a command file of {len(lines)} lines, over {MAX_CMD}")
        for name, line, n in functions(lines):
            lengths.append((n, f"{rel}:{line}: fn {name}"))
            if n > MAX_FN:
                breaches.append(f"{rel}:{line}: fn {name} is {n} lines, over {MAX_FN}")
        has_unsafe = False
        for k, text in enumerate(lines):
            code = strip(text)
            if re.search(r"\bInvalid\s*\(\s*String\s*\)", code):
                breaches.append(f"{rel}:{k + 1}: an Invalid(String) variant")
            if re.search(r"Result<[^;{]*,\s*String\s*>", code):
                breaches.append(f"{rel}:{k + 1}: a Result<_, String>")
            if "Box::leak" in code:
                breaches.append(f"{rel}:{k + 1}: Box::leak")
            if re.search(r"\bunsafe\s*(\{|impl\b)", code):
                has_unsafe = True
                window = lines[max(0, k - 15):k + 1]
                if not any("SAFETY:" in w for w in window):
                    breaches.append(f"{rel}:{k + 1}: an unsafe block without a // SAFETY: comment")
        if has_unsafe and rel.as_posix() not in arch:
            breaches.append(f"{rel}:1: holds unsafe code that docs/ARCHITECTURE.md does not list")
    if report:
        for n, where in sorted(lengths, reverse=True)[:25]:
            print(f"{n:5} {where}")
    for b in breaches:
        print(b)
    print(f"check-shape: {len(breaches)} breaches")
    return 1 if breaches else 0


if __name__ == "__main__":
    sys.exit(main())
