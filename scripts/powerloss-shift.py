#!/usr/bin/env python3
"""Power-loss scenarios for `embed` that shifts the whole archive (issue #32, part 2).

The shared power-loss campaign (`/work/shared/tools/powerloss/`, read-only, README.md there)
defines its workloads in a fixed list in `powerloss.py`, and none of its fixtures makes `embed`
shift: their hard links come after their targets. This script imports that campaign unchanged,
adds fixtures whose leading members must not move and workloads that embed them (so shift), and
runs it exactly as `run.sh` does, with its models, checker and report:

    python3 scripts/powerloss-shift.py target/release/tarfs
    # last line: powerloss: STATES states, LOST lost, WRONG wrong (N detected); exit 0 iff 0 and 0

Workloads (each also nested: a power loss during the `tarfs recover` of three of its states
that crashed part way through the shift; see `pick_nested`):

- `embed-shift-gnu`: a GNU tar archive of 320 members whose 1.5 MiB first member has a hard link
  last; the shift moves it in direct bands of the index's length (one fdatasync each);
- `embed-shift-staged`: a GNU tar archive whose 1.5 MiB first member, among a few small ones,
  has a hard link last; the index is a few KiB, so the shift goes through a staging area;
- `embed-shift-py`: a pax archive written by Python's tarfile whose first 40 members are updated
  at its end (names that occur twice);
- `embed-shift-trail`: a GNU tar archive with data after its end marker, which displacement
  would overwrite: the whole file moves;
- `embed-v2-gnu`, `embed-shift-v2`: the shared GNU fixture and `embed-shift-gnu`'s archive,
  embedded with the compact index v2.0 (`--format v2`): displaced, and shifted;
- `embed-shift-eio`: `embed-shift-gnu` whose fifth fdatasync fails (EIO injected): the shift
  stops part way, keeps its journal, and exits 1; power losses of that run are then recovered;
- `embed-erofs-gnu`, `embed-erofs-shift`: the shared GNU fixture and `embed-shift-gnu`'s
  archive embedded with `--erofs` (a self-mounting archive: the image in the `.tarfs` member);
- `embed-digests-gnu`: the shared GNU fixture embedded with `--digests`.

The first five name `--format v1` (the bands and the fifth fdatasync were laid out for its
index); the v2 workloads name `--format v2`; the shared campaign embeds with the default (v2).

Environment: as the shared campaign (POWERLOSS_WORK, default /tmp/tarfs-powerloss-shift here;
POWERLOSS_ONLY, POWERLOSS_SEED, POWERLOSS_SCALE, POWERLOSS_JOBS, POWERLOSS_STATE).
"""
import os
import subprocess
import sys

TOOL = os.environ.get("POWERLOSS_TOOL", "/work/shared/tools/powerloss")
os.environ.setdefault("POWERLOSS_WORK", "/tmp/tarfs-powerloss-shift")
sys.dont_write_bytecode = True
sys.path.insert(0, TOOL)
import plfix  # noqa: E402
import powerloss  # noqa: E402

SHIFT = [
    dict(name="embed-shift-gnu", kind="inplace", change="embed", files=["s1.tar"], archives=["s1.tar"],
         cmd=["embed", "--format", "v1", "s1.tar"], nested=True, points=60, states=420,
         title="`tarfs embed A` that shifts: GNU tar archive, 320 members, a hard link to its 1.5 MiB first member last (direct bands)"),
    dict(name="embed-shift-staged", kind="inplace", change="embed", files=["s2.tar"], archives=["s2.tar"],
         cmd=["embed", "--format", "v1", "s2.tar"], nested=True, points=60, states=380,
         title="`tarfs embed A` that shifts through a staging area: a 1.5 MiB first member among 12, its hard link last"),
    dict(name="embed-shift-py", kind="inplace", change="embed", files=["s3.tar"], archives=["s3.tar"],
         cmd=["embed", "--format", "v1", "s3.tar"], nested=True, points=60, states=380,
         title="`tarfs embed A` that shifts: Python (pax) archive whose first 40 members occur again at its end"),
    dict(name="embed-shift-trail", kind="inplace", change="embed", files=["s4.tar"], archives=["s4.tar"],
         cmd=["embed", "--format", "v1", "s4.tar"], nested=True, points=60, states=300,
         title="`tarfs embed A` that shifts the whole file: a GNU tar archive (1.1 MiB first member) with 700 bytes of data after its end marker"),
    dict(name="embed-shift-eio", kind="inplace", change="embed", files=["s1.tar"], archives=["s1.tar"],
         cmd=["embed", "--format", "v1", "s1.tar"], inject=["fdatasync:error=EIO:when=5"], expect_rc=1, semantic=True, points=60, states=320,
         title="`tarfs embed A` that shifts, its fifth fdatasync failing (EIO): stopped part way with its journal, then cut by a power loss"),
    # The compact index v2.0 embedded: other index bytes through the same write paths.
    dict(name="embed-v2-gnu", kind="inplace", change="embed", files=["g1.tar"], archives=["g1.tar"],
         cmd=["embed", "--format", "v2", "g1.tar"], nested=True, points=60, states=300,
         title="`tarfs embed --format v2 A` that displaces: the shared GNU tar fixture"),
    dict(name="embed-shift-v2", kind="inplace", change="embed", files=["s1.tar"], archives=["s1.tar"],
         cmd=["embed", "--format", "v2", "s1.tar"], nested=True, points=60, states=300,
         title="`tarfs embed --format v2 A` that shifts: `embed-shift-gnu`'s archive"),
    # A self-mounting archive (issue #33): the EROFS image is more bytes of the head, and its
    # binding's mtime is set last; member digests (issue #36) make the index longer.
    dict(name="embed-erofs-gnu", kind="inplace", change="embed", files=["g1.tar"], archives=["g1.tar"],
         cmd=["embed", "--erofs", "g1.tar"], nested=True, points=60, states=300,
         title="`tarfs embed --erofs A` that displaces: the shared GNU tar fixture, with an EROFS image in its .tarfs member"),
    dict(name="embed-erofs-shift", kind="inplace", change="embed", files=["s1.tar"], archives=["s1.tar"],
         cmd=["embed", "--erofs", "s1.tar"], nested=True, points=60, states=300,
         title="`tarfs embed --erofs A` that shifts: `embed-shift-gnu`'s archive, with an EROFS image"),
    dict(name="embed-digests-gnu", kind="inplace", change="embed", files=["g1.tar"], archives=["g1.tar"],
         cmd=["embed", "--digests", "g1.tar"], nested=True, points=60, states=300,
         title="`tarfs embed --digests A` that displaces: the shared GNU tar fixture, with member digests"),
]


def linked_gnu(out, src, seed, big, dirs, per_dir):
    """As plfix.gnu_archive (big first member, then directories of small files), with a hard
    link to the first member last."""
    plfix.gnu_archive(out, src, seed, big=big, dirs=dirs, per_dir=per_dir, extras=False)
    os.link(os.path.join(src, "big1.bin"), os.path.join(src, "zz-biglink"))
    names = subprocess.run(["tar", "-tf", out], check=True, capture_output=True, text=True).stdout.split()
    lst = out + ".list"
    with open(lst, "w") as f:
        f.write("\n".join(names + ["zz-biglink"]) + "\n")
    subprocess.run(["tar", "--format=gnu", "--owner=0", "--group=0", "--numeric-owner", "--mtime=@%d" % plfix.MTIME,
                    "--no-recursion", "-cf", out, "-C", src, "-T", lst], check=True)
    os.unlink(lst)
    return out


def updated_py(out, seed):
    """A pax archive by Python's tarfile (plfix.py_archive), then its first 40 files again with
    new contents (Python appends, as `tar -rf` would)."""
    import io
    import tarfile
    plfix.py_archive(out, seed, head=40, big=300 * 1024, tail_dirs=4, per_dir=50)
    with tarfile.open(out, "a", format=tarfile.PAX_FORMAT) as tf:
        for i in range(40):
            data = b"updated %d\n" % i * (i + 1)
            ti = tarfile.TarInfo("top/h%03d.txt" % i)
            ti.size, ti.mtime, ti.mode, ti.uid, ti.gid, ti.uname, ti.gname = len(data), plfix.MTIME + 1, 0o644, 0, 0, "root", "root"
            tf.addfile(ti, io.BytesIO(data))
    return out


def build_all(fx, seed, _shared=plfix.build_all):
    f = _shared(fx, seed)
    src = os.path.join(fx, "src")
    f["s1.tar"] = linked_gnu(os.path.join(fx, "s1.tar"), src + "-s1", seed + 301, 1536 * 1024 + 123, 10, 30)
    f["s2.tar"] = linked_gnu(os.path.join(fx, "s2.tar"), src + "-s2", seed + 302, 1536 * 1024 + 77, 1, 10)
    f["s3.tar"] = updated_py(os.path.join(fx, "s3.tar"), seed + 303)
    f["s4.tar"] = plfix.gnu_archive(os.path.join(fx, "s4.tar"), src + "-s4", seed + 304, big=1100 * 1024 + 9, dirs=3, per_dir=20)
    with open(f["s4.tar"], "ab") as fh:
        fh.write(plfix.text(plfix.random.Random(seed + 305), "trailing", 700))
    return f


def pick_nested(ctx, log_, results, rng, _shared=powerloss.pick_nested):
    """The shared campaign nests power losses into the recoveries that rolled back; a shift's
    recovery never does (it finishes the shift). For the shift workloads, nest them into
    recoveries that finished a shift part way: the state with the most blocks already changed
    (a late crash), the one with the fewest (an early crash), and one at random."""
    picks = _shared(ctx, log_, results, rng)
    if picks or not ctx.w["name"].startswith("embed-shift"):
        return picks
    import plcheck
    import plmodel
    cands = []
    for e in results:
        if e["results"]["recover"]["cls"] != "OK-changed":
            continue
        files = plmodel.build(log_, e["spec"]).files()
        diff = 0
        for a in ctx.w["archives"]:
            orig, cur, t = ctx.truth[a]["orig"], files[a][1], ctx.truth[a]
            if plcheck.sha(cur) in (t["orig_sha"], t["final_sha"]):
                continue
            diff += sum(1 for i in range(0, max(len(orig), len(cur)), 512) if orig[i:i + 512] != cur[i:i + 512])
        if diff:
            cands.append((diff, e))
    if not cands:
        return []
    cands.sort(key=lambda x: x[0])
    chosen = [("the shift furthest on, %d blocks changed: %s" % (cands[-1][0], powerloss.where(log_, cands[-1][1])), cands[-1][1])]
    if len(cands) > 1:
        chosen.append(("the shift least far on, %d blocks changed: %s" % (cands[0][0], powerloss.where(log_, cands[0][1])), cands[0][1]))
    rest = cands[1:-1]
    if rest:
        x = rng.choice(rest)
        chosen.append(("a random part-way shift, %d blocks changed: %s" % (x[0], powerloss.where(log_, x[1])), x[1]))
    return chosen


plfix.build_all = build_all
powerloss.pick_nested = pick_nested
powerloss.WORKLOADS[:] = SHIFT
if __name__ == "__main__":
    sys.exit(powerloss.main())
