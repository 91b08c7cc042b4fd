//! Power cuts, simulated from a trace (issue #29, findings 18-20).
//!
//! SIGKILL keeps the page cache; a power cut does not. Each test here traces a command with
//! `strace`, keeps what it did to the archive (`pwrite64`, `ftruncate`, `fsetxattr`,
//! `fremovexattr`) and its barriers (`fsync`, `fdatasync`, `syncfs`), and builds the states a
//! power cut could leave before each barrier returns and at the end: what an earlier barrier
//! covered is kept (`fdatasync` does not cover an extended attribute), and of the rest, nothing,
//! everything, each operation alone, or all but each one. Each state is written into the
//! archive's own inode (the journal names it), the journal put back, and `tarfs recover` run:
//! the archive must come back byte for byte.
//!
//! The findings: a rollback that zeroed the old end (where `embed`'s copy of the displaced
//! members lies) in the same batch as the restores from that copy (18); a hard-linked archive
//! whose journal pointer (`user.tarfs.journal`) was not durable before the first write, so that
//! recovery through the other name found nothing (19); temporary files that killed runs left
//! and nothing removed (20).

mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, tarfs, write_pattern};
use tempfile::TempDir;

const XATTR: &str = "user.tarfs.journal";

/// What a traced command did to the archive.
#[derive(Debug, Clone)]
enum Op {
    Write(u64, Vec<u8>),
    Truncate(u64),
    SetXattr(Vec<u8>),
    RemoveXattr,
    /// `fsync`/`syncfs` (`all`), or `fdatasync` (data only).
    Barrier { all: bool },
}

/// A GNU tar archive whose first member is `first` bytes (displaced by `embed`), then `n` small
/// files.
fn archive(dir: &Path, first: usize, n: usize) -> PathBuf {
    let src = dir.join("src");
    fs::create_dir_all(&src).unwrap();
    write_pattern(&src.join("a-first"), first, 1);
    for i in 0..n {
        write_pattern(&src.join(format!("f{i:03}")), 100 + i * 37, i as u64 + 2);
    }
    let a = dir.join("a.tar");
    ok(Command::new("tar").args(["--format=gnu", "--sort=name", "-cf"]).arg(&a).arg("-C").arg(&src).arg("."));
    fs::remove_dir_all(&src).unwrap();
    a
}

/// The bytes of a strace `-xx` string (`\xNN` escapes only).
fn unhex(s: &str) -> Vec<u8> {
    s.split("\\x").skip(1).map(|h| u8::from_str_radix(h, 16).unwrap()).collect()
}

/// The archive operation of one strace line, if it is one on a file named in `names`.
fn parse(line: &str, names: &[String]) -> Option<Op> {
    let line = line.trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ');
    let (call, rest) = line.split_once('(')?;
    if call == "syncfs" {
        return Some(Op::Barrier { all: true });
    }
    let (fd, rest) = rest.split_once('>')?;
    // `-xx` prints the descriptor's path in hex too.
    let path = String::from_utf8(unhex(fd.split_once('<')?.1)).ok()?;
    if !names.iter().any(|n| *n == path) {
        return None;
    }
    let num = |s: &str| s.trim_start().chars().take_while(char::is_ascii_digit).collect::<String>().parse::<u64>().unwrap();
    match call {
        "pwrite64" => {
            let (_, data) = rest.split_once('"')?;
            let (data, tail) = data.split_once('"')?;
            let off = tail.split(',').nth(2).map(num)?;
            Some(Op::Write(off, unhex(data)))
        }
        "ftruncate" => Some(Op::Truncate(num(rest.trim_start_matches(", ")))),
        "fsync" => Some(Op::Barrier { all: true }),
        "fdatasync" => Some(Op::Barrier { all: false }),
        "fsetxattr" => {
            let value = rest.split('"').nth(3)?;
            Some(Op::SetXattr(unhex(value)))
        }
        "fremovexattr" => Some(Op::RemoveXattr),
        "write" | "pwritev" | "pwritev2" | "writev" => panic!("an unmodelled write to the archive: {line}"),
        _ => None,
    }
}

/// Runs `cmd` under strace; the operations on the archive (any of `names`), in order.
fn traced(cmd: &Command, names: &[&Path], log: &Path) -> (Option<i32>, Vec<Op>) {
    let names: Vec<String> = names.iter().map(|n| fs::canonicalize(n).unwrap().display().to_string()).collect();
    let mut st = Command::new("strace");
    st.args(["-f", "-y", "-xx", "-s", "100000000", "-o"]).arg(log);
    st.args(["-e", "trace=pwrite64,write,writev,pwritev,pwritev2,ftruncate,fsync,fdatasync,syncfs,fsetxattr,fremovexattr"]);
    st.arg(cmd.get_program()).args(cmd.get_args());
    for (k, v) in cmd.get_envs() {
        match v {
            Some(v) => st.env(k, v),
            None => st.env_remove(k),
        };
    }
    let out = st.output().unwrap();
    let text = fs::read_to_string(log).unwrap();
    let ops = text.lines().filter(|l| !l.contains("resumed>")).filter_map(|l| parse(l, &names)).collect();
    (out.status.code(), ops)
}

/// The states a power cut can leave: for each cut (before each barrier returns, and at the
/// end), the indices of the operations kept.
fn states(ops: &[Op]) -> Vec<Vec<usize>> {
    let mut cuts: Vec<usize> = ops.iter().enumerate().filter(|(_, o)| matches!(o, Op::Barrier { .. })).map(|(i, _)| i).collect();
    cuts.push(ops.len());
    let mut out = Vec::new();
    for cut in cuts {
        let covered = |i: usize| {
            ops[i + 1..cut].iter().any(|b| match b {
                Op::Barrier { all } => *all || matches!(ops[i], Op::Write(..) | Op::Truncate(_)),
                _ => false,
            })
        };
        let (durable, pending): (Vec<usize>, Vec<usize>) = (0..cut).filter(|&i| !matches!(ops[i], Op::Barrier { .. })).partition(|&i| covered(i));
        let mut choices = vec![Vec::new(), pending.clone()];
        for &p in &pending {
            choices.push(vec![p]);
            choices.push(pending.iter().copied().filter(|&q| q != p).collect());
        }
        for c in choices {
            let mut kept: Vec<usize> = durable.iter().chain(&c).copied().collect();
            kept.sort();
            out.push(kept);
        }
    }
    out.sort();
    out.dedup();
    out
}

/// Writes the state `kept` of `ops` over `start` (bytes, xattr) into the archive at `a`, in place.
fn materialize(a: &Path, start: &(Vec<u8>, Option<Vec<u8>>), ops: &[Op], kept: &[usize]) {
    let (mut bytes, mut xattr) = start.clone();
    for &i in kept {
        match &ops[i] {
            Op::Write(at, data) => {
                let end = *at as usize + data.len();
                if bytes.len() < end {
                    bytes.resize(end, 0);
                }
                bytes[*at as usize..end].copy_from_slice(data);
            }
            Op::Truncate(len) => bytes.resize(*len as usize, 0),
            Op::SetXattr(v) => xattr = Some(v.clone()),
            Op::RemoveXattr => xattr = None,
            Op::Barrier { .. } => {}
        }
    }
    fs::OpenOptions::new().write(true).truncate(true).open(a).and_then(|mut f| std::io::Write::write_all(&mut f, &bytes)).unwrap();
    match xattr {
        Some(v) => rustix::fs::setxattr(a, XATTR, &v, rustix::fs::XattrFlags::empty()).unwrap(),
        None => {
            let _ = rustix::fs::removexattr(a, XATTR);
        }
    }
}

/// The bytes and journal pointer of the archive at `a`.
fn snapshot(a: &Path) -> (Vec<u8>, Option<Vec<u8>>) {
    let mut buf = vec![0u8; 4096];
    let x = rustix::fs::getxattr(a, XATTR, &mut buf).ok().map(|n| buf[..n].to_vec());
    (fs::read(a).unwrap(), x)
}

/// The journal of the archive at `a` (in `dir`, named after its inode).
fn journal_of(a: &Path, dir: &Path) -> PathBuf {
    let m = fs::metadata(a).unwrap();
    dir.join(format!(".tarfs-journal-{:x}-{:x}", m.dev(), m.ino()))
}

/// Every power-cut state of `ops` over `start`, recovered through `via`: the archive must come
/// back as `original`. Returns the states that did not, described.
fn recover_every_state(a: &Path, via: &Path, start: &(Vec<u8>, Option<Vec<u8>>), ops: &[Op], journal: &(PathBuf, Vec<u8>), original: &[u8]) -> Vec<String> {
    let mut bad = Vec::new();
    let all = states(ops);
    assert!(all.len() > 2, "too few states: {ops:?}");
    for kept in all {
        materialize(a, start, ops, &kept);
        fs::write(&journal.0, &journal.1).unwrap();
        let out = tarfs().arg("recover").arg(via).output().unwrap();
        if fs::read(a).unwrap() != original {
            let what: Vec<String> = kept.iter().map(|&i| match &ops[i] {
                Op::Write(at, d) => format!("write @{at}+{}", d.len()),
                o => format!("{o:?}"),
            }).collect();
            bad.push(format!("kept [{}]: recover exit {:?}: {}", what.join(", "), out.status.code(), String::from_utf8_lossy(&out.stderr).trim()));
        }
    }
    bad
}

#[test]
fn a_power_cut_during_rollback_never_loses_the_displaced_members() {
    let tmp = TempDir::new().unwrap();
    let a = archive(tmp.path(), 300_000, 40);
    let original = fs::read(&a).unwrap();
    // An embed stopped with the head overwritten: the displaced members live only in the copy.
    let out = tarfs().arg("embed").arg(&a).env("TARFS_CRASH_AFTER", "embed-entries-synced").output().unwrap();
    assert_eq!(out.status.code(), Some(86), "{}", String::from_utf8_lossy(&out.stderr));
    let start = snapshot(&a);
    let jp = journal_of(&a, tmp.path());
    let journal = (jp.clone(), fs::read(&jp).unwrap());
    let (code, ops) = traced(tarfs().arg("recover").arg(&a), &[&a], &tmp.path().join("trace"));
    assert_eq!(code, Some(0));
    assert_eq!(fs::read(&a).unwrap(), original, "the traced recovery itself");
    let bad = recover_every_state(&a, &a, &start, &ops, &journal, &original);
    assert!(bad.is_empty(), "{} power-cut states of the rollback lose the archive:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn a_rollback_stopped_after_the_restores_from_the_copy_is_finished_by_the_next() {
    let tmp = TempDir::new().unwrap();
    let a = archive(tmp.path(), 300_000, 40);
    let original = fs::read(&a).unwrap();
    let out = tarfs().arg("embed").arg(&a).env("TARFS_CRASH_AFTER", "embed-entries-synced").output().unwrap();
    assert_eq!(out.status.code(), Some(86));
    let out = tarfs().arg("recover").arg(&a).env("TARFS_CRASH_AFTER", "rollback-copy-restored").output().unwrap();
    assert_eq!(out.status.code(), Some(86), "{}", String::from_utf8_lossy(&out.stderr));
    // The head is back, the copy is still there past the original end.
    let now = fs::read(&a).unwrap();
    assert!(now.len() > original.len() && now[..1024] == original[..1024]);
    let out = tarfs().arg("recover").arg(&a).output().unwrap();
    assert!(String::from_utf8_lossy(&out.stdout).contains("rolled back"), "{}", String::from_utf8_lossy(&out.stdout));
    assert_eq!(fs::read(&a).unwrap(), original);
    assert!(!journal_of(&a, tmp.path()).exists());
}

#[test]
fn a_power_cut_during_embed_of_a_hard_link_is_recovered_through_the_other_name() {
    let tmp = TempDir::new().unwrap();
    let (da, db) = (tmp.path().join("a"), tmp.path().join("b"));
    fs::create_dir_all(&da).unwrap();
    fs::create_dir_all(&db).unwrap();
    let a = archive(&da, 300_000, 40);
    let b = db.join("a.tar");
    fs::hard_link(&a, &b).unwrap();
    let original = fs::read(&a).unwrap();
    let start = snapshot(&a);
    assert_eq!(start.1, None);
    // Stopped after the copy and the new header: the journal (in b/) stays, for every state.
    let mut cmd = tarfs();
    cmd.arg("embed").arg(&b).env("TARFS_CRASH_AFTER", "embed-header-written");
    let (code, ops) = traced(&cmd, &[&a, &b], &tmp.path().join("trace"));
    assert_eq!(code, Some(86));
    assert!(ops.iter().any(|o| matches!(o, Op::SetXattr(_))), "this file system takes no user xattrs: {ops:?}");
    let jp = journal_of(&b, &db);
    let journal = (jp.clone(), fs::read(&jp).unwrap());
    let bad = recover_every_state(&a, &a, &start, &ops, &journal, &original);
    assert!(bad.is_empty(), "{} power-cut states are not recovered through the other name:\n{}", bad.len(), bad.join("\n"));
}

#[test]
fn recover_removes_temporary_files_that_killed_runs_left_and_no_held_one() {
    let tmp = TempDir::new().unwrap();
    let a = archive(tmp.path(), 3000, 5);
    // A `tarfs index` killed before its rename leaves the sidecar's temporary file.
    let out = Command::new("strace")
        .args(["-f", "-o", "/dev/null", "-e", "trace=rename,renameat,renameat2", "-e", "inject=rename,renameat,renameat2:signal=KILL"])
        .arg(env!("CARGO_BIN_EXE_tarfs"))
        .arg("index")
        .arg(&a)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let sidecar_tmp = tmp.path().join(".a.tar.tarfs.tarfs-tmp");
    assert!(sidecar_tmp.exists(), "the killed index left no temporary file");
    // A journal's, as a killed `embed` would leave it.
    let m = fs::metadata(&a).unwrap();
    let journal_tmp = tmp.path().join(format!("..tarfs-journal-{:x}-{:x}.tarfs-tmp", m.dev(), m.ino()));
    fs::write(&journal_tmp, b"TFSJ\x02 half").unwrap();
    // The archive's own (a `recompress` writing it), held by a live process.
    let held = tmp.path().join(".a.tar.tarfs-tmp");
    fs::write(&held, b"being written").unwrap();
    // A compressed archive's, as a killed `recompress` leaves it: found by the default globs.
    ok(Command::new("zstd").arg("-q").arg(&a).arg("-o").arg(tmp.path().join("p.tar.zst")));
    let zst_tmp = tmp.path().join(".p.tar.zst.tarfs-tmp");
    fs::write(&zst_tmp, b"(zstd frames)").unwrap();
    let mut holder = Command::new("flock").arg(&held).args(["sleep", "60"]).spawn().unwrap();
    let locked = (0..100).any(|_| {
        std::thread::sleep(std::time::Duration::from_millis(20));
        !Command::new("flock").args(["-n"]).arg(&held).arg("true").status().unwrap().success()
    });
    assert!(locked, "the holder did not take the lock");
    // -v: what recover did to archives it left as they were is said on a terminal or with -v.
    let out = tarfs().arg("-v").arg("recover").arg(tmp.path()).output().unwrap();
    let _ = holder.kill();
    let _ = holder.wait();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{said}{}", String::from_utf8_lossy(&out.stderr));
    assert!(!sidecar_tmp.exists() && !journal_tmp.exists() && !zst_tmp.exists(), "{said}");
    assert!(said.contains("p.tar.zst: nothing to recover (compressed); removed 1 temporary file left by a killed run"), "{said}");
    assert!(held.exists(), "a temporary file a live process holds was removed");
    assert!(said.contains("removed 2 temporary files left by a killed run") && said.contains(".a.tar.tarfs.tarfs-tmp") && !said.contains("/.a.tar.tarfs-tmp"), "{said}");
    // Nothing left to remove: the next recover says nothing of it.
    let out = tarfs().arg("recover").arg(&a).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains("removed"));
    assert!(held.exists());
}
