//! `tarfs create`: a new archive from files, with its `.tarfs` index as the first member.

use anyhow::Result;
use tarfs::batch;
use tarfs::ops::create::{create, CreateOptions};

use crate::cli::CreateArgs;
use crate::config::Config;
use crate::warn;

/// Whether every file was read whole (a file that changed as it was read makes the exit status
/// 1, as GNU tar's does, though the archive is written).
pub fn run(cfg: &Config<'_>, a: &CreateArgs) -> Result<bool> {
    let r = create(&a.out, &a.dir, &a.paths, CreateOptions { format: a.format, digests: !a.no_digests })?;
    for s in &r.skipped {
        warn(s);
    }
    for c in &r.changed {
        warn(c);
    }
    if cfg.verbose {
        warn(format!("{}: {}, index first", a.out.display(), batch::count(r.members, "member", "members")));
    }
    Ok(r.changed.is_empty())
}
