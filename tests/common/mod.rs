//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

pub mod trees;

use serde_json::Value;

/// `tests/corpus/`: the conformance corpus, vendored with its NOTICE of licences.
pub fn corpus_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    assert!(d.join("truth.jsonl").is_file(), "the corpus must be at {}", d.display());
    d
}

/// Every line of `truth.jsonl`.
pub fn truth() -> Vec<Value> {
    std::fs::read_to_string(corpus_dir().join("truth.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

use std::path::Path;
use std::process::{Command, Output};

/// The `tarfs` binary under test, kept from the developer's settings ([`isolated`]).
pub fn tarfs() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_tarfs"));
    isolated(&mut c);
    c
}

/// A path under a file: nothing can be read from it, nor created under it.
pub const NOWHERE: &str = "/dev/null/tarfs-tests";

/// Keeps `cmd` (tarfs, or a command that runs it) from the developer's settings: no config file
/// (`XDG_CONFIG_HOME`), no cache of sidecars (`XDG_CACHE_HOME` where none can be created, so
/// that a sidecar refused by an archive's directory fails as it would without one), and no
/// `TARFS_INDEX_DIR` or `TARFS_CONFIG`. Tests of those set them after this.
pub fn isolated(cmd: &mut Command) -> &mut Command {
    cmd.env("XDG_CONFIG_HOME", NOWHERE).env("XDG_CACHE_HOME", NOWHERE).env_remove("TARFS_INDEX_DIR").env_remove("TARFS_CONFIG")
}

/// Runs a command, panicking with its stderr if it fails.
pub fn ok(cmd: &mut Command) -> Output {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    assert!(out.status.success(), "{cmd:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    out
}

/// Python's view of an archive: one JSON object per member with name, offset, offset_data, size,
/// type and whether it is sparse.
pub fn python_members(archive: &Path) -> Vec<Value> {
    let script = r#"
import json, sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t:
        name = m.name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
        print(json.dumps({"name": name, "offset": m.offset, "offset_data": m.offset_data,
                          "size": m.size, "type": m.type.decode("latin-1"), "sparse": m.sparse is not None}))
"#;
    let out = ok(Command::new("python3").arg("-c").arg(script).arg(archive));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// `tarfs ls --json`.
pub fn tarfs_members(archive: &Path) -> Vec<Value> {
    let out = ok(tarfs().arg("ls").arg("--json").arg(archive));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

/// Writes `len` bytes of a deterministic pattern (seeded) to `path`.
pub fn write_pattern(path: &Path, len: usize, seed: u64) {
    let mut x = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
    let data: Vec<u8> = (0..len)
        .map(|_| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as u8
        })
        .collect();
    std::fs::write(path, data).unwrap();
}

/// Writes `path` back and drops its pages from the page cache (dirty pages cannot be dropped),
/// checking that they are gone at 16 places (`RWF_NOWAIT` reads only from the cache). It asks
/// again until they are: pages still in a CPU's batch of newly cached pages are not dropped
/// (seen here: the first request left the file cached, the second or third dropped it).
pub fn drop_pages(path: &std::path::Path) {
    let script = "import os, sys, time\nfd = os.open(sys.argv[1], os.O_RDONLY)\nos.fsync(fd)\nn = os.fstat(fd).st_size\ndef cached():\n    for i in range(16):\n        try:\n            os.preadv(fd, [bytearray(1)], n * i // 16, os.RWF_NOWAIT)\n            return True\n        except BlockingIOError:\n            pass\n    return False\nfor _ in range(200):\n    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)\n    if not cached():\n        sys.exit(0)\n    time.sleep(0.02)\nsys.exit('the page cache kept ' + sys.argv[1])\n";
    ok(std::process::Command::new("python3").arg("-c").arg(script).arg(path));
}

/// Runs `cmd` with `TARFS_PAUSE_AFTER=step` (see `docs/ARCHITECTURE.md`): once it says on stderr
/// that it is paused there, calls `change`, lets it go on (it waits at later passes through the
/// step no more), and returns its output, its stderr whole. Panics if it never paused.
pub fn run_paused(cmd: &mut Command, step: &str, change: impl FnOnce()) -> Output {
    use std::io::{BufRead, Read};
    let dir = tempfile::tempdir().unwrap();
    let resume = dir.path().join("resume");
    cmd.env("TARFS_PAUSE_AFTER", step).env("TARFS_RESUME", &resume);
    cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    let mut err = std::io::BufReader::new(child.stderr.take().unwrap());
    let mut before = String::new();
    let paused = format!("TARFS_PAUSE_AFTER={step}: paused");
    while !before.contains(&paused) {
        let n = err.read_line(&mut before).unwrap();
        if n == 0 {
            let out = child.wait_with_output().unwrap();
            panic!("{cmd:?} never paused at {step}: {:?}: {before}", out.status);
        }
    }
    change();
    std::fs::write(&resume, b"").unwrap();
    let rest = std::thread::spawn(move || {
        let mut s = String::new();
        err.read_to_string(&mut s).map(|_| s).unwrap()
    });
    let mut out = child.wait_with_output().unwrap();
    out.stderr = (before + &rest.join().unwrap()).into_bytes();
    out
}

/// The bytes of a `.tarfs` index without what binds it to its archive file (its header block,
/// which holds the file's stamp, and the extension's header, which holds the header block's
/// hash): an index read from a stream, which has no file to bind, is otherwise the same bytes
/// as the file's.
pub fn unbound_index(bytes: &[u8]) -> Vec<u8> {
    let mut b = bytes.to_vec();
    if b.len() >= 1024 && &b[11..15] == b"v2.0" {
        // v2: the header block, and the CRCs in the body's head that bind it to the body.
        b[..512].fill(0);
        b[512 + 144..512 + 148].fill(0);
        b[512 + 252..512 + 256].fill(0);
        return b;
    }
    if b.len() >= 512 {
        let n = u64::from_be_bytes(b[72..80].try_into().unwrap()) as usize;
        b[..512].fill(0);
        if let Some(ext) = b.get_mut((n + 2) * 512..(n + 3) * 512) {
            if ext.starts_with(b"TFSE") {
                ext.fill(0);
            }
        }
    }
    b
}

/// A small fixed-seed generator (SplitMix64), for the mutation campaigns.
pub struct Rng(pub u64);

impl Rng {
    /// The next value.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A value below `n`.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Renames the member whose header is at byte `at` of `bytes` (its first letter becomes `X`),
/// with its checksum recomputed: a valid header, but not the one an index recorded.
pub fn rename_header(bytes: &mut [u8], at: usize) {
    let h = &mut bytes[at..at + 512];
    h[0] = b'X';
    h[148..156].fill(b' ');
    let sum: u32 = h.iter().map(|&b| u32::from(b)).sum();
    h[148..156].copy_from_slice(format!("{sum:06o}\0 ").as_bytes());
}

/// A ustar header (mode 0644, a fixed mtime) with the checksum set.
pub fn header(name: &str, typeflag: u8, size: u64, link: &str) -> [u8; 512] {
    tarfs::format::header::UstarFields { path: name.as_bytes(), link: link.as_bytes(), mode: 0o644, size, mtime: 1_700_000_000, typeflag, ..Default::default() }.encode()
}

/// Runs a command: its exit code and its stderr.
pub fn run(cmd: &mut Command) -> (Option<i32>, String) {
    let out = cmd.output().unwrap_or_else(|e| panic!("{cmd:?}: {e}"));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}

/// `TOOL -tf ARCHIVE` (GNU tar and bsdtar decompress by themselves): its lines.
pub fn listing(tool: &str, archive: &Path) -> Vec<String> {
    let out = ok(Command::new(tool).arg("-tf").arg(archive));
    String::from_utf8_lossy(&out.stdout).lines().map(str::to_string).collect()
}

/// `DIR/NAME.tar`, written by GNU tar in `format` (`gnu`, `pax`, ...) with its names sorted, of
/// `n` files made in `DIR/NAME-src` (members `./FILE`): file `i` is named, sized and seeded (see
/// [`write_pattern`]) as `file(i)` says.
pub fn gnu_archive(dir: &Path, name: &str, format: &str, n: usize, file: impl Fn(usize) -> (String, usize, u64)) -> PathBuf {
    let src = dir.join(format!("{name}-src"));
    std::fs::create_dir_all(&src).unwrap();
    for i in 0..n {
        let (f, len, seed) = file(i);
        write_pattern(&src.join(f), len, seed);
    }
    let a = dir.join(format!("{name}.tar"));
    ok(Command::new("tar").arg(format!("--format={format}")).arg("--sort=name").arg("-cf").arg(&a).arg("-C").arg(&src).arg("."));
    a
}

/// A directory that refuses new files, filled by `fill` first. As root, whom `chmod` does not
/// stop, a tmpfs mounted there and remounted read-only (`EROFS`); otherwise `chmod -R a-w`
/// (`EACCES`). Unmounted, or made writable again, when dropped.
pub struct ReadOnlyDir {
    pub path: PathBuf,
    /// Whether it is a read-only mount (else a directory without write permission).
    pub mounted: bool,
}

impl ReadOnlyDir {
    pub fn new(path: &Path, fill: impl FnOnce(&Path)) -> ReadOnlyDir {
        std::fs::create_dir_all(path).unwrap();
        let root = rustix::process::geteuid().is_root();
        let mounted = root && Command::new("mount").args(["-t", "tmpfs", "-o", "size=64m", "tarfs-test"]).arg(path).status().is_ok_and(|s| s.success());
        if root && !mounted {
            eprintln!("note: root cannot mount a tmpfs here: {} is made read-only with chmod, which tarfs honours for root too", path.display());
        }
        let dir = ReadOnlyDir { path: path.to_path_buf(), mounted };
        fill(path);
        if mounted {
            ok(Command::new("mount").args(["-o", "remount,ro"]).arg(path));
        } else {
            ok(Command::new("chmod").args(["-R", "a-w"]).arg(path));
        }
        dir
    }
}

impl Drop for ReadOnlyDir {
    fn drop(&mut self) {
        if self.mounted {
            let _ = Command::new("umount").arg(&self.path).status();
        } else {
            let _ = Command::new("chmod").args(["-R", "u+w"]).arg(&self.path).status();
        }
    }
}
pub mod synthetic;
pub mod s3;

/// A `git archive` tarball (a pax global header with the commit) of a small repository made in
/// `dir`: a C file under `src/`, a README and a symbolic link. Returns `dir/git.tar`.
pub fn git_archive(dir: &Path) -> PathBuf {
    let repo = dir.join("repo");
    std::fs::create_dir_all(repo.join("src")).unwrap();
    std::fs::write(repo.join("src/main.c"), "int main(void) { return 0; }\n").unwrap();
    std::fs::write(repo.join("README"), "hello\n").unwrap();
    std::os::unix::fs::symlink("src/main.c", repo.join("link")).unwrap();
    let git = |args: &[&str]| ok(Command::new("git").arg("-C").arg(&repo).args(args).env("GIT_AUTHOR_NAME", "t").env("GIT_AUTHOR_EMAIL", "t@t").env("GIT_COMMITTER_NAME", "t").env("GIT_COMMITTER_EMAIL", "t@t"));
    git(&["init", "-q"]);
    git(&["add", "."]);
    git(&["commit", "-q", "-m", "one"]);
    let ga = dir.join("git.tar");
    git(&["archive", "--format=tar", "-o", ga.to_str().unwrap(), "HEAD"]);
    ga
}
