//! `embed` and `csv` over directories that mix plain and compressed archives (issue #30, item
//! 5): the compressed ones are named, with why, and counted as skipped; `embed --or-sidecar`
//! (item 17) gives them, and every archive it cannot embed, a sidecar instead, so that a nightly
//! `embed` of such a tree ends with status 0 and `verify` passes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{isolated, ok, tarfs};
use serde_json::Value;
use tarfs::builder::Builder;
use tempfile::TempDir;

/// A plain archive of three small members.
fn plain(path: &Path) {
    let mut b = Builder::new(Vec::new());
    for i in 0..3 {
        b.add(format!("f{i}.txt"), format!("member {i}\n").as_bytes()).unwrap();
    }
    fs::write(path, b.finish().unwrap()).unwrap();
}

/// `dir` with `a.tar` (plain), `b.tar.gz` and `sub/c.tar.xz`; returns the compressed ones.
fn mixed(dir: &Path) -> Vec<PathBuf> {
    fs::create_dir_all(dir.join("sub")).unwrap();
    plain(&dir.join("a.tar"));
    let (gz, xz) = (dir.join("b.tar.gz"), dir.join("sub/c.tar.xz"));
    ok(Command::new("tar").arg("-czf").arg(&gz).arg("-C").arg(dir).arg("a.tar"));
    ok(Command::new("tar").arg("-cJf").arg(&xz).arg("-C").arg(dir).arg("a.tar"));
    vec![gz, xz]
}

/// The `--json` archive records of `out`, by path.
fn records(out: &Output) -> Vec<Value> {
    String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|r| r["type"] == "archive").collect()
}

fn record<'a>(recs: &'a [Value], path: &Path) -> &'a Value {
    recs.iter().find(|r| r["path"] == path.to_str().unwrap()).unwrap_or_else(|| panic!("no record for {}: {recs:?}", path.display()))
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn embed_and_csv_name_the_compressed_archives_they_pass_over() {
    for (cmd, hint) in [("embed", "--or-sidecar"), ("csv", "tarfs index")] {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let compressed = mixed(&dir);
        // Under cron (stderr is not a terminal): the summary alone, which counts them skipped.
        let out = tarfs().arg(cmd).arg(&dir).output().unwrap();
        assert!(out.status.success(), "{cmd}: {}", stderr(&out));
        let err = stderr(&out);
        assert_eq!(err.lines().count(), 1, "{cmd}: only the summary: {err}");
        assert!(err.contains("1 indexed, 2 skipped, 0 failed"), "{cmd}: {err}");
        // Each record says why.
        let out = ok(tarfs().arg(cmd).arg("--json").arg("--force").arg(&dir));
        let recs = records(&out);
        for (c, name) in compressed.iter().zip(["gzip", "xz"]) {
            let r = record(&recs, c);
            let why = r["reason"].as_str().unwrap();
            assert!(r["action"] == "skipped" && why.contains(&format!("{name}-compressed")) && why.contains(hint), "{cmd}: {r}");
        }
        // On a terminal, one line each, and none for the archive left as it was.
        let line = format!("{} {cmd} {}", env!("CARGO_BIN_EXE_tarfs"), dir.display());
        let out = isolated(Command::new("script").arg("-qfec").arg(&line).arg("/dev/null")).stdin(Stdio::null()).output().unwrap();
        let screen = String::from_utf8_lossy(&out.stdout);
        for c in &compressed {
            assert!(screen.contains(&format!("tarfs: {}: skipped: ", c.display())), "{cmd}: {screen}");
        }
        assert!(!screen.contains(&format!("tarfs: {}:", dir.join("a.tar").display())), "{cmd}: {screen}");
        // A compressed archive named on the command line is still refused.
        let out = tarfs().arg(cmd).arg(&compressed[0]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "{cmd}: {}", stderr(&out));
    }
}
