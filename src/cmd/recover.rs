//! `tarfs recover`: finish or undo an in-place change that was interrupted, using its journal,
//! and remove the temporary files killed runs left (beside the archive, and its sidecar's,
//! under `--index-dir` if given).

use std::path::{Path, PathBuf};

use anyhow::Result;
use tarfs::archive::sidecar_path;
use tarfs::batch::{self, Action, Done, Progress};
use tarfs::discover::Found;
use tarfs::ops::in_place::{remove_stale_temps, Target};
use tarfs::ops::journal::Recovery;

use crate::config::Config;
use crate::{warn, Status};

pub fn run(cfg: &Config<'_>) -> Result<Status> {
    let job = |f: &Found, _: &dyn Progress| -> tarfs::Result<Done> {
        // Temporary files that killed runs left: removed whatever the recovery does.
        let sidecar = sidecar_path(&f.path, cfg.index_dir.as_ref());
        let removed = remove_stale_temps(&f.path, &sidecar)?;
        let note = removed_note(&removed);
        // A compressed archive is never changed in place (recompress replaces it through a
        // temporary file): it has no journal, only temporary files.
        if is_compressed(&f.path) {
            return Ok(Done { action: Action::Skipped, reason: Some(format!("nothing to recover (compressed){note}")), members: None, index_path: None, warning: None });
        }
        let recovered = Target::recover_only(&f.path).inspect_err(|_| {
            if !note.is_empty() {
                warn(format!("{}: {}", f.path.display(), note.trim_start_matches("; ")));
            }
        })?;
        let (action, reason) = match recovered {
            None => (Action::Skipped, "nothing to recover"),
            Some(Recovery::Finished) => (Action::Finished, "recovered: finished the interrupted change"),
            Some(Recovery::RolledBack) => (Action::RolledBack, "recovered: rolled back the interrupted change; the archive is as it was"),
        };
        Ok(Done { action, reason: Some(format!("{reason}{note}")), members: None, index_path: None, warning: None })
    };
    let line = |o: &batch::Outcome| format!("{}: {}", o.path.display(), o.reason.as_deref().unwrap_or_default());
    super::batch::run(cfg, job, Some(&line), None)
}

/// Whether the regular file at `path` starts as a compressed stream (unreadable: no).
fn is_compressed(path: &Path) -> bool {
    use std::io::Read;
    use tarfs::format::compression::Compression;
    // Not opened unless regular: a FIFO would block the open.
    if !std::fs::metadata(path).is_ok_and(|m| m.is_file()) {
        return false;
    }
    let mut head = Vec::with_capacity(Compression::HEAD);
    let read = std::fs::File::open(path).and_then(|f| f.take(Compression::HEAD as u64).read_to_end(&mut head));
    read.is_ok() && Compression::detect(&head).is_some()
}

/// What `recover` says of the temporary files it removed (empty when none): `; removed N
/// temporary file(s) left by a killed run: NAMES`.
fn removed_note(removed: &[PathBuf]) -> String {
    if removed.is_empty() {
        return String::new();
    }
    let names: Vec<String> = removed.iter().map(|p| p.display().to_string()).collect();
    let what = if removed.len() == 1 { "temporary file" } else { "temporary files" };
    format!("; removed {} {what} left by a killed run: {}", removed.len(), names.join(", "))
}
