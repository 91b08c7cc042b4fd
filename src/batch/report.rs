//! A batch's report file (`--report FILE`): its totals, its failures with their reasons, its
//! seconds and which shard it was, written atomically at the end of the run, so that a task
//! killed mid-run leaves no report (or the one of its last complete run) and never half of one.
//! [`merge`] adds up the reports of a sharded run (`tarfs report FILE...`) and says which shards
//! are missing or were reported twice.

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::shard::Shard;
use super::{Action, Failure, Outcome, Summary};
use crate::error::{Error, Result, UsageError};

/// The report format's version, checked on reading.
pub const VERSION: u32 = 1;

/// One run's report.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    /// [`VERSION`].
    pub tarfs_report: u32,
    /// The batch command (`index`, `verify`, ...).
    pub command: String,
    /// Whether it was a dry run.
    pub dry_run: bool,
    /// The shard, when the run was one.
    pub shard: Option<ShardOf>,
    /// The totals.
    pub totals: Summary,
    /// Wall-clock seconds of the run.
    pub seconds: f64,
    /// The archives that failed or were busy, with why.
    pub failures: Vec<Failed>,
}

/// Which shard a report is of: `index` counted from 1, as `--shard K/N` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardOf {
    /// K, from 1.
    pub index: u32,
    /// N.
    pub count: u32,
}

impl From<Shard> for ShardOf {
    fn from(s: Shard) -> ShardOf {
        ShardOf { index: s.index() + 1, count: s.count() }
    }
}

/// An archive that failed (or was busy), and why.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Failed {
    /// The archive.
    pub path: PathBuf,
    /// `failed` or `busy`.
    pub action: Action,
    /// Why.
    pub error: Failure,
}

impl Report {
    /// The report of a run of `command` over `outcomes`, whose walk met `walk_errors` (a
    /// directory that could not be read: listed with the failures, though no archive's).
    pub fn of(command: &str, dry_run: bool, shard: Option<Shard>, outcomes: &[Option<Outcome>], walk_errors: &[Error], seconds: f64) -> Report {
        let walk = walk_errors.iter().map(|e| Failed { path: if let Error::Io { path, .. } = e { path.clone() } else { PathBuf::new() }, action: Action::Failed, error: Failure { message: e.to_string(), offset: None } });
        let failures = outcomes
            .iter()
            .flatten()
            .filter_map(|o| Some(Failed { path: o.path.clone(), action: o.action, error: o.error.clone()? }))
            .chain(walk)
            .collect();
        Report { tarfs_report: VERSION, command: command.to_string(), dry_run, shard: shard.map(ShardOf::from), totals: Summary::of(outcomes), seconds, failures }
    }

    /// Writes the report to `dest` atomically (a temporary file beside it, fsynced, renamed).
    pub fn write(&self, dest: &Path) -> Result<()> {
        crate::ops::atomic::write_atomic(dest, |out| {
            serde_json::to_writer_pretty(&mut *out, self).map_err(std::io::Error::from).and_then(|()| writeln!(out)).map_err(|source| Error::Io { path: dest.to_path_buf(), source })
        })
    }

    /// Reads the report at `path`.
    pub fn read(path: &Path) -> Result<Report> {
        let text = std::fs::read(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let report: Report = serde_json::from_slice(&text).map_err(|source| Error::NotAReport { path: path.to_path_buf(), source })?;
        if report.tarfs_report != VERSION {
            return Err(Error::Usage { what: UsageError::ReportVersion { path: path.to_path_buf(), version: report.tarfs_report } });
        }
        Ok(report)
    }
}

/// The archives that `log`, the `--json` lines of earlier runs (appended to across runs, as
/// the Slurm job script does), says were handled: each `"type": "archive"` record whose action
/// is neither `failed`, `busy` nor a dry run's, with its members where counted. A log that does not exist yet names none; a line
/// that does not parse (the last, cut short by a kill) is passed over.
pub fn handled_in(log: &Path) -> Result<HashMap<PathBuf, Option<u64>>> {
    #[derive(Deserialize)]
    struct Record {
        #[serde(rename = "type")]
        kind: String,
        path: PathBuf,
        action: Action,
        members: Option<u64>,
    }
    let text = match std::fs::read(log) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(HashMap::new()),
        Err(source) => return Err(Error::Io { path: log.to_path_buf(), source }),
    };
    let done = |a: Action| !matches!(a, Action::Failed | Action::Busy | Action::WouldIndex | Action::WouldEmbed | Action::WouldRecompress);
    Ok(text.split(|&b| b == b'\n').filter_map(|l| serde_json::from_slice::<Record>(l).ok()).filter(|r| r.kind == "archive" && done(r.action)).map(|r| (r.path, r.members)).collect())
}

/// Reports added up.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Merged {
    /// The command they are of.
    pub command: String,
    /// Whether they were dry runs.
    pub dry_run: bool,
    /// How many reports.
    pub reports: usize,
    /// The shards' count (N), when they were shards.
    pub shards: Option<u32>,
    /// Shards (from 1) that no report is of.
    pub missing: Vec<u32>,
    /// Shards (from 1) that more than one report is of.
    pub repeated: Vec<u32>,
    /// The totals of all.
    pub totals: Summary,
    /// The seconds of the slowest: the run's wall-clock time, where the shards ran at once.
    pub seconds: f64,
    /// The seconds of all, added: what the run cost.
    pub task_seconds: f64,
    /// Every failure.
    pub failures: Vec<Failed>,
}

impl Merged {
    /// Whether every archive of the run was handled: no failure (nor a directory that could not
    /// be walked), none busy, none left unstarted, no shard missing.
    pub fn complete(&self) -> bool {
        let t = &self.totals;
        t.failed == 0 && t.busy == 0 && t.not_started == 0 && self.missing.is_empty() && self.failures.is_empty()
    }
}

/// Adds up `reports` (each with its path, for errors). They must be of one command, and all
/// shards of one count or none sharded.
pub fn merge(reports: Vec<(PathBuf, Report)>) -> Result<Merged> {
    let Some((first_path, first)) = reports.first() else {
        return Err(Error::Usage { what: UsageError::NoReports });
    };
    let count = first.shard.map(|s| s.count);
    let mut seen = vec![0u32; count.unwrap_or(0) as usize];
    let mut m = Merged { command: first.command.clone(), dry_run: first.dry_run, reports: reports.len(), shards: count, missing: vec![], repeated: vec![], totals: Summary::default(), seconds: 0.0, task_seconds: 0.0, failures: vec![] };
    for (path, r) in reports.iter() {
        if r.command != first.command || r.shard.map(|s| s.count) != count || r.dry_run != first.dry_run {
            return Err(Error::Usage { what: UsageError::ReportsDisagree { one: first_path.clone(), other: path.clone() } });
        }
        if let Some(s) = r.shard {
            let Some(n) = seen.get_mut((s.index as usize).wrapping_sub(1)) else {
                return Err(Error::Usage { what: UsageError::ReportsDisagree { one: first_path.clone(), other: path.clone() } });
            };
            *n += 1;
        }
        m.totals.add(&r.totals);
        m.seconds = m.seconds.max(r.seconds);
        m.task_seconds += r.seconds;
        // Every task walks every directory: one that could not be read is in each report.
        for f in &r.failures {
            if !m.failures.contains(f) {
                m.failures.push(f.clone());
            }
        }
    }
    m.missing = (1..).zip(&seen).filter(|(_, &n)| n == 0).map(|(k, _)| k).collect();
    m.repeated = (1..).zip(&seen).filter(|(_, &n)| n > 1).map(|(k, _)| k).collect();
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handled_in_a_log_of_earlier_runs() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("log.jsonl");
        assert!(handled_in(&log).unwrap().is_empty(), "no log yet");
        let lines = [
            r#"{"type":"archive","path":"a.tar","action":"verified","bytes":1,"seconds":0.1}"#,
            r#"{"type":"archive","path":"b.tar","action":"failed","bytes":1,"seconds":0.1}"#,
            r#"{"type":"archive","path":"c.tar","action":"skipped","members":3,"bytes":1,"seconds":0.1}"#,
            r#"{"type":"archive","path":"d.tar","action":"would_index","bytes":1,"seconds":0.1}"#,
            r#"{"type":"summary","command":"verify"}"#,
            r#"{"type":"archive","path":"e.tar","act"#,
        ];
        std::fs::write(&log, lines.join("\n")).unwrap();
        let done = handled_in(&log).unwrap();
        assert_eq!(done, HashMap::from([(PathBuf::from("a.tar"), None), (PathBuf::from("c.tar"), Some(3))]));
        assert!(matches!(handled_in(dir.path()), Err(Error::Io { .. })), "a directory cannot be read");
    }

    fn report(command: &str, shard: Option<(u32, u32)>, indexed: u64, failed: &[&str]) -> (PathBuf, Report) {
        let totals = Summary { indexed, failed: failed.len() as u64, ..Summary::default() };
        let failures = failed.iter().map(|p| Failed { path: p.into(), action: Action::Failed, error: Failure { message: format!("{p}: bad"), offset: Some(512) } }).collect();
        let shard = shard.map(|(index, count)| ShardOf { index, count });
        (format!("{command}-{shard:?}.json").into(), Report { tarfs_report: VERSION, command: command.into(), dry_run: false, shard, totals, seconds: indexed as f64, failures })
    }

    #[test]
    fn merges_counts_failures_and_names_missing_and_repeated_shards() {
        let m = merge(vec![report("index", Some((1, 4)), 3, &[]), report("index", Some((3, 4)), 5, &["x.tar"]), report("index", Some((3, 4)), 5, &[])]).unwrap();
        assert_eq!((m.totals.indexed, m.totals.failed, m.seconds, m.task_seconds), (13, 1, 5.0, 13.0));
        assert_eq!((m.missing.clone(), m.repeated.clone()), (vec![2, 4], vec![3]));
        assert_eq!(m.failures[0].error.offset, Some(512));
        assert!(!m.complete());
        let whole = merge(vec![report("verify", Some((2, 2)), 1, &[]), report("verify", Some((1, 2)), 1, &[])]).unwrap();
        assert!(whole.complete(), "{whole:?}");
        for other in [report("verify", Some((1, 2)), 1, &[]), report("index", Some((1, 3)), 1, &[]), report("index", None, 1, &[]), report("index", Some((5, 2)), 1, &[])] {
            let e = merge(vec![report("index", Some((1, 2)), 1, &[]), other]).unwrap_err();
            assert!(matches!(e, Error::Usage { what: UsageError::ReportsDisagree { .. } }), "{e}");
        }
        assert!(matches!(merge(vec![]), Err(Error::Usage { what: UsageError::NoReports })));
    }

    #[test]
    fn written_atomically_and_read_back() {
        let dir = tempfile::tempdir().unwrap();
        let dest = dir.path().join("r.json");
        let (_, r) = report("csv", Some((2, 3)), 7, &["a.tar"]);
        r.write(&dest).unwrap();
        assert_eq!(Report::read(&dest).unwrap(), r);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "no temporary file left");
        std::fs::write(&dest, b"{\"tarfs_report\": 1,").unwrap();
        assert!(matches!(Report::read(&dest), Err(Error::NotAReport { .. })));
        std::fs::write(&dest, serde_json::to_vec(&Report { tarfs_report: 9, ..r }).unwrap()).unwrap();
        assert!(matches!(Report::read(&dest), Err(Error::Usage { what: UsageError::ReportVersion { version: 9, .. } })));
    }
}
