//! What tarfs says, in the words a new user reads first (issue #30, items 14 and 15): a hint
//! where a compressed archive cannot be read from the middle, dry runs and `embed` that say what
//! they would do or did, and help and messages that mean what they say.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{ok, run, tarfs};

/// `DIR/NAME.tar` of `n` members of `size` bytes each.
fn plain(dir: &Path, name: &str, n: usize, size: usize) -> PathBuf {
    let p = dir.join(format!("{name}.tar"));
    let script = "import io,sys,tarfile\nwith tarfile.open(sys.argv[1],'w') as t:\n for i in range(int(sys.argv[2])):\n  d=bytes((i*7+j)%251 for j in range(int(sys.argv[3]))); ti=tarfile.TarInfo('m%d'%i); ti.size=len(d); t.addfile(ti,io.BytesIO(d))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&p).arg(n.to_string()).arg(size.to_string()));
    p
}

/// `tar` compressed by `tool` (zstd, xz, gzip) into `DIR/OUT`, in one frame or block.
fn compressed(tar: &Path, tool: &str, out: &Path) -> PathBuf {
    ok(Command::new("sh").arg("-c").arg(format!("{tool} -c {} > {}", tar.display(), out.display())));
    out.to_path_buf()
}

fn stderr_of(cmd: &mut Command) -> String {
    String::from_utf8_lossy(&ok(cmd).stderr).into_owned()
}

/// Indexing a compressed archive that has no seek points (one zstd frame, one xz block) says
/// once, without -v, that reads decode it from the start and what makes it seekable: off a
/// terminal (cron), one line for the batch; with -v, one line per archive. Not for an archive
/// no larger than a span (a seek point would save nothing), nor a seekable one, nor with -q.
#[test]
fn index_hints_at_recompress_for_archives_without_seek_points() {
    let d = tempfile::tempdir().unwrap();
    let store = d.path().join("store");
    std::fs::create_dir(&store).unwrap();
    let tar = plain(d.path(), "a", 4, 100_000);
    let zst = compressed(&tar, "zstd -q", &store.join("a.tar.zst"));
    let xz = compressed(&tar, "xz", &store.join("b.tar.xz"));
    compressed(&tar, "gzip", &store.join("c.tar.gz"));
    let hint = "`tarfs recompress --seekable`";

    let err = stderr_of(tarfs().args(["index", "--span", "64K"]).arg(&store));
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(hint)).collect();
    assert_eq!(lines.len(), 1, "one line for the batch: {err}");
    assert!(lines[0].starts_with("tarfs: index: 2 archives are not seekable"), "{err}");

    let err = stderr_of(tarfs().args(["-v", "index", "--force", "--span", "64K"]).arg(&store));
    let lines: Vec<&str> = err.lines().filter(|l| l.contains(hint)).collect();
    assert_eq!(lines.len(), 2, "one line per archive with -v: {err}");
    assert!(lines.contains(&format!("tarfs: {}: one zstd frame, so reads decode it from the start; {hint} makes it seekable", zst.display()).as_str()), "{err}");
    assert!(lines.contains(&format!("tarfs: {}: one xz block, so reads decode it from the start; {hint} makes it seekable", xz.display()).as_str()), "{err}");

    // -q: errors only. No larger than the span (4 MiB by default): nothing to say.
    assert!(stderr_of(tarfs().args(["index", "-q", "--force", "--span", "64K"]).arg(&store)).is_empty());
    assert!(!stderr_of(tarfs().args(["index", "--force"]).arg(&store)).contains(hint));
    // Once seekable, nothing either.
    ok(tarfs().args(["recompress", "--seekable", "--frame-size", "64K"]).arg(&zst).arg(&xz));
    let err = stderr_of(tarfs().args(["index", "--force", "--span", "64K"]).arg(&store));
    assert!(!err.contains(hint), "{err}");
}

/// `--json` records (stdout) and stderr of a batch run.
fn json_of(cmd: &mut Command) -> (Vec<serde_json::Value>, String) {
    let out = ok(cmd.arg("--json"));
    let recs = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    (recs, String::from_utf8_lossy(&out.stderr).into_owned())
}

/// A dry run says once what it would do ("would index (new)"), and gives no member count where
/// it counted none (a compressed archive is not decoded for a dry run), in its lines, its JSON
/// records and its summary.
#[test]
fn a_dry_run_says_it_once_and_counts_only_what_it_counted() {
    let d = tempfile::tempdir().unwrap();
    let tar = plain(d.path(), "a", 3, 10);
    let zst = compressed(&tar, "zstd -q", &d.path().join("b.tar.zst"));
    let err = stderr_of(tarfs().args(["-v", "index", "--dry-run"]).arg(&tar).arg(&zst));
    assert!(err.lines().any(|l| l == format!("{}: would index (new); 3 members", tar.display())), "{err}");
    assert!(err.lines().any(|l| l == format!("{}: would index (new)", zst.display())), "{err}");
    assert!(err.contains("index (dry run, nothing written): 2 would be indexed, 0 failed; 3 members (1 archive not counted), "), "{err}");
    assert!(!err.contains("dry run: would"), "{err}");
    let (recs, _) = json_of(tarfs().args(["index", "--dry-run"]).arg(&zst));
    assert_eq!((recs[0]["action"].as_str(), recs[0]["reason"].as_str(), recs[0].get("members")), (Some("would_index"), Some("new"), None), "{recs:?}");
    assert_eq!(recs[1]["uncounted"], 1, "{recs:?}");
    // Counted once indexed.
    let err = stderr_of(tarfs().args(["-v", "index"]).arg(&zst));
    assert!(err.contains("; 3 members\n") && err.contains("; 3 members, "), "{err}");
}

/// `embed` says that it embedded (it said "indexed"), and a dry run that it would embed.
#[test]
fn embed_says_embedded() {
    let d = tempfile::tempdir().unwrap();
    let tar = plain(d.path(), "a", 3, 10);
    let err = stderr_of(tarfs().args(["-v", "embed", "--dry-run"]).arg(&tar));
    assert!(err.contains(&format!("{}: would embed (displaced ", tar.display())) && err.contains(" members to the end); ") && err.contains("bytes to write, the archive grows by "), "{err}");
    assert!(err.contains("embed (dry run, nothing written): 1 would be embedded, 0 failed; 3 members"), "{err}");
    let err = stderr_of(tarfs().args(["-v", "embed"]).arg(&tar));
    assert!(err.contains(&format!("{}: embedded (displaced ", tar.display())) && err.contains(" members to the end); ") && err.contains("bytes written, the archive grew by "), "{err}");
    assert!(err.contains("embed: 1 embedded, 0 failed; 3 members") && !err.contains("indexed"), "{err}");
    let (recs, _) = json_of(tarfs().args(["embed", "--force"]).arg(&tar));
    assert_eq!((recs[0]["action"].as_str(), recs[1]["embedded"].as_u64()), (Some("embedded"), Some(1)), "{recs:?}");
    assert!(recs[0]["reason"].as_str().unwrap().starts_with("re-indexed in place"), "{recs:?}");
}

/// `-j`'s help says what its default is (one worker per core), not "[default: 0]".
#[test]
fn jobs_help_says_one_per_core() {
    for cmd in ["index", "verify", "embed", "csv", "recover", "recompress"] {
        let help = String::from_utf8(ok(tarfs().arg(cmd).arg("--help")).stdout).unwrap();
        let jobs = help.split("--jobs").nth(1).and_then(|h| h.split("\n  -").next()).unwrap_or_else(|| panic!("{cmd}: {help}"));
        assert!(jobs.contains("one per core") && !jobs.contains("[default: 0]"), "{cmd}: {jobs}");
    }
}

/// `recompress --dry-run` says what `--seekable` would do without being told `--seekable`.
#[test]
fn recompress_dry_run_needs_no_seekable() {
    let d = tempfile::tempdir().unwrap();
    let tar = plain(d.path(), "a", 3, 10);
    let zst = compressed(&tar, "zstd -q", &d.path().join("a.tar.zst"));
    let err = stderr_of(tarfs().args(["recompress", "--dry-run"]).arg(&zst));
    assert!(err.contains("recompress (dry run, nothing written): 1 would be recompressed"), "{err}");
    // Without --dry-run it is still required: it is the one way recompress rewrites.
    let (code, err) = run(tarfs().arg("recompress").arg(&zst));
    assert_eq!(code, Some(2), "{err}");
}

/// `mount` onto a path that does not exist says so (it said "not a directory").
#[test]
fn mount_on_a_missing_mount_point_says_it_does_not_exist() {
    let d = tempfile::tempdir().unwrap();
    let tar = plain(d.path(), "a", 1, 10);
    let missing = d.path().join("mnt/nonexist");
    let (code, err) = run(tarfs().arg("mount").arg(&tar).arg(&missing));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains(&format!("{}: cannot mount there: it does not exist", missing.display())), "{err}");
    let (code, err) = run(tarfs().arg("mount").arg(&tar).arg(&tar));
    assert_eq!(code, Some(1), "{err}");
    assert!(err.contains("cannot mount there: not a directory"), "{err}");
}

/// The global `-v` is not listed where it means nothing (`completions`, `man`), and is still
/// taken before them.
#[test]
fn verbose_is_not_listed_under_completions_and_man() {
    for cmd in ["completions", "man"] {
        let help = String::from_utf8(ok(tarfs().arg(cmd).arg("--help")).stdout).unwrap();
        assert!(!help.contains("--verbose"), "{cmd}: {help}");
    }
    assert!(String::from_utf8(ok(tarfs().args(["index", "--help"])).stdout).unwrap().contains("--verbose"));
    ok(tarfs().args(["-v", "completions", "bash"]));
    ok(tarfs().args(["-v", "man", "ls"]));
}
