//! Sharded batches on one machine (issue #35): `--shard K/N` over every batch command shares the
//! archives out, none twice and none missed, and the shards' reports (`--report`) merge
//! (`tarfs report`) into the counts of an unsharded run; `--files-from`; and a shard killed in
//! mid-run and run again does only what it had not done, for every command.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ok, tarfs};
use serde_json::Value;
use tarfs::batch::shard::{select, Shard, Weigh};
use tarfs::builder::Builder;
use tarfs::discover::Found;

/// `n` archives of various sizes under `root`, in two directories.
fn store(root: &Path, n: usize) -> Vec<PathBuf> {
    (0..n)
        .map(|i| {
            let dir = root.join(format!("d{}", i % 2));
            fs::create_dir_all(&dir).unwrap();
            let mut b = Builder::new(Vec::new());
            for m in 0..(i % 3 + 1) {
                b.add(format!("m{m}"), &vec![b'a' + m as u8; (i * 1_301 + m * 700) % 20_000]).unwrap();
            }
            let path = dir.join(format!("a{i:02}.tar"));
            fs::write(&path, b.finish().unwrap()).unwrap();
            path
        })
        .collect()
}

fn archive_records(stdout: &[u8]) -> Vec<Value> {
    stdout.split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(|l| serde_json::from_slice::<Value>(l).unwrap()).filter(|v| v["type"] == "archive").collect()
}

fn by_path(records: &[Value]) -> BTreeMap<String, Vec<String>> {
    let mut m: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for r in records {
        m.entry(r["path"].as_str().unwrap().to_string()).or_default().push(r["action"].as_str().unwrap().to_string());
    }
    m
}

fn totals(report: &Path) -> Value {
    let r: Value = serde_json::from_slice(&fs::read(report).unwrap()).unwrap();
    r["totals"].clone()
}

#[test]
fn every_command_shares_out_its_archives() {
    let tmp = tempfile::tempdir().unwrap();
    let (shared, alone) = (tmp.path().join("shared"), tmp.path().join("alone"));
    let paths = store(&shared, 40);
    fs::write(shared.join("d1/bad.tar"), vec![7u8; 2000]).unwrap();
    ok(Command::new("cp").arg("-a").arg(&shared).arg(&alone));
    // Each command in turn, so that each has work: verify finds the sidecars index wrote, recover
    // finds nothing to recover.
    for command in ["index", "verify", "embed", "csv", "recover"] {
        let mut seen = BTreeMap::new();
        let mut reports = Vec::new();
        for k in 1..=3 {
            let report = tmp.path().join(format!("{command}-{k}.json"));
            let out = tarfs().args([command, "--json", "--shard", &format!("{k}/3"), "--report"]).arg(&report).arg(&shared).output().unwrap();
            for (path, actions) in by_path(&archive_records(&out.stdout)) {
                assert!(seen.insert(path.clone(), (k, actions)).is_none(), "{command}: {path} in two shards");
            }
            reports.push(report);
        }
        assert_eq!(seen.len(), paths.len() + 1, "{command}: every archive in one shard");
        let one = tarfs().args([command, "-q", "--report"]).arg(tmp.path().join(format!("{command}-alone.json"))).arg(&alone).output().unwrap();
        let merged = tarfs().args(["report", "--json"]).args(&reports).output().unwrap();
        let m: Value = serde_json::from_slice(&merged.stdout).unwrap();
        assert_eq!(m["totals"], totals(&tmp.path().join(format!("{command}-alone.json"))), "{command}: the shards add up to one run");
        assert_eq!(merged.status.code(), one.status.code(), "{command}: {}", String::from_utf8_lossy(&merged.stderr));
        // bad.tar fails (recover has nothing to say of it), with its reason.
        if command != "recover" {
            assert_eq!(merged.status.code(), Some(1), "{command}");
            assert!(m["failures"].as_array().unwrap().iter().any(|f| f["path"].as_str().unwrap().ends_with("bad.tar") && f["error"]["message"].as_str().unwrap().contains("bad.tar")), "{m}");
        }
    }
    // A shard's report left out is named, and fails the merge.
    let out = tarfs().args(["report"]).arg(tmp.path().join("index-1.json")).arg(tmp.path().join("index-3.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no report of shard 2/3"), "{}", String::from_utf8_lossy(&out.stderr));
    // Reports of two commands are not one run's.
    let out = tarfs().args(["report"]).arg(tmp.path().join("index-1.json")).arg(tmp.path().join("csv-2.json")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("are not reports of one run"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn files_from_a_list_or_standard_input() {
    let tmp = tempfile::tempdir().unwrap();
    let paths = store(tmp.path(), 6);
    let nul: Vec<u8> = paths[..3].iter().flat_map(|p| [p.as_os_str().as_encoded_bytes(), b"\0"].concat()).collect();
    fs::write(tmp.path().join("list0"), nul).unwrap();
    let out = ok(tarfs().args(["index", "--json", "-0", "--files-from"]).arg(tmp.path().join("list0")));
    assert_eq!(by_path(&archive_records(&out.stdout)).len(), 3);
    let mut child = tarfs().args(["index", "--json", "--files-from", "-"]).stdin(Stdio::piped()).stdout(Stdio::piped()).spawn().unwrap();
    let lines: String = paths.iter().map(|p| format!("{}\n", p.display())).collect();
    std::io::Write::write_all(&mut child.stdin.take().unwrap(), lines.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let seen = by_path(&archive_records(&out.stdout));
    assert_eq!(seen.values().filter(|a| a[0] == "skipped").count(), 3, "{seen:?}");
    assert_eq!(seen.values().filter(|a| a[0] == "indexed").count(), 3, "{seen:?}");
    // A list that cannot be read is named.
    let out = tarfs().args(["index", "--files-from"]).arg(tmp.path().join("none")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("none"), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `command --shard 1/2 -j 1` over `root`, stalled on the archive in the middle of its
/// share (`TARFS_STALL_ON`), kills it (SIGKILL, as a node failure would) once it has reported
/// the archives before that one, then runs it again (with `resume`, given the first run's
/// lines, cut short, as its `--resume` log). Returns each archive's actions over both
/// runs, and the archives the first run reported.
fn killed_then_again(command: &str, root: &Path, paths: &[PathBuf], weigh: Weigh, resume: bool) -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let found: Vec<Found> = paths.iter().map(|p| Found { path: p.clone() }).collect();
    let mut share: Vec<(usize, u64, PathBuf)> = select(found, Shard::new(0, 2).unwrap(), weigh).into_iter().enumerate().map(|(i, f)| (i, fs::metadata(&f.path).unwrap().len(), f.path)).collect();
    share.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let before = share.len() / 2;
    let stalled = &share[before].2;
    let marker = PathBuf::from(format!("{}.stall", stalled.display()));
    fs::write(&marker, b"").unwrap();
    let args = [command, "--json", "-j", "1", "--shard", "1/2"];
    let mut child = tarfs().args(args).arg(root).env("TARFS_STALL_ON", stalled.file_name().unwrap()).stdout(Stdio::piped()).spawn().unwrap();
    let mut first = Vec::new();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    while first.len() < before {
        let line = lines.next().unwrap().unwrap();
        first.extend(archive_records(line.as_bytes()));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    fs::remove_file(&marker).unwrap();
    // With `resume`, the first run's lines are the log the second reads (`--json >> LOG`).
    let log = root.join("log.jsonl");
    let lines: String = first.iter().map(|r| format!("{r}\n")).collect();
    fs::write(&log, lines + "{\"type\":\"archive\",\"pa").unwrap();
    let resumed: &[&str] = if resume { &["--resume", log.to_str().unwrap()] } else { &[] };
    let again = tarfs().args(args).args(resumed).arg(root).output().unwrap();
    let mut all = by_path(&first);
    for (path, actions) in by_path(&archive_records(&again.stdout)) {
        all.entry(path).or_default().extend(actions);
    }
    assert_eq!(all.len(), share.len(), "{command}: the shard's archives, all reported");
    (all, by_path(&first).into_keys().collect())
}

#[test]
fn a_killed_shard_run_again_does_only_what_is_left() {
    for (command, done, weigh) in [("index", "indexed", Weigh::Bytes), ("embed", "embedded", Weigh::Count), ("csv", "indexed", Weigh::Count)] {
        let tmp = tempfile::tempdir().unwrap();
        let paths = store(tmp.path(), 24);
        let (all, first) = killed_then_again(command, tmp.path(), &paths, weigh, false);
        for (path, actions) in &all {
            let expected = if first.contains(path) { vec![done.to_string(), "skipped".to_string()] } else { vec![done.to_string()] };
            assert_eq!(actions, &expected, "{command}: {path}");
        }
    }
    // recover: interrupted embeds (each stopped by TARFS_CRASH_AFTER, as a crash would), each
    // recovered once.
    let tmp = tempfile::tempdir().unwrap();
    let paths = store(tmp.path(), 16);
    for p in &paths {
        let out = tarfs().arg("embed").arg(p).env("TARFS_CRASH_AFTER", "embed-journal-written").output().unwrap();
        assert_eq!(out.status.code(), Some(86), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let (all, first) = killed_then_again("recover", tmp.path(), &paths, Weigh::Count, false);
    for (path, actions) in &all {
        assert!(["finished", "rolled_back"].contains(&actions[0].as_str()), "recover: {path}: {actions:?}");
        let rest: Vec<&str> = actions[1..].iter().map(String::as_str).collect();
        assert_eq!(rest, if first.contains(path) { vec!["skipped"] } else { vec![] }, "recover: {path}: {actions:?}");
    }
    // verify leaves nothing in the archives: run again, it checks each again; with the log of
    // the first run (--resume), only those the first did not.
    for resume in [false, true] {
        let tmp = tempfile::tempdir().unwrap();
        let paths = store(tmp.path(), 16);
        ok(tarfs().arg("index").arg("-q").arg(tmp.path()));
        let (all, first) = killed_then_again("verify", tmp.path(), &paths, Weigh::Bytes, resume);
        for (path, actions) in &all {
            let expected: &[&str] = match (first.contains(path), resume) {
                (true, true) => &["verified", "skipped"],
                (true, false) => &["verified", "verified"],
                (false, _) => &["verified"],
            };
            assert_eq!(actions, expected, "verify, resume {resume}: {path}");
        }
    }
    // index, with the log: the same, by the log rather than by freshness.
    let tmp = tempfile::tempdir().unwrap();
    let paths = store(tmp.path(), 16);
    let (all, first) = killed_then_again("index", tmp.path(), &paths, Weigh::Bytes, true);
    for (path, actions) in &all {
        assert_eq!(actions, if first.contains(path) { &["indexed", "skipped"][..] } else { &["indexed"][..] }, "index --resume: {path}");
    }
}

/// `--shard slurm` is the shard the array task's variables say, ids from `SLURM_ARRAY_TASK_MIN`
/// in steps of `SLURM_ARRAY_TASK_STEP`; a `--shard` that names no shard is a usage error.
#[test]
fn slurm_variables_and_usage_errors() {
    let tmp = tempfile::tempdir().unwrap();
    store(tmp.path(), 20);
    let listed = |args: &[&str], env: &[(&str, &str)]| {
        let out = tarfs().args(["index", "--dry-run", "--json"]).args(args).arg(tmp.path()).envs(env.iter().copied()).output().unwrap();
        assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stderr));
        by_path(&archive_records(&out.stdout)).into_keys().collect::<Vec<_>>()
    };
    for k in 1..=4 {
        let id = (10 + (k - 1) * 3).to_string();
        let env = [("SLURM_ARRAY_TASK_ID", id.as_str()), ("SLURM_ARRAY_TASK_MIN", "10"), ("SLURM_ARRAY_TASK_MAX", "19"), ("SLURM_ARRAY_TASK_STEP", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        let by_slurm = listed(&["--shard", "slurm"], &env);
        assert!(!by_slurm.is_empty());
        assert_eq!(by_slurm, listed(&["--shard", &format!("{k}/4")], &[]), "task {id}");
    }
    for (shard, env, says) in [("0/4", vec![], "K must be from 1 to N"), ("2", vec![], "expected K/N"), ("slurm", vec![], "SLURM_ARRAY_TASK_ID is not set"), ("slurm", vec![("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_MAX", "9")], "--shard K/N instead")] {
        let mut cmd = tarfs();
        for var in ["ID", "MIN", "MAX", "STEP", "COUNT"] {
            cmd.env_remove(format!("SLURM_ARRAY_TASK_{var}"));
        }
        let out = cmd.args(["verify", "--shard", shard]).arg(tmp.path()).envs(env).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{shard}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(says), "{shard}: {}", String::from_utf8_lossy(&out.stderr));
    }
}
