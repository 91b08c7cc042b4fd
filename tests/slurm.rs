//! A batch as a Slurm array job (issue #35), on the single-node cluster `scripts/test.sh` starts
//! (`scripts/slurm/local-cluster.sh`) and names in `TARFS_TEST_SLURM_CONF`: the project's job
//! script, `scripts/slurm/tarfs-array.sbatch`, indexes 2,000 small archives in 8 tasks. Every
//! archive is indexed exactly once; the merged report counts what one machine's run counts; a
//! task cancelled in mid-run and requeued finishes, losing nothing and doing nothing twice; a
//! second submission finds every archive fresh.
//!
//! Without `TARFS_TEST_SLURM_CONF` (a developer's `cargo test`), the test says so and passes:
//! `scripts/test.sh`, which CI runs, always sets it, or fails to start the cluster.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{isolated, ok, tarfs};
use serde_json::Value;
use tarfs::batch::shard::{select, Shard, Weigh};
use tarfs::builder::Builder;
use tarfs::discover::Found;

const ARCHIVES: usize = 2_000;
const TASKS: u32 = 8;
/// The task cancelled in mid-run.
const CANCELLED: u32 = 3;

struct Cluster {
    conf: PathBuf,
}

impl Cluster {
    fn cmd(&self, program: &str) -> Command {
        let mut c = Command::new(program);
        isolated(&mut c).env("SLURM_CONF", &self.conf);
        c
    }

    fn run(&self, program: &str, args: &[&str]) -> String {
        String::from_utf8(ok(self.cmd(program).args(args)).stdout).unwrap().trim().to_string()
    }

    /// Submits the job script as an array of [`TASKS`] in `dir`, and returns the job id.
    fn submit(&self, dir: &Path, list: &Path, reports: &str, stall_on: &str) -> String {
        let export = format!("--export=ALL,TARFS={},TARFS_STALL_ON={stall_on}", env!("CARGO_BIN_EXE_tarfs"));
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/slurm/tarfs-array.sbatch");
        let array = format!("--array=0-{}", TASKS - 1);
        let out = ok(self.cmd("sbatch").current_dir(dir).args(["--parsable", &array, &export]).arg(script).args(["index", reports, "--files-from"]).arg(list));
        String::from_utf8(out.stdout).unwrap().trim().split(';').next().unwrap().to_string()
    }

    /// Waits until `job` (or one task of it) has left the queue.
    fn wait_gone(&self, job: &str) {
        let start = Instant::now();
        while !self.run("squeue", &["-h", "-j", job, "-o", "%i %T"]).is_empty() {
            assert!(start.elapsed() < Duration::from_secs(300), "job {job} still queued after 300 s: {}", self.run("squeue", &["-j", job]));
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// 2,000 archives of 1 to 4 members of various sizes, under 20 directories.
fn store(root: &Path) -> Vec<PathBuf> {
    (0..ARCHIVES)
        .map(|i| {
            let dir = root.join(format!("p{:02}", i % 20));
            fs::create_dir_all(&dir).unwrap();
            let mut b = Builder::new(Vec::new());
            for m in 0..(i % 4 + 1) {
                b.add(format!("m{m}"), &vec![b'a' + m as u8; (i * 37 + m * 911) % 6000]).unwrap();
            }
            let path = dir.join(format!("a{i:04}.tar"));
            fs::write(&path, b.finish().unwrap()).unwrap();
            path
        })
        .collect()
}

/// The `"type": "archive"` records of the tasks' logs (`REPORTS/shard-ID.jsonl`, appended to
/// across requeues).
fn records(reports: &Path) -> Vec<Value> {
    let mut all = Vec::new();
    for e in fs::read_dir(reports).into_iter().flatten() {
        let name = e.unwrap().file_name().into_string().unwrap();
        if name.ends_with(".jsonl") {
            let text = fs::read_to_string(reports.join(&name)).unwrap();
            all.extend(text.lines().filter(|l| l.starts_with('{')).map(|l| serde_json::from_str::<Value>(l).unwrap()).filter(|v| v["type"] == "archive"));
        }
    }
    all
}

fn times(records: &[Value], action: &str) -> BTreeMap<String, usize> {
    let mut n = BTreeMap::new();
    for r in records.iter().filter(|r| r["action"] == action) {
        *n.entry(r["path"].as_str().unwrap().to_string()).or_default() += 1;
    }
    n
}

/// `tarfs report --json` of the reports in `dir`, and its exit status.
fn merged(dir: &Path) -> (Value, Option<i32>) {
    let mut reports: Vec<PathBuf> = fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|x| x == "json")).collect();
    reports.sort();
    let out = tarfs().arg("report").arg("--json").args(&reports).output().unwrap();
    (serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stderr))), out.status.code())
}

#[test]
fn an_array_job_indexes_each_archive_once() {
    let Some(conf) = std::env::var_os("TARFS_TEST_SLURM_CONF") else {
        eprintln!("no TARFS_TEST_SLURM_CONF: no Slurm cluster to submit to (scripts/test.sh starts one)");
        return;
    };
    let cluster = Cluster { conf: conf.into() };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let paths = store(&dir.join("store"));
    let list = dir.join("list");
    fs::write(&list, paths.iter().map(|p| format!("{}\n", p.display())).collect::<String>()).unwrap();

    // One machine's run, on a copy, for the counts the shards must add up to.
    ok(Command::new("cp").arg("-a").arg(dir.join("store")).arg(dir.join("alone")));
    ok(tarfs().args(["index", "-q", "--report"]).arg(dir.join("alone.json")).arg(dir.join("alone")));
    let alone: Value = serde_json::from_slice(&fs::read(dir.join("alone.json")).unwrap()).unwrap();
    assert_eq!(alone["totals"]["indexed"], ARCHIVES);

    // The task to cancel stalls on an archive in the middle of its share (it starts the largest
    // first, on one core), so that it has indexed some and not others when it is cancelled.
    let found: Vec<Found> = paths.iter().map(|p| Found { path: p.clone() }).collect();
    let mut share: Vec<(usize, u64, PathBuf)> = select(found, Shard::new(CANCELLED, TASKS).unwrap(), Weigh::Bytes).into_iter().enumerate().map(|(i, f)| (i, fs::metadata(&f.path).unwrap().len(), f.path)).collect();
    share.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let before = share.len() / 2;
    let stalled = &share[before].2;
    let marker = PathBuf::from(format!("{}.stall", stalled.display()));
    fs::write(&marker, b"").unwrap();

    let job = cluster.submit(dir, &list, "reports", stalled.file_name().unwrap().to_str().unwrap());
    let task = format!("{job}_{CANCELLED}");
    let start = Instant::now();
    while records(&dir.join("reports")).iter().filter(|r| share.iter().any(|s| r["path"] == s.2.to_str().unwrap())).count() < before {
        assert!(start.elapsed() < Duration::from_secs(300), "task {task} did not reach its stalled archive: {}", cluster.run("squeue", &["-j", &job]));
        std::thread::sleep(Duration::from_millis(200));
    }
    ok(cluster.cmd("scancel").arg(&task));
    // Requeued once Slurm has it cancelled, its processes gone (SIGTERM, then SIGKILL after
    // KillWait), and made eligible at once (a requeued job otherwise waits two minutes).
    cluster.wait_gone(&task);
    let indexed_then = times(&records(&dir.join("reports")), "indexed");
    assert!(!indexed_then.contains_key(stalled.to_str().unwrap()), "the stalled archive was indexed before the cancel");
    fs::remove_file(&marker).unwrap();
    ok(cluster.cmd("scontrol").args(["requeue", &task]));
    let start = Instant::now();
    while !cluster.run("scontrol", &["show", "job", &task]).contains("JobState=PENDING") {
        assert!(start.elapsed() < Duration::from_secs(60), "task {task} not pending after its requeue");
        std::thread::sleep(Duration::from_millis(100));
    }
    ok(cluster.cmd("scontrol").args(["update", &format!("jobid={task}"), "StartTime=now"]));
    cluster.wait_gone(&job);

    // Every archive indexed exactly once, in all the tasks' runs, the cancelled one's two
    // included; the requeued run skipped what its first had done.
    let all = records(&dir.join("reports"));
    let indexed = times(&all, "indexed");
    assert_eq!(indexed.len(), ARCHIVES, "archives indexed");
    assert!(indexed.values().all(|&n| n == 1), "indexed twice: {:?}", indexed.iter().filter(|(_, &n)| n > 1).collect::<Vec<_>>());
    for p in &paths {
        assert!(p.with_extension("tar.tarfs").is_file(), "no sidecar for {}", p.display());
    }
    let skipped = times(&all, "skipped");
    let done_first: Vec<&String> = indexed_then.keys().filter(|p| share.iter().any(|s| s.2.to_str() == Some(p.as_str()))).collect();
    assert!(done_first.len() >= before, "{} of the cancelled task's archives done before the cancel", done_first.len());
    assert!(done_first.iter().all(|p| skipped.get(*p) == Some(&1)), "the requeued task did not skip what it had done");
    assert!(all.iter().any(|r| r["action"] == "skipped" && r["reason"].as_str().unwrap().starts_with("handled by an earlier run")), "the requeued task read its log (--resume)");
    let others: Vec<&String> = skipped.keys().filter(|p| !done_first.contains(p)).collect();
    assert!(others.is_empty(), "skipped, though the cancelled task had not done them: {others:?}");

    // The merged report counts what one machine's run counts.
    let (m, code) = merged(&dir.join("reports"));
    assert_eq!(code, Some(0), "{m}");
    assert_eq!((m["reports"].as_u64(), m["shards"].as_u64(), m["missing"].as_array().map(Vec::len)), (Some(8), Some(8), Some(0)));
    let mut t = m["totals"].clone();
    // The requeued task's report counts what it skipped: what its first run had indexed (its
    // log said so: --resume), with the members that run counted.
    t["indexed"] = (t["indexed"].as_u64().unwrap() + t["skipped"].as_u64().unwrap()).into();
    t["skipped"] = 0.into();
    assert_eq!(t, alone["totals"]);

    // A second submission finds every archive fresh.
    let again = cluster.submit(dir, &list, "again", "none");
    cluster.wait_gone(&again);
    let (m, code) = merged(&dir.join("again"));
    assert_eq!(code, Some(0), "{m}");
    assert_eq!((m["totals"]["skipped"].as_u64(), m["totals"]["indexed"].as_u64(), m["totals"]["bytes"].clone()), (Some(ARCHIVES as u64), Some(0), alone["totals"]["bytes"].clone()));
    assert_eq!(times(&records(&dir.join("again")), "skipped").len(), ARCHIVES);
}
