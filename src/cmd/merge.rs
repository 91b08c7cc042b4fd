//! `tarfs report FILE...`: the reports of a sharded batch's tasks (`--report`) merged into one
//! summary ([`tarfs::batch::report::merge`]). Each failure is a line on stdout, `PATH: reason`,
//! then the totals; missing shards are said on stderr. Exit status 1 unless every archive of
//! every shard was handled.

use std::io::Write;

use anyhow::Result;
use tarfs::batch::report::{merge, Merged, Report};

use super::notes::summary_line;
use crate::cli::ReportArgs;
use crate::{status, warn, Status};

pub fn run(a: &ReportArgs) -> Result<Status> {
    let reports = a.reports.iter().map(|p| Report::read(p).map(|r| (p.clone(), r))).collect::<tarfs::Result<Vec<_>>>()?;
    let m = merge(reports)?;
    let mut out = std::io::stdout().lock();
    if a.json {
        serde_json::to_writer(&mut out, &m)?;
        writeln!(out)?;
    } else {
        for f in &m.failures {
            // The message names the archive already, as a batch's does.
            writeln!(out, "{}", f.error.message)?;
        }
        writeln!(out, "{}", totals(&m))?;
    }
    out.flush()?;
    for k in &m.missing {
        warn(format!("report: no report of shard {k}/{}: its archives are not counted", m.shards.unwrap_or_default()));
    }
    for k in &m.repeated {
        warn(format!("report: shard {k}/{} is reported more than once: its archives are counted twice", m.shards.unwrap_or_default()));
    }
    Ok(status(m.complete() && m.repeated.is_empty()))
}

/// The summary line of the merged run: the batch's own, with the shards and what they cost.
fn totals(m: &Merged) -> String {
    let line = summary_line(&m.command, m.dry_run, &m.totals, m.seconds);
    let shards = match m.shards {
        Some(n) => format!("{} of {n} shards", n as usize - m.missing.len()),
        None => tarfs::batch::count(m.reports as u64, "report", "reports"),
    };
    format!("{line} ({shards}; {:.2} s in all)", m.task_seconds)
}
