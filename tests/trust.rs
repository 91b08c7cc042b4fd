//! Whether an index may answer (issue #29): every finding of the third trust round about the
//! verdict has a test here, and each fails on the code before the fix.
//!
//! - A compressed archive replaced by another of the same length is answered for the new file
//!   (`ls`, `cat`, `extract`, `mount`), `index` rebuilds its sidecar and `verify` fails.
//! - A flipped bit in the entry count, a flipped position bit in an unsampled entry, and bytes
//!   swapped inside an entry (its byte sum unchanged) never give a listing with members missing
//!   or another member's offsets.
//! - A member renamed in place (same length, checksum fixed, mtime restored with `touch -r`) is
//!   listed under its new name, whether read at once, re-indexed, or after the archive grew.
//! - A stale CSV index does not rename members.
//! - A mount serves no other member's bytes, and fails reads of an archive rewritten under it
//!   with its mtime restored.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, tarfs};
use tempfile::TempDir;

/// Writes a tar archive compressed as `kind` (gz, bz2, xz, zst; tar for none) to `out`: a random file
/// `common`, then either a symbolic link `aa/la -> /etc/passwd` (variant `a`) or a regular file
/// `bb/other` (variant `b`), then a random file `pad` whose size is chosen so that the
/// compressed file is exactly `target` bytes long (any length when `target` is 0; for zstd, a
/// skippable frame makes up the last few bytes). Prints the length reached.
const PY_SAME_LENGTH: &str = r#"
import bz2, gzip, io, lzma, random, subprocess, sys, tarfile
out, kind, variant, target = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
def tar_bytes(k):
    rnd = random.Random(7 if variant == 'a' else 8)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode='w', format=tarfile.GNU_FORMAT) as t:
        def add(name, data):
            i = tarfile.TarInfo(name); i.size = len(data); i.mtime = 1700000000; i.mode = 0o644
            t.addfile(i, io.BytesIO(data))
        add('common', rnd.randbytes(20000))
        if variant == 'a':
            i = tarfile.TarInfo('aa/la'); i.type = tarfile.SYMTYPE; i.linkname = '/etc/passwd'; i.mtime = 1700000000
            t.addfile(i)
        else:
            add('bb/other', rnd.randbytes(300))
        add('pad', random.Random(k).randbytes(k))
    return buf.getvalue()
def compress(b):
    if kind == 'tar': return b
    if kind == 'gz': return gzip.compress(b, 6, mtime=0)
    if kind == 'bz2': return bz2.compress(b)
    if kind == 'xz': return lzma.compress(b)
    return subprocess.run(['zstd', '-q', '-c', '-3'], input=b, capture_output=True, check=True).stdout
base = 5000
if target == 0:
    data = compress(tar_bytes(base))
else:
    guess = base + target - len(compress(tar_bytes(base)))
    # zstd's length moves in steps: there, the rest is a skippable frame (8 bytes and more).
    slack = 8 if kind == 'zst' else 0
    for k in sorted(range(max(0, guess - 600), guess + 600), key=lambda k: abs(k - guess)):
        data = compress(tar_bytes(k))
        if len(data) == target or slack and len(data) + slack <= target <= len(data) + slack + 64:
            break
    else:
        sys.exit('no pad size gives %d bytes' % target)
    if len(data) < target:
        rest = target - len(data) - 8
        data += (0x184D2A50).to_bytes(4, 'little') + rest.to_bytes(4, 'little') + bytes(rest)
open(out, 'wb').write(data)
print(len(data))
"#;

/// Writes variant `variant` of the same-length archive (see [`PY_SAME_LENGTH`]).
fn same_length(out: &Path, kind: &str, variant: &str, target: u64) -> u64 {
    let o = ok(Command::new("python3").arg("-c").arg(PY_SAME_LENGTH).arg(out).arg(kind).arg(variant).arg(target.to_string()));
    String::from_utf8(o.stdout).unwrap().trim().parse().unwrap()
}

/// `tarfs ls ARCHIVE`: its lines.
fn listing(a: &Path) -> Vec<String> {
    String::from_utf8(ok(tarfs().arg("ls").arg(a)).stdout).unwrap().lines().map(str::to_string).collect()
}

/// The `action` of `tarfs index --json ARCHIVE`.
fn index_action(a: &Path) -> String {
    let out = ok(tarfs().arg("index").arg("--json").arg(a));
    let line = String::from_utf8(out.stdout).unwrap();
    let rec: serde_json::Value = serde_json::from_str(line.lines().find(|l| l.contains("\"path\"")).expect("a record")).unwrap();
    rec["action"].as_str().unwrap().to_string()
}

/// Writes `bytes` over `to` in place (same inode), then gives `to` the mtime it had.
fn overwrite_keeping_mtime(to: &Path, bytes: &[u8]) {
    let stamp = to.with_extension("stamp");
    ok(Command::new("touch").arg("-r").arg(to).arg(&stamp));
    fs::write(to, bytes).unwrap();
    ok(Command::new("touch").arg("-r").arg(&stamp).arg(to));
}

/// Issue #31's acceptance: a sidecar left stale by another archive of the same length, plain
/// and in every compression: `ls`, `cat`, `extract` and the mount answer for the new archive,
/// `verify` fails, and `index` rebuilds the sidecar.
#[test]
fn a_compressed_archive_replaced_by_another_of_the_same_length_is_answered_for_the_new_one() {
    let tmp = TempDir::new().unwrap();
    for kind in ["tar", "gz", "bz2", "xz", "zst"] {
        let a = tmp.path().join(format!("a.tar.{kind}"));
        let len = same_length(&a, kind, "a", 0);
        let b = tmp.path().join(format!("b.tar.{kind}"));
        same_length(&b, kind, "b", len);
        assert_eq!(fs::metadata(&b).unwrap().len(), len);
        assert_eq!(index_action(&a), "indexed");
        overwrite_keeping_mtime(&a, &fs::read(&b).unwrap());
        // Every reader answers for the file as it is now.
        assert_eq!(listing(&a), common::listing("tar", &b), "{kind}: ls");
        let cat = ok(tarfs().arg("cat").arg(&a).arg("bb/other"));
        assert_eq!(cat.stdout.len(), 300, "{kind}: cat");
        let x = tmp.path().join(format!("x-{kind}"));
        fs::create_dir(&x).unwrap();
        ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&x));
        assert!(fs::symlink_metadata(x.join("aa/la")).is_err(), "{kind}: extract made the old archive's symlink");
        assert!(x.join("bb/other").is_file(), "{kind}: extract");
        {
            let m = mount(&a, tmp.path());
            assert_eq!(fs::read(m.0.join("bb/other")).map(|b| b.len()).ok(), Some(300), "{kind}: the mount");
            assert!(fs::symlink_metadata(m.0.join("aa/la")).is_err(), "{kind}: the mount shows the old archive's symlink");
        }
        // verify fails on the stale sidecar; index rebuilds it, and verify then passes.
        assert!(!tarfs().arg("verify").arg(&a).output().unwrap().status.success(), "{kind}: verify passed a stale sidecar");
        assert_eq!(index_action(&a), "indexed", "{kind}: index called the old sidecar fresh");
        ok(tarfs().arg("verify").arg(&a));
        assert_eq!(index_action(&a), "skipped", "{kind}: a second index");
    }
}

/// A GNU tar archive of `n` files `f000`..: each `size` bytes.
fn gnu_archive(dir: &Path, n: usize, size: usize) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap();
    let mut names = Vec::new();
    for i in 0..n {
        let name = format!("f{i:03}");
        common::write_pattern(&src.join(&name), size, i as u64);
        names.push(name);
    }
    let a = dir.join("a.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&a).arg("-C").arg(&src).args(&names));
    a
}

/// The byte offset of the header of member `name` in `a`, from `tarfs ls --json` (before any
/// change).
fn header_offset(a: &Path, name: &str) -> usize {
    let out = ok(tarfs().arg("ls").arg("--json").arg(a));
    let line = String::from_utf8(out.stdout).unwrap();
    let m = line.lines().map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()).find(|m| m["name"] == name).expect("the member");
    m["header_offset"].as_u64().unwrap() as usize
}

/// Renames the member whose header is at byte `at` of `a` in place (its first letter becomes
/// `X`), with its checksum recomputed, and gives the file back its mtime.
fn rename_in_place(a: &Path, at: usize) {
    let mut bytes = fs::read(a).unwrap();
    common::rename_header(&mut bytes, at);
    overwrite_keeping_mtime(a, &bytes);
}

#[test]
fn a_member_renamed_in_place_is_listed_under_its_new_name() {
    let tmp = TempDir::new().unwrap();
    // 200 members: entry 101 is not in the freshness sample (every third entry and the last).
    let a = gnu_archive(tmp.path(), 200, 100);
    assert_eq!(index_action(&a), "indexed");
    let at = header_offset(&a, "f101");
    rename_in_place(&a, at);
    assert_eq!(listing(&a), common::listing("tar", &a), "ls after the rename");
    ok(tarfs().arg("cat").arg(&a).arg("X101"));
    assert!(!tarfs().arg("verify").arg(&a).output().unwrap().status.success(), "verify passed");
    assert_eq!(index_action(&a), "indexed", "index called the sidecar fresh");
    assert_eq!(listing(&a), common::listing("tar", &a));
    // Then the archive grows: the re-index from the old end must not bring the old name back.
    assert_eq!(index_action(&a), "skipped");
    let at = header_offset(&a, "f150");
    rename_in_place(&a, at);
    let extra = tmp.path().join("src/extra");
    fs::write(&extra, b"appended").unwrap();
    ok(Command::new("tar").arg("--format=gnu").arg("-rf").arg(&a).arg("-C").arg(tmp.path().join("src")).arg("extra"));
    assert_eq!(index_action(&a), "indexed");
    assert_eq!(listing(&a), common::listing("tar", &a), "the grown re-index carried the old name forward");
    ok(tarfs().arg("verify").arg(&a));
}

#[test]
fn an_embedded_index_of_an_archive_that_grew_after_an_in_place_rename_is_rebuilt_with_the_new_name() {
    let tmp = TempDir::new().unwrap();
    // A first member of 1 MiB: embedding displaces it alone, which leaves the .tarfs member a
    // large gap, so the index after growth still fits and the old index may answer for the old
    // part (the path that carried the old name forward).
    let a = gnu_archive(tmp.path(), 200, 100);
    common::write_pattern(&tmp.path().join("src/f000"), 1 << 20, 5);
    let names: Vec<String> = (0..200).map(|i| format!("f{i:03}")).collect();
    ok(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&a).arg("-C").arg(tmp.path().join("src")).args(&names));
    ok(tarfs().arg("embed").arg(&a));
    // f120 is entry 119 (f000 was displaced to the end): not in the sample.
    let at = header_offset(&a, "f120");
    rename_in_place(&a, at);
    let extra = tmp.path().join("src/extra");
    fs::write(&extra, b"appended").unwrap();
    ok(Command::new("tar").arg("--format=gnu").arg("-rf").arg(&a).arg("-C").arg(tmp.path().join("src")).arg("extra"));
    let out = ok(tarfs().arg("embed").arg("--json").arg(&a));
    let line = String::from_utf8(out.stdout).unwrap();
    let rec: serde_json::Value = serde_json::from_str(line.lines().find(|l| l.contains("\"path\"")).expect("a record")).unwrap();
    let reason = rec["reason"].as_str().unwrap_or_default().to_string();
    assert!(!reason.contains("from the old end"), "the old index answered for a changed old part: {reason}");
    let want: Vec<String> = common::listing("tar", &a).into_iter().filter(|n| n != ".tarfs").collect();
    assert_eq!(listing(&a), want, "the grown embed carried the old name forward ({reason})");
    ok(tarfs().arg("verify").arg(&a));
    // Without the rename, the same growth is taken from the old end: the case above is that path.
    let b = tmp.path().join("b.tar");
    ok(Command::new("tar").arg("--format=gnu").arg("-cf").arg(&b).arg("-C").arg(tmp.path().join("src")).args(&names));
    ok(tarfs().arg("embed").arg(&b));
    ok(Command::new("tar").arg("--format=gnu").arg("-rf").arg(&b).arg("-C").arg(tmp.path().join("src")).arg("extra"));
    let out = String::from_utf8(ok(tarfs().arg("embed").arg("--json").arg(&b)).stdout).unwrap();
    assert!(out.contains("from the old end"), "{out}");
}

/// A fresh v1 sidecar of `a` (the damage is placed by its entry blocks), with `damage` applied
/// to its bytes.
fn damage_sidecar(a: &Path, damage: impl FnOnce(&mut Vec<u8>)) {
    ok(tarfs().args(["index", "--force", "--format", "v1"]).arg(a));
    let side = PathBuf::from(format!("{}.tarfs", a.display()));
    let mut bytes = fs::read(&side).unwrap();
    damage(&mut bytes);
    fs::write(&side, bytes).unwrap();
}

/// Every reader of `a` still answers as tar does, `verify` fails, and `index` rebuilds.
fn damaged_index_is_never_an_answer(a: &Path, what: &str) {
    assert_eq!(listing(a), common::listing("tar", a), "{what}: ls");
    let json = ok(tarfs().arg("ls").arg("--json").arg(a));
    let theirs = common::python_members(a);
    let ours: Vec<serde_json::Value> = String::from_utf8(json.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(ours.len(), theirs.len(), "{what}: members");
    for (o, t) in ours.iter().zip(&theirs) {
        assert_eq!((&o["name"], &o["header_offset"], &o["data_offset"]), (&t["name"], &t["offset"], &t["offset_data"]), "{what}: ls --json");
    }
    assert!(!tarfs().arg("verify").arg(a).output().unwrap().status.success(), "{what}: verify passed");
    assert_eq!(index_action(a), "indexed", "{what}: index kept a damaged sidecar");
}

#[test]
fn a_damaged_sidecar_never_answers() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), 200, 100);
    // v1: the damage below is placed by its entry blocks.
    ok(tarfs().args(["index", "--format", "v1"]).arg(&a));
    // Bit 3 of byte 79: the entry count, 200 -> 192.
    damage_sidecar(&a, |b| b[79] ^= 8);
    damaged_index_is_never_an_answer(&a, "entry count");
    // A position bit of entry 101 (bytes 148-153 of its block), not in the sample.
    damage_sidecar(&a, |b| b[102 * 512 + 152] ^= 1);
    damaged_index_is_never_an_answer(&a, "position");
    // Two bytes of entry 101's name swapped: the byte sum holds.
    damage_sidecar(&a, |b| b.swap(102 * 512 + 1, 102 * 512 + 2));
    damaged_index_is_never_an_answer(&a, "swapped bytes");
    // +1/-1 in two bytes of its size field.
    damage_sidecar(&a, |b| {
        b[102 * 512 + 130] += 1;
        b[102 * 512 + 131] -= 1;
    });
    damaged_index_is_never_an_answer(&a, "+1/-1");
}

#[test]
fn a_damaged_embedded_index_never_answers() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), 200, 100);
    ok(tarfs().arg("embed").arg(&a));
    let mut bytes = fs::read(&a).unwrap();
    // The index is the data of the first member: its header block is at 512.
    bytes[512 + 79] ^= 8;
    fs::write(&a, &bytes).unwrap();
    let want: Vec<String> = common::listing("tar", &a).into_iter().filter(|n| n != ".tarfs").collect();
    assert_eq!(listing(&a), want, "ls through a damaged embedded index");
    assert!(!tarfs().arg("verify").arg(&a).output().unwrap().status.success(), "verify passed");
}

#[test]
fn a_stale_csv_index_does_not_rename_members() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), 20, 100);
    ok(tarfs().arg("csv").arg(&a));
    let at = header_offset(&a, "f010");
    rename_in_place(&a, at);
    let out = tarfs().arg("ls").arg(&a).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!(out.status.success() && text.lines().any(|l| l == "f010")), "ls listed the old name with exit 0:\n{text}");
    let x = tmp.path().join("x");
    fs::create_dir(&x).unwrap();
    let out = tarfs().arg("extract").arg(&a).arg("-C").arg(&x).output().unwrap();
    assert!(!(out.status.success() && x.join("f010").exists()), "extract wrote the old name with exit 0");
}

/// A mounted file system, unmounted when dropped.
struct Mounted(PathBuf);

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("fusermount3").arg("-u").arg(&self.0).output();
    }
}

fn mount(a: &Path, tmp: &Path) -> Mounted {
    let mp = tempfile::Builder::new().prefix("mnt").tempdir_in(tmp).unwrap().keep();
    ok(tarfs().arg("mount").arg("--fuse").arg(a).arg(&mp));
    Mounted(mp)
}

/// Swaps the names of the members whose headers are at `x` and `y` (their checksums hold: the
/// same bytes move), in place, keeping the mtime.
fn swap_names(a: &Path, x: usize, y: usize) {
    let mut bytes = fs::read(a).unwrap();
    let nx: Vec<u8> = bytes[x..x + 100].to_vec();
    let ny: Vec<u8> = bytes[y..y + 100].to_vec();
    bytes[x..x + 100].copy_from_slice(&ny);
    bytes[y..y + 100].copy_from_slice(&nx);
    overwrite_keeping_mtime(a, &bytes);
}

#[test]
fn a_mount_serves_no_other_members_bytes() {
    let tmp = TempDir::new().unwrap();
    // f101 and f110 are the same size, and their names have the same byte sum; they are swapped
    // in place under an embedded index, whose sample (every third entry) does not cover them:
    // 21 members are displaced, so they are entries 80 and 89.
    let a = gnu_archive(tmp.path(), 200, 5000);
    ok(tarfs().arg("embed").arg(&a));
    let (x, y) = (header_offset(&a, "f101"), header_offset(&a, "f110"));
    swap_names(&a, x, y);
    let listed = ok(tarfs().arg("-v").arg("ls").arg(&a));
    assert!(String::from_utf8_lossy(&listed.stderr).contains("embedded"), "the embedded index is not in use: {}", String::from_utf8_lossy(&listed.stderr));
    let m = mount(&a, tmp.path());
    for name in ["f101", "f110"] {
        let want = ok(Command::new("tar").arg("-xOf").arg(&a).arg(name)).stdout;
        if let Ok(got) = fs::read(m.0.join(name)) {
            assert!(got == want, "{name}: the mount served another member's bytes");
        }
    }
}

#[test]
fn a_mount_fails_reads_of_an_archive_rewritten_under_it_with_its_mtime_restored() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), 20, 100);
    ok(tarfs().arg("index").arg(&a));
    let m = mount(&a, tmp.path());
    let before = fs::read(m.0.join("f005")).unwrap();
    // Same length, the data of f005 changed, the mtime restored.
    let at = header_offset(&a, "f005") + 512;
    let mut bytes = fs::read(&a).unwrap();
    bytes[at..at + 100].iter_mut().for_each(|b| *b ^= 0xff);
    overwrite_keeping_mtime(&a, &bytes);
    // The kernel may keep pages it read; a new open reads again.
    let _ = Command::new("sh").arg("-c").arg("echo 1 > /proc/sys/vm/drop_caches").status();
    match fs::read(m.0.join("f005")) {
        Ok(got) => assert!(got == before, "the mount served bytes of a rewritten archive as the member's"),
        Err(e) => assert_eq!(e.raw_os_error(), Some(5), "{e}"),
    }
}

#[test]
fn no_command_answers_for_or_indexes_an_archive_whose_change_was_interrupted() {
    let tmp = TempDir::new().unwrap();
    let a = gnu_archive(tmp.path(), 200, 3000);
    // embed stopped after its journal and copy, before the head is written: a journal is left.
    let out = tarfs().arg("embed").arg(&a).env("TARFS_CRASH_AFTER", "embed-entries-synced").output().unwrap();
    assert_eq!(out.status.code(), Some(86), "{}", String::from_utf8_lossy(&out.stderr));
    let side = PathBuf::from(format!("{}.tarfs", a.display()));
    for args in [&["index", "-q"][..], &["verify"], &["ls"], &["cat"]] {
        let mut cmd = tarfs();
        cmd.args(args).arg(&a);
        if args[0] == "cat" {
            cmd.arg("f001");
        }
        let out = cmd.output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(err.contains("journal") && err.contains("tarfs recover"), "{args:?}: {err}");
    }
    assert!(!side.exists(), "index wrote a sidecar of the half-changed archive");
    // recover finishes or undoes it; then every command works.
    ok(tarfs().arg("recover").arg(&a));
    ok(tarfs().arg("index").arg(&a));
    ok(tarfs().arg("verify").arg(&a));
    assert_eq!(listing(&a).len(), 200);
}

#[test]
fn an_archive_truncated_while_a_batch_reads_it_fails_alone() {
    let tmp = TempDir::new().unwrap();
    let tree = tmp.path().join("tree");
    fs::create_dir(&tree).unwrap();
    // a.tar: 800 members of 10 KB, read through its mapping; b.tar and c.tar: small.
    for (name, n, size) in [("a", 800, 10_000), ("b", 5, 100), ("c", 5, 100)] {
        let dir = tmp.path().join(name);
        fs::create_dir(&dir).unwrap();
        let a = gnu_archive(&dir, n, size);
        fs::rename(&a, tree.join(format!("{name}.tar"))).unwrap();
    }
    let a = tree.join("a.tar");
    // Paused after a.tar is mapped and before it is read, then truncated to one page.
    let out = common::run_paused(tarfs().arg("index").arg("-j").arg("1").arg(&tree), "index-planned", || {
        fs::OpenOptions::new().write(true).open(&a).unwrap().set_len(4096).unwrap();
    });
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "the batch did not end on its own: {:?}: {err}", out.status);
    assert!(err.contains("a.tar") && err.contains("shrank"), "{err}");
    assert!(!tree.join("a.tar.tarfs").exists(), "an index of the truncated archive was written");
    for other in ["b", "c"] {
        ok(tarfs().arg("verify").arg(tree.join(format!("{other}.tar"))));
    }
}
