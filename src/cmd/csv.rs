//! `tarfs csv`: a `.tarindex_N.csv` index member appended to each archive, in place.

use anyhow::Result;
use tarfs::batch::{Action, Done, Progress};
use tarfs::discover::Found;
use tarfs::ops::append_csv::{append_csv_index, CsvOptions, CsvOutcome};

use crate::cli::CsvArgs;
use crate::config::Config;
use crate::Status;

pub fn run(cfg: &Config<'_>, a: &CsvArgs) -> Result<Status> {
    let opts = CsvOptions { scan: cfg.scan, skip_fresh: !a.force, dry_run: a.dry_run };
    let job = |f: &Found, progress: &dyn Progress| -> tarfs::Result<Done> {
        if let Some(c) = super::batch::compressed_in_walk(cfg, f) {
            let why = format!("{}-compressed: csv appends only to uncompressed tars (`tarfs index` writes a sidecar)", c.name());
            progress.note(&f.path, &format!("skipped: {why}"));
            return Ok(Done { action: Action::Skipped, reason: Some(why), members: None, index_path: None, warning: None });
        }
        Ok(match append_csv_index(&f.path, opts)? {
            CsvOutcome::Fresh { name, rows } => {
                Done { action: Action::Skipped, reason: Some(format!("{name} already lists every member")), members: Some(rows), index_path: None, warning: None }
            }
            CsvOutcome::Appended(r) => Done {
                action: if a.dry_run { Action::WouldIndex } else { Action::Indexed },
                reason: Some(if a.dry_run { format!("{} to be appended at byte {}", r.name, r.offset) } else { format!("appended {} at byte {}", r.name, r.offset) }),
                members: Some(r.rows),
                index_path: None,
                warning: None,
            },
        })
    };
    super::batch::run(cfg, job, None, None)
}
