//! Batches over archive directories: discovery, idempotence, reports, exit codes, progress, and
//! read-only media.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{isolated, ok, tarfs};
use serde_json::Value;
use tarfs::builder::{Builder, MemberOptions};
use tempfile::TempDir;

/// A tree of 210 good archives in nested directories (builder ustar/pax, GNU tar gnu/posix/v7),
/// 3 corrupt ones, a symlink to an archive, and a read-only subdirectory with 2 archives.
fn store(root: &Path) -> (usize, usize) {
    let mut good = 0;
    for d in 0..7 {
        let dir = root.join(format!("d{d}/sub{}", d % 3));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..30 {
            let mut b = Builder::new(Vec::new());
            for m in 0..(i % 7 + 1) {
                let name = if m == 3 { format!("long/{}/{m}", "n".repeat(150)) } else { format!("f{m}.txt") };
                b.add_with(name, &vec![b'a' + m as u8; m * 300], &MemberOptions { mtime: 1_600_000_000, ..Default::default() }).unwrap();
            }
            fs::write(dir.join(format!("a{i:02}.tar")), b.finish().unwrap()).unwrap();
            good += 1;
        }
    }
    let src = root.join("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("x"), b"x").unwrap();
    for f in ["gnu", "posix", "v7"] {
        ok(Command::new("tar").arg(format!("--format={f}")).arg("-C").arg(&src).arg("-cf").arg(root.join(format!("d0/{f}.tar"))).arg("x"));
        good += 1;
    }
    // A compressed archive, indexed by a sidecar.
    ok(Command::new("tar").arg("-czf").arg(root.join("d5/sub2/z.tar.gz")).arg("-C").arg(&src).arg("x"));
    good += 1;
    fs::remove_dir_all(&src).unwrap();
    for (i, bytes) in [vec![b'z'; 512], vec![7u8; 2000], vec![0xffu8; 1024]].into_iter().enumerate() {
        fs::write(root.join(format!("d1/bad{i}.tar")), bytes).unwrap();
    }
    symlink(root.join("d0/gnu.tar"), root.join("d2/link.tar")).unwrap();
    let ro = root.join("readonly");
    fs::create_dir_all(&ro).unwrap();
    for i in 0..2 {
        let mut b = Builder::new(Vec::new());
        b.add("r", b"read-only").unwrap();
        fs::write(ro.join(format!("r{i}.tar")), b.finish().unwrap()).unwrap();
    }
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o555)).unwrap();
    (good, 3 + 2)
}

/// Runs a batch with `--json`: its exit status, its archive records, and its stderr. The last
/// record must be the summary, and agree with the archive records.
fn json_run(args: &[&str], root: &Path) -> (Option<i32>, Vec<Value>, String) {
    let out = tarfs().args(args).arg("--json").arg(root).output().unwrap();
    let mut records: Vec<Value> = String::from_utf8(out.stdout).unwrap().lines().map(|l| serde_json::from_str(l).expect("a JSON record")).collect();
    let summary = records.pop().expect("a summary record");
    assert_eq!(summary["type"], "summary", "{summary}");
    assert_eq!(summary["command"], args[0]);
    assert_eq!(summary["dry_run"], args.contains(&"--dry-run"));
    assert!(records.iter().all(|r| r["type"] == "archive"), "{records:?}");
    for (action, n) in actions(&records) {
        assert_eq!(summary[action.as_str()].as_u64(), Some(n as u64), "{action} in {summary}");
    }
    // Members where they were counted (not in a dry run of a compressed archive, nor a failure).
    let members: u64 = records.iter().filter_map(|r| r["members"].as_u64()).sum();
    assert_eq!(summary["members"].as_u64(), Some(members));
    (out.status.code(), records, String::from_utf8(out.stderr).unwrap())
}

fn actions(records: &[Value]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for r in records {
        *m.entry(r["action"].as_str().unwrap().to_string()).or_default() += 1;
    }
    m
}

#[test]
fn first_second_and_third_runs() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("store");
    let (good, bad) = store(&root);

    let (code, recs, err) = json_run(&["index"], &root);
    assert_eq!(code, Some(1), "{err}");
    assert_eq!(recs.len(), good + bad, "one record per archive, the symlink not followed");
    assert_eq!(actions(&recs).get("indexed"), Some(&good));
    assert_eq!(actions(&recs).get("failed"), Some(&bad));
    for r in recs.iter().filter(|r| r["action"] == "failed") {
        let path = r["path"].as_str().unwrap();
        assert!(path.contains("bad") || path.contains("readonly"), "{r}");
        assert!(r["error"]["message"].as_str().unwrap().contains(path), "{r}");
        if path.contains("bad") {
            assert_eq!(r["error"]["offset"], 0, "{r}");
        }
    }
    for r in recs.iter().filter(|r| r["action"] == "indexed") {
        assert!(Path::new(r["index_path"].as_str().unwrap()).is_file());
        assert!(r["members"].as_u64().unwrap() >= 1 && r["seconds"].as_f64().is_some() && r["bytes"].as_u64().unwrap() > 0);
    }
    let mut paths: Vec<&str> = recs.iter().map(|r| r["path"].as_str().unwrap()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), recs.len(), "one record per archive, as each finishes");
    assert!(err.contains(&format!("index: {good} indexed, {bad} failed")), "{err}");
    assert!(!root.join("d2/link.tar.tarfs").exists());
    assert!(root.join("d5/sub2/z.tar.gz.tarfs").is_file(), "the compressed archive has its sidecar");

    // Second run: everything fresh is skipped.
    let (code, recs, _) = json_run(&["index"], &root);
    assert_eq!(code, Some(1));
    assert_eq!(actions(&recs).get("skipped"), Some(&good));
    assert_eq!(actions(&recs).get("indexed"), None);

    // Third run, after a member is appended to one archive: only that one is rebuilt.
    let changed = root.join("d3/sub0/a05.tar");
    fs::write(tmp.path().join("new.txt"), b"appended").unwrap();
    ok(Command::new("tar").arg("-rf").arg(&changed).arg("-C").arg(tmp.path()).arg("new.txt"));
    let (_, recs, _) = json_run(&["index"], &root);
    let rebuilt: Vec<&Value> = recs.iter().filter(|r| r["action"] == "indexed").collect();
    assert_eq!(rebuilt.len(), 1, "{rebuilt:?}");
    assert_eq!(rebuilt[0]["path"], changed.to_str().unwrap());
    assert!(rebuilt[0]["reason"].as_str().unwrap().contains("stale"), "{}", rebuilt[0]);
    assert_eq!(ok(tarfs().arg("cat").arg(&changed).arg("new.txt")).stdout, b"appended");

    // A corrupt sidecar is rebuilt and said to be; --force rebuilds everything; --dry-run writes nothing.
    let side = root.join("d4/sub1/a00.tar.tarfs");
    let mut b = fs::read(&side).unwrap();
    b[700] ^= 1;
    fs::write(&side, &b).unwrap();
    let (_, recs, _) = json_run(&["index", "--dry-run"], &root);
    assert_eq!(actions(&recs).get("indexed"), None, "a dry run indexes nothing");
    let would: Vec<&Value> = recs.iter().filter(|r| r["action"] == "would_index" && !r["path"].as_str().unwrap().contains("readonly")).collect();
    assert_eq!(would.len(), 1, "{would:?}");
    assert_eq!(recs.iter().filter(|r| r["action"] == "failed").count(), 3, "the corrupt archives fail in a dry run too");
    // The action says it is a dry run; the reason says why (issue #30, item 15: it said "dry run"
    // twice).
    assert!(would[0]["reason"].as_str().unwrap().contains("corrupt") && !would[0]["reason"].as_str().unwrap().contains("dry run"), "{would:?}");
    assert_eq!(fs::read(&side).unwrap(), b, "dry run wrote");
    let (_, recs, _) = json_run(&["index"], &root);
    assert_eq!(recs.iter().filter(|r| r["action"] == "indexed").count(), 1);
    let (_, recs, _) = json_run(&["index", "--force", "-j", "1"], &root);
    assert_eq!(actions(&recs).get("indexed"), Some(&good));

    // -L follows the symlink.
    let (_, recs, _) = json_run(&["index", "-L"], &root);
    assert!(recs.iter().any(|r| r["path"].as_str().unwrap().ends_with("d2/link.tar")));

    // verify is a batch tool too.
    let (code, recs, _) = json_run(&["verify"], &root);
    assert_eq!(code, Some(1));
    assert!(actions(&recs).get("verified").unwrap() >= &good);

    fs::set_permissions(root.join("readonly"), fs::Permissions::from_mode(0o755)).unwrap();
}

/// Every file under `root`: its length, mode and mtime, and a checksum.
fn snapshot(root: &Path) -> BTreeMap<PathBuf, (u64, u32, i64, u64)> {
    walkdir::WalkDir::new(root)
        .into_iter()
        .map(|e| e.unwrap())
        .map(|e| {
            let m = fs::symlink_metadata(e.path()).unwrap();
            let sum = if m.is_file() { fs::read(e.path()).unwrap().iter().map(|&b| u64::from(b)).sum() } else { 0 };
            (e.path().to_path_buf(), (m.len(), m.mode(), m.mtime(), sum))
        })
        .collect()
}

#[test]
fn index_dir_for_a_read_only_tree() {
    let tmp = TempDir::new().unwrap();
    let tree = tmp.path().join("tape");
    let (good, _) = store(&tree);
    for bad in 0..3 {
        fs::remove_file(tree.join(format!("d1/bad{bad}.tar"))).unwrap();
    }
    ok(Command::new("chmod").arg("-R").arg("a-w").arg(&tree));
    let before = snapshot(&tree);
    let idx = tmp.path().join("idx");
    let (code, recs, err) = json_run(&["index", "--index-dir", idx.to_str().unwrap()], &tree);
    let not_indexed: Vec<&Value> = recs.iter().filter(|r| r["action"] != "indexed").collect();
    assert_eq!(code, Some(0), "{err} {not_indexed:?}");
    assert_eq!(actions(&recs).get("indexed"), Some(&(good + 2)), "{} records, {:?}", recs.len(), actions(&recs));
    let mirror = idx.join(fs::canonicalize(&tree).unwrap().strip_prefix("/").unwrap());
    assert!(mirror.join("d0/sub0/a00.tar.tarfs").is_file() && mirror.join("readonly/r0.tar.tarfs").is_file());
    assert_eq!(snapshot(&tree), before, "the read-only tree changed");
    let (code, recs, _) = json_run(&["verify", "--index-dir", idx.to_str().unwrap()], &tree);
    assert_eq!(code, Some(0));
    assert_eq!(actions(&recs).get("verified"), Some(&(good + 2)));
    let (_, recs, _) = json_run(&["index", "--index-dir", idx.to_str().unwrap()], &tree);
    assert_eq!(actions(&recs).get("skipped"), Some(&(good + 2)));
    ok(Command::new("chmod").arg("-R").arg("u+w").arg(&tree));
}

#[test]
fn progress_on_a_terminal_only() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("store");
    store(&root);
    // Under a pty (script), the bar is drawn.
    let cmd = format!("{} index --force {}", env!("CARGO_BIN_EXE_tarfs"), root.display());
    let out = isolated(Command::new("script").arg("-qfec").arg(&cmd).arg("/dev/null")).stdin(Stdio::null()).output().unwrap();
    let tty = String::from_utf8_lossy(&out.stdout);
    assert!(tty.contains("archives") && tty.contains('\u{1b}'), "no progress bar on a pty: {tty:?}");
    // With stderr to a file: the summary and the errors, no escape codes.
    let log = tmp.path().join("log");
    let f = fs::File::create(&log).unwrap();
    let status = tarfs().arg("index").arg("--force").arg(&root).stderr(f).stdout(Stdio::null()).status().unwrap();
    assert_eq!(status.code(), Some(1));
    let text = fs::read_to_string(&log).unwrap();
    assert!(!text.contains('\u{1b}'), "escape codes in {text:?}");
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines.last().unwrap().starts_with("tarfs: index: "), "{text}");
    assert!(lines[..lines.len() - 1].iter().all(|l| l.contains("bad") || l.contains("readonly")), "{text}");
    // --quiet: errors only.
    let out = tarfs().arg("index").arg("-q").arg(&root).output().unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("tarfs: index:"));
    fs::set_permissions(root.join("readonly"), fs::Permissions::from_mode(0o755)).unwrap();
}

#[test]
fn fail_fast_stops_starting_archives() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("s");
    fs::create_dir_all(&root).unwrap();
    fs::write(root.join("a-bad.tar"), vec![b'q'; 4096 * 64]).unwrap();
    for i in 0..50 {
        fs::write(root.join(format!("b{i:02}.tar")), Builder::new(Vec::new()).finish().unwrap()).unwrap();
    }
    let (code, recs, err) = json_run(&["index", "--fail-fast", "-j", "1"], &root);
    assert_eq!(code, Some(1));
    assert_eq!(recs.len(), 1, "only the failure ran (it is the largest, so first)");
    assert!(err.contains("50 not started"), "{err}");
}

#[test]
fn sigint_leaves_no_temporary_files() {
    let tmp = TempDir::new().unwrap();
    let root = tmp.path().join("s");
    fs::create_dir_all(&root).unwrap();
    for i in 0..40 {
        let mut b = Builder::new(Vec::new());
        for m in 0..2000 {
            b.add(format!("m{m}"), b"").unwrap();
        }
        fs::write(root.join(format!("a{i:02}.tar")), b.finish().unwrap()).unwrap();
    }
    let child = tarfs().arg("index").arg("-j").arg("1").arg(&root).stderr(Stdio::piped()).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(30));
    let _ = Command::new("kill").arg("-INT").arg(child.id().to_string()).status();
    let out = child.wait_with_output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    // Either it was interrupted (130) or it had already finished (0); never a torn state.
    assert!(matches!(out.status.code(), Some(130) | Some(0)), "{:?} {err}", out.status);
    if out.status.code() == Some(130) {
        assert!(err.contains("interrupted") && err.contains("not started"), "{err}");
    }
    // A sidecar is written through `.NAME.tarfs-tmp` beside it (ops::atomic::temp_path).
    let leftovers: Vec<_> = fs::read_dir(&root).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).filter(|n| n.starts_with('.') && n.ends_with(".tarfs-tmp")).collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    for e in fs::read_dir(&root).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "tarfs") {
            ok(tarfs().arg("verify").arg(p.with_extension("")));
        }
    }
}

#[test]
fn completions_and_man_page() {
    let bash = ok(tarfs().arg("completions").arg("bash"));
    assert!(String::from_utf8_lossy(&bash.stdout).contains("_tarfs"));
    let man = ok(tarfs().arg("man"));
    let text = String::from_utf8_lossy(&man.stdout);
    assert!(text.contains(".TH tarfs") && text.contains("crontab line"), "{}", &text[..200.min(text.len())]);
    let help = String::from_utf8_lossy(&ok(tarfs().arg("--help")).stdout).to_string();
    assert!(help.contains("--index-dir") && help.contains("crontab"), "{help}");
}
