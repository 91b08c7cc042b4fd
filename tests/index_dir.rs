//! The index directory set once (issue #30): `TARFS_INDEX_DIR`, the config file and its keys
//! (`index-dir`, `jobs`, `or-sidecar`), their precedence under the command line, errors in the
//! config file, and the user's cache of sidecars for archives whose directory refuses one.

mod common;

use std::fs;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use common::{ok, run, tarfs, ReadOnlyDir};
use serde_json::Value;
use tarfs::builder::Builder;
use tempfile::TempDir;

/// An archive of `n` small members `f0.txt`, `f1.txt`, ...
fn archive(path: &Path, n: usize) {
    let mut b = Builder::new(Vec::new());
    for i in 0..n {
        b.add(format!("f{i}.txt"), format!("member {i} of {}\n", path.display()).as_bytes()).unwrap();
    }
    fs::write(path, b.finish().unwrap()).unwrap();
}

/// A home of the user's own: its config directory and its cache.
struct Home {
    dir: TempDir,
}

impl Home {
    fn new() -> Home {
        Home { dir: TempDir::new().unwrap() }
    }

    /// Writes the config file (`$XDG_CONFIG_HOME/tarfs/config.toml`); returns its path.
    fn config(&self, text: &str) -> PathBuf {
        let f = self.dir.path().join("config/tarfs/config.toml");
        fs::create_dir_all(f.parent().unwrap()).unwrap();
        fs::write(&f, text).unwrap();
        f
    }

    /// The cache of sidecars: `$XDG_CACHE_HOME/tarfs/index`.
    fn cache(&self) -> PathBuf {
        self.dir.path().join("cache/tarfs/index")
    }

    /// tarfs with this home's config and cache.
    fn tarfs(&self) -> Command {
        let mut c = tarfs();
        c.env("XDG_CONFIG_HOME", self.dir.path().join("config")).env("XDG_CACHE_HOME", self.dir.path().join("cache"));
        c
    }
}

/// The sidecar of `archive` under `root`, at its canonical path.
fn mirror(root: &Path, archive: &Path) -> PathBuf {
    let canonical = fs::canonicalize(archive).unwrap();
    let mut name = canonical.file_name().unwrap().to_os_string();
    name.push(".tarfs");
    root.join(canonical.strip_prefix("/").unwrap()).with_file_name(name)
}

/// The sidecar beside `archive`.
fn beside(archive: &Path) -> PathBuf {
    let mut name = archive.file_name().unwrap().to_os_string();
    name.push(".tarfs");
    archive.with_file_name(name)
}

fn stderr(out: &std::process::Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn the_index_dir_comes_from_the_flag_then_the_environment_then_the_config_file() {
    let home = Home::new();
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("a.tar");
    archive(&a, 3);
    let [from_config, from_env, from_flag] = ["config-idx", "env-idx", "flag-idx"].map(|d| tmp.path().join(d));
    home.config(&format!("index-dir = {:?}\n", from_config.to_str().unwrap()));

    ok(home.tarfs().args(["index", "-q"]).arg(&a));
    assert!(mirror(&from_config, &a).is_file(), "the config file's index-dir");
    assert!(!beside(&a).exists());
    // A plain ls (no flag) reads that index: it does not scan.
    let out = ok(home.tarfs().args(["-v", "ls"]).arg(&a));
    assert!(stderr(&out).contains(&format!("using sidecar index {}", mirror(&from_config, &a).display())), "{}", stderr(&out));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3);

    ok(home.tarfs().env("TARFS_INDEX_DIR", &from_env).args(["index", "-q"]).arg(&a));
    assert!(mirror(&from_env, &a).is_file(), "TARFS_INDEX_DIR wins over the config file");
    let out = ok(home.tarfs().env("TARFS_INDEX_DIR", &from_env).args(["-v", "cat"]).arg(&a).arg("f1.txt"));
    assert!(stderr(&out).contains(&format!("using sidecar index {}", mirror(&from_env, &a).display())), "{}", stderr(&out));

    ok(home.tarfs().env("TARFS_INDEX_DIR", &from_env).args(["index", "-q", "--index-dir"]).arg(&from_flag).arg(&a));
    assert!(mirror(&from_flag, &a).is_file(), "--index-dir wins over both");
    assert!(!beside(&a).exists(), "nothing beside the archive");

    // TARFS_CONFIG names the config file instead (and must name one).
    let other = tmp.path().join("other.toml");
    let from_other = tmp.path().join("other-idx");
    fs::write(&other, format!("index-dir = {:?}\n", from_other.to_str().unwrap())).unwrap();
    ok(home.tarfs().env("TARFS_CONFIG", &other).args(["index", "-q"]).arg(&a));
    assert!(mirror(&from_other, &a).is_file(), "TARFS_CONFIG");
    let (code, err) = run(home.tarfs().env("TARFS_CONFIG", tmp.path().join("missing.toml")).arg("ls").arg(&a));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("missing.toml") && err.contains("TARFS_CONFIG"), "{err}");
}

#[test]
fn a_malformed_config_file_is_an_error_naming_the_file_the_line_and_the_problem() {
    let home = Home::new();
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("a.tar");
    archive(&a, 1);
    let cases = [
        ("index-dir = \"/x\"\njbos = 3\n", 2, "unknown field `jbos`"),
        ("# defaults\n\njobs = \"four\"\n", 3, "invalid type"),
        ("jobs = 2\nor-sidecar = yes\n", 2, ""),
        ("or-sidecar = 1\n", 1, "invalid type"),
        ("index-dir = \"relative/idx\"\n", 1, "absolute"),
    ];
    for (text, line, what) in cases {
        let f = home.config(text);
        let (code, err) = run(home.tarfs().arg("ls").arg(&a));
        assert_eq!(code, Some(1), "{text:?}: {err}");
        assert!(err.contains(&format!("config file {}: line {line}: ", f.display())) && err.contains(what), "{text:?}: {err}");
        assert_eq!(err.lines().count(), 1, "one line: {err}");
    }
    // A good one is read without a word.
    home.config("jobs = 2\nor-sidecar = true\n");
    let out = ok(home.tarfs().arg("ls").arg(&a));
    assert_eq!(stderr(&out), "");
}

/// A config file in the default place that cannot be read (here a directory: EISDIR) is said
/// and not used, as git does with its config files, so that it blocks no command (not even
/// `recover`); one named by `TARFS_CONFIG` is an error.
#[test]
fn an_unreadable_config_file_in_the_default_place_is_said_and_not_used() {
    let home = Home::new();
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("a.tar");
    archive(&a, 2);
    let f = home.config("jobs = 2\n");
    fs::remove_file(&f).unwrap();
    fs::create_dir(&f).unwrap();
    let out = ok(home.tarfs().arg("ls").arg(&a));
    let err = stderr(&out);
    assert!(err.contains(&format!("warning: config file {}: ", f.display())) && err.contains("it is not used"), "{err}");
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 2);
    let (code, err) = run(home.tarfs().env("TARFS_CONFIG", &f).arg("ls").arg(&a));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("TARFS_CONFIG"), "{err}");
}

/// The threads of `cmd` (an `index` of two archives) while its first worker is paused at
/// "index-planned" (every worker of the batch is started by then).
fn threads_while_indexing(cmd: &mut Command) -> usize {
    let d = TempDir::new().unwrap();
    let resume = d.path().join("resume");
    cmd.env("TARFS_PAUSE_AFTER", "index-planned").env("TARFS_RESUME", &resume).stdout(Stdio::null()).stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let mut err = BufReader::new(child.stderr.take().unwrap());
    let mut said = String::new();
    while !said.contains("paused") {
        assert!(err.read_line(&mut said).unwrap() > 0, "{cmd:?} never paused: {said}");
    }
    let threads = fs::read_dir(format!("/proc/{}/task", child.id())).unwrap().count();
    fs::write(&resume, b"").unwrap();
    std::io::copy(&mut err, &mut std::io::sink()).unwrap();
    assert!(child.wait().unwrap().success());
    threads
}

#[test]
fn jobs_comes_from_the_config_file_unless_given() {
    let home = Home::new();
    let tmp = TempDir::new().unwrap();
    for n in ["a", "b"] {
        archive(&tmp.path().join(format!("{n}.tar")), 2);
    }
    let index = |h: &Home, extra: &[&str]| threads_while_indexing(h.tarfs().args(["index", "--force", "--scan", "sequential"]).args(extra).arg(tmp.path()));
    let one = index(&home, &["-j", "1"]);
    home.config("jobs = 7\n");
    assert_eq!(index(&home, &[]), one + 6, "the config file's jobs = 7");
    assert_eq!(index(&home, &["-j", "1"]), one, "-j wins over the config file");
}

#[test]
fn index_falls_back_to_the_users_cache_where_the_directory_refuses_sidecars() {
    let home = Home::new();
    let tmp = TempDir::new().unwrap();
    let media = ReadOnlyDir::new(&tmp.path().join("media"), |p| {
        fs::create_dir_all(p.join("d")).unwrap();
        for (name, n) in [("d/a.tar", 3), ("d/b.tar", 2), ("c.tar", 4)] {
            archive(&p.join(name), n);
        }
    });
    let archives: Vec<PathBuf> = ["d/a.tar", "d/b.tar", "c.tar"].iter().map(|n| media.path.join(n)).collect();
    let (code, err) = run(tarfs().arg("index").arg(&archives[0]));
    assert_eq!(code, Some(1), "a read-only tree (mounted read-only: {}) refuses sidecars: {err}", media.mounted);

    let out = home.tarfs().arg("index").arg(&media.path).output().unwrap();
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let said: Vec<&str> = err.lines().filter(|l| l.contains(home.cache().to_str().unwrap())).collect();
    assert_eq!(said.len(), 1, "said once per run, not once per archive: {err}");
    assert!(said[0].contains("--index-dir") && said[0].contains("TARFS_INDEX_DIR"), "{err}");
    for a in &archives {
        assert!(mirror(&home.cache(), a).is_file(), "{}: {err}", a.display());
        assert!(!beside(a).exists());
    }

    // Every reader finds them there.
    let out = ok(home.tarfs().args(["-v", "ls"]).arg(&archives[0]));
    assert!(stderr(&out).contains(&format!("using sidecar index {}", mirror(&home.cache(), &archives[0]).display())), "{}", stderr(&out));
    let out = ok(home.tarfs().arg("cat").arg(&archives[2]).arg("f3.txt"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("member 3 of"));
    ok(home.tarfs().arg("verify").arg(&media.path));
    // The next run keeps them, and says nothing of the cache.
    let out = ok(home.tarfs().args(["index", "--json"]).arg(&media.path));
    let recs: Vec<Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(recs.iter().filter(|r| r["type"] == "archive").all(|r| r["action"] == "skipped"), "{recs:?}");
    assert!(!stderr(&out).contains("TARFS_INDEX_DIR"), "{}", stderr(&out));
}

#[test]
fn with_no_place_that_takes_a_sidecar_the_error_says_how_to_choose_one() {
    let tmp = TempDir::new().unwrap();
    let media = ReadOnlyDir::new(&tmp.path().join("media"), |p| archive(&p.join("a.tar"), 1));
    let cache = ReadOnlyDir::new(&tmp.path().join("cache"), |_| {});
    let a = media.path.join("a.tar");
    let (code, err) = run(tarfs().env("XDG_CACHE_HOME", &cache.path).arg("index").arg(&a));
    assert_eq!(code, Some(1), "{err}");
    let line = err.lines().find(|l| l.contains("a.tar:")).unwrap_or_else(|| panic!("{err}"));
    assert!(line.contains("cannot write its index") && line.contains(cache.path.to_str().unwrap()), "both places tried: {err}");
    assert!(line.contains("--index-dir DIR or TARFS_INDEX_DIR"), "{err}");
    // An index directory that refuses it is not second-guessed: the error names the archive.
    let (code, err) = run(tarfs().env("TARFS_INDEX_DIR", &cache.path).arg("index").arg(&a));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("{}: cannot write its index: {}", a.display(), cache.path.display())), "{err}");
    // With a writable index directory chosen, that is where it goes.
    let idx = tmp.path().join("idx");
    ok(tarfs().env("TARFS_INDEX_DIR", &idx).env("XDG_CACHE_HOME", &cache.path).arg("index").arg(&a));
    assert!(mirror(&idx, &a).is_file());
}

#[test]
fn readers_look_in_the_cache_after_the_archives_own_sidecar() {
    let home = Home::new();
    let tmp = TempDir::new().unwrap();
    let a = tmp.path().join("a.tar");
    archive(&a, 3);
    let cached = mirror(&home.cache(), &a);
    ok(home.tarfs().args(["index", "-q", "--output"]).arg(&cached).arg(&a));
    fs::write(beside(&a), b"not an index").unwrap();
    let out = ok(home.tarfs().args(["-v", "ls"]).arg(&a));
    assert!(stderr(&out).contains(&format!("using sidecar index {}", cached.display())), "{}", stderr(&out));
    let out = ok(home.tarfs().arg("cat").arg(&a).arg("f2.txt"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("member 2 of"));
    ok(home.tarfs().arg("verify").arg(&a));
    // Without the cache, the archive's own sidecar is all there is: it does not decode.
    let (code, err) = run(tarfs().arg("verify").arg(&a));
    assert_eq!(code, Some(1), "{err}");
}
