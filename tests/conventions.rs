//! Unix conventions (issue #17, the parts done so far): `-q` means errors only, an empty batch
//! says that it found nothing, a closed pipe ends `cat` quietly, and counts read as English.

mod common;

use std::io::Read;
use std::process::{Command, Stdio};

use common::{ok, tarfs};

fn small_tar(dir: &std::path::Path, name: &str, members: usize, size: usize) -> std::path::PathBuf {
    let p = dir.join(name);
    let script = "import io,sys,tarfile\nwith tarfile.open(sys.argv[1],'w') as t:\n for i in range(int(sys.argv[2])):\n  d=b'q'*int(sys.argv[3]); ti=tarfile.TarInfo('m%d'%i); ti.size=len(d); t.addfile(ti,io.BytesIO(d))\n";
    ok(Command::new("python3").arg("-c").arg(script).arg(&p).arg(members.to_string()).arg(size.to_string()));
    p
}

#[test]
fn quiet_means_errors_only() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "a.tar", 3, 10);
    ok(tarfs().arg("index").arg(&a));
    for args in [&["verify", "-q"][..], &["recover", "-q"]] {
        let out = ok(tarfs().args(args).arg(d.path()));
        assert!(out.stdout.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stdout));
        assert!(out.stderr.is_empty(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    // Off a terminal (cron), without -v: errors and the summary only (issue #30, item 4); with
    // -v, a line per archive.
    for cmd in ["verify", "recover"] {
        let out = ok(tarfs().arg(cmd).arg(d.path()));
        assert!(out.stdout.is_empty(), "{cmd}: {}", String::from_utf8_lossy(&out.stdout));
    }
    assert!(String::from_utf8_lossy(&ok(tarfs().arg("-v").arg("verify").arg(d.path())).stdout).contains(": ok: "));
    // A failure is still said, off a terminal too.
    std::fs::write(d.path().join("a.tar.tarfs"), b"not an index").unwrap();
    let out = tarfs().arg("verify").arg(d.path()).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("a.tar"), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_batch_that_finds_nothing_says_so() {
    let d = tempfile::tempdir().unwrap();
    for verb in ["index", "verify", "embed", "csv", "recover"] {
        let out = tarfs().arg(verb).arg("-q").arg(d.path()).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("no archives found under"), "{verb}: {err}");
    }
}

#[test]
fn cat_into_a_closed_pipe_ends_quietly() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "big.tar", 1, 32 << 20);
    let mut child = tarfs().arg("cat").arg(&a).arg("m0").stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut first = [0u8; 10];
    child.stdout.as_mut().unwrap().read_exact(&mut first).unwrap();
    drop(child.stdout.take()); // as `head -c 10` does
    let out = child.wait_with_output().unwrap();
    assert_eq!(&first, b"qqqqqqqqqq");
    assert!(out.status.success(), "exit {:?}: {}", out.status, String::from_utf8_lossy(&out.stderr));
    assert!(out.stderr.is_empty(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn one_member_is_singular() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "one.tar", 1, 5);
    let err = String::from_utf8_lossy(&ok(tarfs().arg("index").arg(&a)).stderr).into_owned();
    assert!(err.contains("; 1 member,"), "{err}");
    let b = small_tar(d.path(), "two.tar", 2, 5);
    let err = String::from_utf8_lossy(&ok(tarfs().arg("index").arg(&b)).stderr).into_owned();
    assert!(err.contains("; 2 members,"), "{err}");
}

#[test]
fn embed_output_of_a_compressed_archive_says_it_is_compressed() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "c.tar", 2, 5);
    ok(Command::new("gzip").arg("-k").arg(&a));
    let out = tarfs().arg("embed").arg("--output").arg(d.path().join("x.tar")).arg(d.path().join("c.tar.gz")).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("c.tar.gz") && err.contains("gzip-compressed"), "{err}");
    assert!(!d.path().join("x.tar").exists());
}

#[test]
fn ls_reads_standard_input_plain_or_compressed() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "s.tar", 7, 100);
    ok(Command::new("xz").arg("-k").arg(&a));
    let want = ok(tarfs().arg("ls").arg("--json").arg(&a)).stdout;
    for input in [a.clone(), d.path().join("s.tar.xz")] {
        let out = ok(tarfs().arg("ls").arg("--json").arg("-").stdin(std::fs::File::open(&input).unwrap()));
        assert_eq!(String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&want), "{}", input.display());
    }
}

#[test]
fn create_writes_standard_output_keeps_fifos_and_names_owners() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    std::fs::create_dir_all(&src).unwrap();
    std::fs::write(src.join("file"), b"data\n").unwrap();
    ok(Command::new("mkfifo").arg(src.join("pipe")));
    let sock = std::os::unix::net::UnixListener::bind(src.join("sock")).unwrap();
    let out = ok(tarfs().arg("create").arg("-f").arg("-").arg("-C").arg(&src).arg("."));
    drop(sock);
    assert!(!d.path().join("-").exists() && !src.join("-").exists(), "no file named -");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("sock: socket left out"), "{err}");
    let tar = d.path().join("made.tar");
    std::fs::write(&tar, &out.stdout).unwrap();
    // GNU tar reads it: the FIFO as a FIFO, the owner by name.
    let listing = String::from_utf8_lossy(&ok(Command::new("tar").arg("-tvf").arg(&tar)).stdout).into_owned();
    assert!(listing.lines().any(|l| l.starts_with('p') && l.ends_with(" pipe")), "{listing}");
    assert!(listing.lines().any(|l| l.ends_with(" ./")) && !listing.lines().any(|l| l.ends_with(" /")), "{listing}");
    let me = String::from_utf8_lossy(&ok(Command::new("id").arg("-un")).stdout).trim().to_string();
    assert!(listing.lines().any(|l| l.contains(&format!(" {me}/")) && l.ends_with(" file")), "{listing}");
    assert!(!listing.contains("sock"), "{listing}");
}

#[test]
fn a_file_that_is_not_tar_says_so() {
    let d = tempfile::tempdir().unwrap();
    let text = d.path().join("notes.tar");
    std::fs::write(&text, b"just some text, not an archive\n").unwrap();
    let noise = d.path().join("noise.tar");
    common::write_pattern(&noise, 5000, 3);
    for f in [&text, &noise] {
        for verb in ["ls", "index"] {
            let out = tarfs().arg(verb).arg(f).output().unwrap();
            assert_eq!(out.status.code(), Some(1));
            let err = String::from_utf8_lossy(&out.stderr);
            assert!(err.contains(&format!("{}: does not look like a tar archive", f.display())), "{verb}: {err}");
        }
    }
}

#[test]
fn cat_reads_standard_input() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "s.tar", 5, 33);
    ok(Command::new("zstd").arg("-q").arg(&a));
    for input in [a.clone(), d.path().join("s.tar.zst")] {
        let out = ok(tarfs().arg("cat").arg("-").arg("m3").arg("m1").stdin(std::fs::File::open(&input).unwrap()));
        assert_eq!(out.stdout, vec![b'q'; 66], "{}", input.display());
        let missing = tarfs().arg("cat").arg("-").arg("nope").stdin(std::fs::File::open(&input).unwrap()).output().unwrap();
        assert_eq!(missing.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"), "{}", String::from_utf8_lossy(&missing.stderr));
    }
}

#[test]
fn index_dir_is_keyed_by_the_archives_canonical_path() {
    let d = tempfile::tempdir().unwrap();
    let (tape, other) = (d.path().join("tape"), d.path().join("other"));
    for t in [&tape, &other] {
        std::fs::create_dir_all(t.join("gnu")).unwrap();
    }
    small_tar(&tape.join("gnu"), "g01.tar", 3, 10);
    small_tar(&other.join("gnu"), "g01.tar", 5, 10); // the same layout, other contents
    let idx = d.path().join("idx");
    ok(tarfs().current_dir(d.path()).args(["index", "-q", "--index-dir", "idx", "tape", "other"]));
    // Given another name for the archive (relative, through `..`, a symbolic link), the reader
    // finds the sidecar and does not scan.
    std::os::unix::fs::symlink(tape.join("gnu/g01.tar"), d.path().join("link.tar")).unwrap();
    for (cwd, name) in [(d.path().to_path_buf(), "tape/gnu/g01.tar"), (tape.join("gnu"), "../gnu/./g01.tar"), (d.path().to_path_buf(), "link.tar")] {
        let out = ok(tarfs().current_dir(&cwd).args(["-v", "ls", "--index-dir"]).arg(&idx).arg(name));
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("using sidecar index"), "{name}: {err}");
        assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 3, "{name}");
    }
    // A subdirectory of the tree, given to verify, finds the sidecars the whole tree got.
    let out = ok(tarfs().current_dir(&tape).args(["-v", "verify", "--index-dir"]).arg(&idx).arg("gnu"));
    assert!(String::from_utf8_lossy(&out.stdout).contains(": ok: "), "{}", String::from_utf8_lossy(&out.stdout));
    // The two trees do not share sidecars: a second run skips both as fresh.
    let out = ok(tarfs().current_dir(d.path()).args(["index", "--index-dir", "idx", "tape", "other"]));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("0 failed") && err.contains("2 skipped") && !err.contains("indexed"), "{err}");
    let out = ok(tarfs().args(["ls", "--index-dir"]).arg(&idx).arg(other.join("gnu/g01.tar")));
    assert_eq!(String::from_utf8_lossy(&out.stdout).lines().count(), 5);
}

/// `--json` prints each archive's record as it finishes, not at the end of the batch: the first
/// archive's record arrives while the second (a FIFO no one writes yet) still blocks the batch.
/// Then a summary record ends the output.
#[test]
fn json_records_stream_and_end_with_a_summary() {
    use std::io::{BufRead, BufReader, Write};
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "a.tar", 3, 100);
    let fifo = d.path().join("f.tar");
    ok(Command::new("mkfifo").arg(&fifo));
    let mut child = tarfs().args(["index", "--json", "-j", "1"]).arg(&a).arg(&fifo).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let first: serde_json::Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!((first["type"].as_str(), first["action"].as_str(), first["members"].as_u64()), (Some("archive"), Some("indexed"), Some(3)), "{first}");
    assert!(child.try_wait().unwrap().is_none(), "the batch is still waiting for the FIFO");
    std::fs::File::create(&fifo).unwrap().write_all(&std::fs::read(&a).unwrap()).unwrap();
    let rest: Vec<serde_json::Value> = lines.map(|l| serde_json::from_str(&l.unwrap()).unwrap()).collect();
    assert!(child.wait().unwrap().success());
    assert_eq!(rest.len(), 2, "{rest:?}");
    assert_eq!((rest[0]["path"].as_str(), rest[0]["action"].as_str()), (fifo.to_str(), Some("indexed")));
    let s = &rest[1];
    assert_eq!((s["type"].as_str(), s["command"].as_str(), s["indexed"].as_u64(), s["failed"].as_u64(), s["members"].as_u64()), (Some("summary"), Some("index"), Some(2), Some(0), Some(6)), "{s}");
}

/// Skipped archives carry their member count; a dry run says "would"; recover says what it did.
#[test]
fn batch_reports_say_what_happened() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "a.tar", 4, 10);
    let run = |args: &[&str]| {
        let out = tarfs().args(args).arg("--json").arg(&a).output().unwrap();
        let recs: Vec<serde_json::Value> = String::from_utf8_lossy(&out.stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        (recs, String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let (recs, err) = run(&["index", "--dry-run"]);
    assert_eq!(recs[0]["action"], "would_index", "{recs:?}");
    assert_eq!(recs[1]["would_index"], 1);
    assert!(err.contains("index (dry run, nothing written): 1 would be indexed, 0 failed; 4 members"), "{err}");
    assert!(!d.path().join("a.tar.tarfs").exists());
    run(&["index"]);
    let (recs, _) = run(&["index"]);
    assert_eq!((recs[0]["action"].as_str(), recs[0]["members"].as_u64()), (Some("skipped"), Some(4)), "{recs:?}");
    for (cmd, would, would_be, did) in [("embed", "would_embed", "1 would be embedded", "1 embedded"), ("csv", "would_index", "1 would be indexed", "1 indexed")] {
        let (recs, err) = run(&[cmd, "--dry-run"]);
        assert_eq!(recs[0]["action"], would, "{cmd}: {recs:?}");
        assert!(err.contains(would_be) && !err.contains(did), "{cmd}: {err}");
        run(&[cmd]);
        let (recs, _) = run(&[cmd]);
        assert_eq!(recs[0]["action"], "skipped", "{cmd}: {recs:?}");
        assert!(recs[0]["members"].as_u64().unwrap() >= 4, "{cmd}: {recs:?}");
    }
    // A csv interrupted before its header is written is rolled back by recover, and one
    // interrupted after it is finished; each is said to be.
    for (step, action, said) in [("csv-data-written", "rolled_back", "recover: 1 rolled back, 0 failed"), ("csv-header-synced", "finished", "recover: 1 finished, 0 failed")] {
        let out = tarfs().args(["csv", "--force"]).arg(&a).env("TARFS_CRASH_AFTER", step).output().unwrap();
        assert_eq!(out.status.code(), Some(86), "{}", String::from_utf8_lossy(&out.stderr));
        let (recs, err) = run(&["recover"]);
        assert_eq!(recs[0]["action"], action, "{recs:?} {err}");
        assert!(err.contains(said) && !err.contains("indexed"), "{err}");
    }
}

/// `ls ARCHIVE MEMBER...` lists what tar -t lists for the same operands, with `--wildcards` and
/// `--exclude`; an operand that names nothing is an error after the listing, as in tar.
#[test]
fn ls_takes_members_wildcards_and_excludes_as_tar_does() {
    let d = tempfile::tempdir().unwrap();
    let src = d.path().join("src");
    for p in ["a/b/c.txt", "a/b/d.o", "a/bc", "x/y.o", "x/b/z", "top.txt"] {
        let f = src.join(p);
        std::fs::create_dir_all(f.parent().unwrap()).unwrap();
        std::fs::write(&f, p).unwrap();
    }
    let a = d.path().join("t.tar");
    ok(Command::new("tar").arg("-C").arg(&src).arg("-cf").arg(&a).args(["a", "x", "top.txt"]));
    ok(tarfs().arg("index").arg(&a));
    let cases: &[&[&str]] = &[
        &["a/b"],
        &["a/b", "top.txt"],
        &["--wildcards", "*.o"],
        &["--wildcards", "a/b*"],
        &["--exclude", "b"],
        &["--exclude", "*.o", "a"],
        &["--wildcards", "--exclude", "*/b/*", "*.txt"],
    ];
    for args in cases {
        let theirs = ok(Command::new("tar").arg("-tf").arg(&a).args(*args)).stdout;
        let ours = ok(tarfs().arg("ls").arg(&a).args(*args)).stdout;
        assert_eq!(String::from_utf8_lossy(&ours), String::from_utf8_lossy(&theirs), "{args:?}");
        assert!(!ours.is_empty(), "{args:?}");
        // The same through a scan (no index) and from standard input.
        let stdin = ok(tarfs().arg("ls").arg("-").args(*args).stdin(std::fs::File::open(&a).unwrap())).stdout;
        assert_eq!(stdin, ours, "{args:?} from stdin");
    }
    let out = tarfs().arg("ls").arg(&a).args(["a/b", "nope"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(out.stdout, ok(Command::new("tar").arg("-tf").arg(&a).arg("a/b")).stdout, "what was found is listed");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("{}: nope: not found in archive", a.display())), "{err}");
    // extract takes the same selection.
    let dest = d.path().join("out");
    std::fs::create_dir(&dest).unwrap();
    ok(tarfs().arg("extract").arg(&a).arg("-C").arg(&dest).args(["--wildcards", "--exclude", "*.o", "a/*"]));
    assert!(dest.join("a/b/c.txt").is_file() && dest.join("a/bc").is_file());
    assert!(!dest.join("a/b/d.o").exists() && !dest.join("x").exists());
}

/// `extract -` reads the archive from standard input, plain or compressed.
#[test]
fn extract_reads_standard_input() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "a.tar", 3, 1000);
    ok(Command::new("gzip").arg("-k").arg(&a));
    for input in [a.clone(), d.path().join("a.tar.gz")] {
        let dest = tempfile::tempdir().unwrap();
        ok(tarfs().arg("extract").arg("-").arg("-C").arg(dest.path()).arg("m1").stdin(std::fs::File::open(&input).unwrap()));
        assert_eq!(std::fs::read(dest.path().join("m1")).unwrap(), vec![b'q'; 1000]);
        assert!(!dest.path().join("m0").exists());
        // Nothing is left behind in the destination but the member.
        assert_eq!(std::fs::read_dir(dest.path()).unwrap().count(), 1);
    }
}

/// A write that fails names the archive and the file the user asked for, never tarfs's own
/// hidden temporary or journal files.
#[test]
fn failed_writes_name_the_users_files() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "a.tar", 3, 10);
    for cmd in ["index", "embed", "csv"] {
        let before = std::fs::read(&a).unwrap();
        let out = Command::new("strace").args(["-f", "-o", "/dev/null", "-e", "inject=fsync:error=EIO"]).arg(env!("CARGO_BIN_EXE_tarfs")).arg(cmd).arg(&a).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{cmd}: {err}");
        let first = err.lines().next().unwrap_or_default();
        assert!(first.starts_with(&format!("tarfs: {}: ", a.display())) && first.contains("Input/output error"), "{cmd}: {err}");
        assert!(!err.contains("tarfs-tmp") && !err.contains("tarfs-journal"), "{cmd}: {err}");
        assert_eq!(std::fs::read(&a).unwrap(), before, "{cmd}");
        let hidden: Vec<_> = std::fs::read_dir(d.path()).unwrap().map(|e| e.unwrap().file_name()).filter(|n| n.to_string_lossy().starts_with('.')).collect();
        assert!(hidden.is_empty(), "{cmd}: left {hidden:?}");
    }
}

/// `--help` fits 80 columns without breaking an example mid-phrase; the limits are listed under
/// their own heading, on the commands that read archives only.
#[test]
fn help_fits_and_limits_have_their_own_heading() {
    let help = |args: &[&str]| String::from_utf8(ok(tarfs().args(args).arg("--help").env("COLUMNS", "80")).stdout).unwrap();
    let top = help(&[]);
    for l in top.lines() {
        assert!(l.chars().count() <= 80, "{l:?}");
    }
    // Each example is a command line, with what it does on the next: none is cut in two.
    let examples: Vec<&str> = top.lines().skip_while(|l| *l != "Examples:").skip(1).collect();
    assert!(examples.len() >= 12, "{top}");
    for pair in examples.chunks(2) {
        assert!(pair[0].starts_with("  tarfs ") || pair[0].starts_with("  15 3 * * * tarfs"), "{pair:?}");
        assert!(pair[1].starts_with("      ") && pair[1].ends_with('.'), "{pair:?}");
    }
    for cmd in ["index", "embed", "csv", "ls", "cat", "extract", "verify"] {
        let h = help(&[cmd]);
        let (before, after) = h.split_once("Reading archives:").unwrap_or_else(|| panic!("{cmd}: no heading:\n{h}"));
        assert!(!before.contains("--max-chain") && after.contains("--max-chain") && after.contains("--lenient"), "{cmd}:\n{h}");
        for l in h.lines() {
            assert!(l.chars().count() <= 80, "{cmd}: {l:?}");
        }
    }
    for cmd in [&["man"][..], &["completions"], &["create"], &["recover"]] {
        let h = help(cmd);
        assert!(!h.contains("--max-chain") && !h.contains("--lenient") && !h.contains("Reading archives"), "{cmd:?}:\n{h}");
    }
}

/// The man page's references resolve: every tarfs-COMMAND(1) it names is a page `tarfs man`
/// writes, and `tarfs man COMMAND` prints it. Every page has an EXIT STATUS section.
#[test]
fn man_pages_exist_for_every_reference() {
    let d = tempfile::tempdir().unwrap();
    ok(tarfs().arg("man").arg("--out-dir").arg(d.path()));
    let top = std::fs::read_to_string(d.path().join("tarfs.1")).unwrap();
    assert_eq!(String::from_utf8(ok(tarfs().arg("man")).stdout).unwrap(), top);
    let refs: Vec<String> = top.split("tarfs\\-").skip(1).filter_map(|r| r.split_once("(1)").map(|(name, _)| name.to_string())).collect();
    assert!(refs.len() >= 10 && refs.contains(&"index".to_string()), "{refs:?}");
    for name in &refs {
        let page = std::fs::read_to_string(d.path().join(format!("tarfs-{name}.1"))).unwrap_or_else(|e| panic!("tarfs-{name}(1) is referenced but not written: {e}"));
        assert_eq!(String::from_utf8(ok(tarfs().arg("man").arg(name)).stdout).unwrap(), page, "{name}");
        assert!(page.contains(".SH \"EXIT STATUS\""), "{name}");
    }
    assert!(top.contains(".SH \"EXIT STATUS\"") && top.contains(".SH \"EXAMPLES\"") && !top.contains(".SH EXTRA"));
}

/// Issue #30, item 3: `--strip-components` counts as GNU tar does (`.` is a component, runs of
/// slashes are one separator, a leading slash is not counted), checked against GNU tar itself
/// on names of every such shape, for 1 to 3 components, hard links included.
#[test]
fn strip_components_counts_as_gnu_tar_does() {
    let tmp = tempfile::TempDir::new().unwrap();
    let a = tmp.path().join("s.tar");
    let script = r#"
import io, sys, tarfile
with tarfile.open(sys.argv[1], 'w', format=tarfile.GNU_FORMAT) as t:
    def add(n, kind=tarfile.REGTYPE, link=''):
        i = tarfile.TarInfo(n); i.type = kind; i.linkname = link; i.mtime = 1700000000
        data = n.encode() if kind == tarfile.REGTYPE else b''
        i.size = len(data)
        t.addfile(i, io.BytesIO(data) if data else None)
    for n in ['./', './usr/', './usr/bin/', './usr/bin/x', 'a2//b/f', '/a3/b/f', 'a4/./b/f', '././a5/b/f', 'd8/f', 'top', 'deep/er/still/f']:
        add(n, tarfile.DIRTYPE if n.endswith('/') else tarfile.REGTYPE)
    add('./usr/bin/hard', tarfile.LNKTYPE, './usr/bin/x')
"#;
    common::ok(Command::new("python3").arg("-c").arg(script).arg(&a));
    for n in 1..=3 {
        let (ours, theirs) = (tmp.path().join(format!("ours{n}")), tmp.path().join(format!("tar{n}")));
        std::fs::create_dir_all(&ours).unwrap();
        std::fs::create_dir_all(&theirs).unwrap();
        common::ok(common::tarfs().arg("extract").arg("--strip-components").arg(n.to_string()).arg(&a).arg("-C").arg(&ours));
        // GNU tar warns of the leading slash and of a hard link whose target it stripped away.
        let _ = Command::new("tar").arg("-xf").arg(&a).arg("--strip-components").arg(n.to_string()).arg("-C").arg(&theirs).output().unwrap();
        let tree = |d: &std::path::Path| String::from_utf8(common::ok(Command::new("find").arg(".").current_dir(d)).stdout).unwrap().lines().map(str::to_string).collect::<std::collections::BTreeSet<_>>();
        assert_eq!(tree(&ours), tree(&theirs), "--strip-components {n}");
        common::ok(Command::new("diff").arg("-r").arg(&ours).arg(&theirs));
    }
    // The Debian data.tar case of the issue: ./usr/bin/x less 1 is usr/bin/x.
    assert!(tmp.path().join("ours1/usr/bin/x").is_file());
}

/// Issue #30, item 9: `-v cat` counts the member's data among the bytes it read, not only its
/// header (it said 512 bytes for a 44 KB member), through a sidecar and through a scan.
#[test]
fn verbose_cat_counts_the_data_it_read() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "a.tar", 3, 45_000);
    let name = String::from_utf8(ok(Command::new("tar").arg("-tf").arg(&a)).stdout).unwrap().lines().nth(1).unwrap().to_string();
    for indexed in [false, true] {
        if indexed {
            ok(tarfs().arg("index").arg(&a));
        }
        let out = ok(tarfs().arg("-v").arg("cat").arg(&a).arg(&name));
        assert_eq!(out.stdout.len(), 45_000);
        let err = String::from_utf8_lossy(&out.stderr);
        let read: u64 = err.split("read ").nth(1).and_then(|s| s.split(' ').next()).and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{err}"));
        assert!(read >= 45_000, "indexed {indexed}: {err}");
    }
}

/// Issue #30, item 13: `index` writes no second index beside a fresh embedded one; it does
/// when the embedded one no longer answers, or with `--force`.
#[test]
fn index_leaves_an_archive_with_a_fresh_embedded_index_alone() {
    let d = tempfile::tempdir().unwrap();
    let a = small_tar(d.path(), "a.tar", 5, 3000);
    ok(tarfs().arg("embed").arg(&a));
    let side = d.path().join("a.tar.tarfs");
    let out = ok(tarfs().arg("index").arg("--json").arg(&a));
    let rec = String::from_utf8_lossy(&out.stdout);
    assert!(!side.exists(), "a sidecar beside a fresh embedded index: {rec}");
    assert!(rec.contains("\"action\":\"skipped\"") && rec.contains("embedded"), "{rec}");
    ok(tarfs().arg("index").arg("--force").arg(&a));
    assert!(side.is_file(), "--force writes one");
    std::fs::remove_file(&side).unwrap();
    // Appended members the embedded index does not describe: a sidecar is written.
    ok(Command::new("sh").arg("-c").arg(format!("cd {} && echo x > extra && tar -rf a.tar extra", d.path().display())));
    ok(tarfs().arg("index").arg(&a));
    assert!(side.is_file(), "no sidecar for an archive the embedded index no longer describes");
}
