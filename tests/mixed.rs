//! `embed` and `csv` over directories that mix plain and compressed archives (issue #30, item
//! 5): the compressed ones are named, with why, and counted as skipped; `embed --or-sidecar`
//! (item 17) gives them, and every archive it cannot embed, a sidecar instead, so that a nightly
//! `embed` of such a tree ends with status 0 and `verify` passes.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::{isolated, ok, run, tarfs, ReadOnlyDir};
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
        let done = if cmd == "embed" { "embedded" } else { "indexed" };
        assert!(err.contains(&format!("1 {done}, 2 skipped, 0 failed")), "{cmd}: {err}");
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

/// `dir` with a plain archive `a.tar`, and archives embed refuses, each with (part of) why:
/// `b.tar.gz` (compressed), `g.tar` (pax global headers), `ro.tar` (a read-only file).
fn unembeddable(dir: &Path) -> (PathBuf, Vec<(PathBuf, &'static str)>) {
    fs::create_dir_all(dir).unwrap();
    let a = dir.join("a.tar");
    plain(&a);
    let gz = dir.join("b.tar.gz");
    ok(Command::new("tar").arg("-czf").arg(&gz).arg("-C").arg(dir).arg("a.tar"));
    let g = dir.join("g.tar");
    ok(Command::new("python3")
        .arg("-c")
        .arg("import tarfile,io,sys\nwith tarfile.open(sys.argv[1],'w',format=tarfile.PAX_FORMAT,pax_headers={'uname':'x'}) as t:\n i=tarfile.TarInfo('f'); i.size=1; t.addfile(i, io.BytesIO(b'1'))")
        .arg(&g));
    let ro = dir.join("ro.tar");
    plain(&ro);
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&ro, fs::Permissions::from_mode(0o444)).unwrap();
    (a, vec![(gz, "gzip-compressed"), (g, "global headers"), (ro, "read-only")])
}

/// The sidecar beside `archive`.
fn beside(archive: &Path) -> PathBuf {
    let mut name = archive.file_name().unwrap().to_os_string();
    name.push(".tarfs");
    archive.with_file_name(name)
}

/// The sidecar of `archive` under `root`, at its canonical path.
fn mirror(root: &Path, archive: &Path) -> PathBuf {
    let canonical = fs::canonicalize(archive).unwrap();
    let mut name = canonical.file_name().unwrap().to_os_string();
    name.push(".tarfs");
    root.join(canonical.strip_prefix("/").unwrap()).with_file_name(name)
}

#[test]
fn embed_or_sidecar_writes_a_sidecar_where_it_cannot_embed_and_ends_with_status_0() {
    let tmp = TempDir::new().unwrap();
    let dir = tmp.path().join("store");
    let (a, others) = unembeddable(&dir);
    let (code, err) = run(tarfs().arg("embed").arg(&dir));
    assert_eq!(code, Some(1), "without --or-sidecar, refusals fail: {err}");
    let before: Vec<Vec<u8>> = others.iter().map(|(p, _)| fs::read(p).unwrap()).collect();

    assert!(err.contains("1 embedded, 1 skipped, 2 failed"), "the compressed one skipped: {err}");
    let out = ok(tarfs().args(["embed", "--or-sidecar", "--json"]).arg(&dir));
    let recs = records(&out);
    assert_eq!(record(&recs, &a)["reason"], "index up to date", "embedded by the run before");
    for ((p, why), bytes) in others.iter().zip(&before) {
        let r = record(&recs, p);
        let reason = r["reason"].as_str().unwrap();
        assert!(r["action"] == "indexed" && reason.contains("a sidecar instead") && reason.contains(why), "{r}");
        assert_eq!(r["index_path"], beside(p).to_str().unwrap());
        assert!(beside(p).is_file());
        assert_eq!(&fs::read(p).unwrap(), bytes, "{} was changed", p.display());
    }
    assert!(!beside(&a).exists(), "a.tar is embedded, with no sidecar");
    assert!(stderr(&out).contains("3 indexed, 1 skipped, 0 failed"), "{}", stderr(&out));
    ok(tarfs().arg("verify").arg(&dir));
    // The next night's run finds everything fresh.
    let out = ok(tarfs().args(["embed", "--or-sidecar", "--json"]).arg(&dir));
    assert!(records(&out).iter().all(|r| r["action"] == "skipped"), "{:?}", records(&out));
}

#[test]
fn or_sidecar_is_a_config_default_and_sidecars_go_where_index_puts_them() {
    let tmp = TempDir::new().unwrap();
    let config = tmp.path().join("config");
    fs::create_dir_all(config.join("tarfs")).unwrap();
    fs::write(config.join("tarfs/config.toml"), "or-sidecar = true\n").unwrap();
    let with_config = || {
        let mut c = tarfs();
        c.env("XDG_CONFIG_HOME", &config);
        c
    };
    let dir = tmp.path().join("store");
    let (_, others) = unembeddable(&dir);
    let g = &others[1].0;
    let (code, err) = run(with_config().args(["embed", "--no-or-sidecar"]).arg(&dir));
    assert_eq!(code, Some(1), "--no-or-sidecar wins over the config file: {err}");
    ok(with_config().arg("embed").arg(&dir));
    assert!(beside(g).is_file(), "the config file's or-sidecar");

    // The index directory says where the sidecars go; --index-dir is taken with --or-sidecar.
    let (dir2, idx) = (tmp.path().join("store2"), tmp.path().join("idx"));
    let (_, others) = unembeddable(&dir2);
    let (code, err) = run(tarfs().args(["embed", "--index-dir"]).arg(&idx).arg(&dir2));
    assert_eq!(code, Some(2), "a sidecar's place for embed without --or-sidecar: {err}");
    ok(tarfs().args(["embed", "--or-sidecar", "--index-dir"]).arg(&idx).arg(&dir2));
    ok(tarfs().env("TARFS_INDEX_DIR", &idx).arg("verify").arg(&dir2));
    for (p, _) in &others {
        assert!(mirror(&idx, p).is_file() && !beside(p).exists(), "{}", p.display());
    }

    // A read-only tree: its sidecars go to the user's cache, as index's do.
    let cache = tmp.path().join("cache");
    let media = ReadOnlyDir::new(&tmp.path().join("media"), |p| {
        unembeddable(p);
    });
    let out = ok(with_config().env("XDG_CACHE_HOME", &cache).args(["embed", "--json"]).arg(&media.path));
    let recs = records(&out);
    assert_eq!(recs.iter().filter(|r| r["action"] == "indexed").count(), 4, "{recs:?}");
    for name in ["a.tar", "b.tar.gz", "g.tar", "ro.tar"] {
        assert!(mirror(&cache.join("tarfs/index"), &media.path.join(name)).is_file(), "{name}: {recs:?}");
    }
}

#[test]
fn a_refusal_for_the_moment_gets_no_sidecar() {
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("a.tar");
    plain(&a);
    // The archive grows (tar -rf) while embed has surveyed it: embed refuses, for now, and a
    // sidecar of an archive that is being written would be no better.
    let mut cmd = tarfs();
    cmd.args(["embed", "--or-sidecar"]).arg(&a);
    let out = common::run_paused(&mut cmd, "embed-surveyed", || {
        ok(Command::new("tar").arg("-rf").arg(&a).arg("-C").arg(tmp.path()).arg("a.tar"));
    });
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("changed while it was surveyed") && err.contains("run again"), "{err}");
    assert!(!beside(&a).exists(), "{err}");
    // Run again, it embeds.
    ok(tarfs().args(["embed", "--or-sidecar"]).arg(&a));
    assert!(!beside(&a).exists());
}
