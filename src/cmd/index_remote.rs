//! `tarfs index` of an archive that is not a local file (`s3://BUCKET/KEY`): carrying out
//! [`Plan::Remote`](tarfs::ops::plan::Plan::Remote) with [`tarfs::ops::remote`], and its words.

use std::path::{Path, PathBuf};

use tarfs::archive::ArchiveFile;
use tarfs::batch::{Action, Done};
use tarfs::ops::index::IndexOptions;
use tarfs::ops::plan::Why;

use super::index::{done, indexed};
use super::notes::{ext_note, no_seek_note};

/// Indexes `archive` into `local`, or its own store.
pub fn apply(archive: &dyn ArchiveFile, local: Option<&Path>, why: Why, opts: &IndexOptions) -> tarfs::Result<Done> {
    let r = tarfs::ops::remote::write_remote_sidecar(archive, local, opts)?;
    if !r.stored {
        let reason = "another writer's index was written first (a conditional put); it is kept".to_string();
        return Ok(done(Action::Skipped, reason, None, r.report.index_path, None));
    }
    Ok(indexed(format!("{why}{}{}", ext_note(&r.report), no_seek_note(r.no_seek.as_ref())), &r.report, r.report.index_path.clone()))
}

/// What a dry run says: where the index would go, and why.
pub fn dry_run(archive: &dyn ArchiveFile, local: Option<PathBuf>, why: Why) -> Done {
    let dest = local.or_else(|| archive.index_store().map(|s| s.name())).unwrap_or_default();
    done(Action::WouldIndex, why.to_string(), None, dest, None)
}
