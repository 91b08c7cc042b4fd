//! `tarfs embed`: a `.tarfs` index as the first member of each archive, in place (or, with
//! `--output`, in a new archive). Where moving members would change what tar extracts, the
//! whole archive is shifted (`--no-shift` refuses instead). With `--or-sidecar`, an archive that
//! cannot be embedded (for what it is: compressed, read-only, members that must not move with
//! `--no-shift`) gets a sidecar instead,
//! written as `tarfs index` writes it.

use std::sync::atomic::AtomicBool;

use anyhow::Result;
use tarfs::batch::{self, Action, Done, Progress};
use tarfs::discover::Found;
use tarfs::error::RefusedFor;
use tarfs::ops::embed::{embed, embed_to, EmbedAction, EmbedOptions, EmbedReport};
use tarfs::ops::index::IndexOptions;
use tarfs::ops::plan::{PlanOptions, When};

use crate::cli::EmbedArgs;
use crate::config::{one_archive, Config};
use crate::{warn, Status};

pub fn run(cfg: &Config<'_>, a: &EmbedArgs) -> Result<Status> {
    let opts = EmbedOptions { scan: cfg.scan, force: a.force, dry_run: a.dry_run, max_growth: a.max_growth, no_shift: a.no_shift, format: a.format, erofs: a.erofs, digests: a.digests };
    if let Some(out) = &a.output {
        let input = one_archive(&a.walk, "--output")?;
        let r = embed_to(input, out, opts)?;
        if cfg.verbose {
            warn(format!("{}: {}, index first, {} bytes written", out.display(), batch::count(r.members, "member", "members"), r.bytes_written));
        }
        return Ok(Status::Ok);
    }
    let index = IndexOptions { scan: cfg.scan, digests: a.digests, ..IndexOptions::default() };
    let how = PlanOptions { index: &index, index_dir: cfg.index_dir.as_ref(), output: None, when: When::Stale, dry_run: a.dry_run, record_size: None };
    let told = AtomicBool::new(false);
    let job = |f: &Found, progress: &dyn Progress| -> tarfs::Result<Done> {
        if let Some(c) = super::batch::compressed_in_walk(cfg, f).filter(|_| !cfg.or_sidecar) {
            let why = format!("{}-compressed: embed changes only uncompressed tars (--or-sidecar writes a sidecar instead)", c.name());
            progress.note(&f.path, &format!("skipped: {why}"));
            return Ok(Done { action: Action::Skipped, reason: Some(why), members: None, index_path: None, warning: None });
        }
        match embed(&f.path, opts) {
            // Refused for what the archive is (not for the moment, nor for an I/O error).
            Err(tarfs::Error::Refused { msg, what: RefusedFor::Archive, .. }) if cfg.or_sidecar => {
                let done = super::index::sidecar(cfg, &f.path, &how, progress, &told)?;
                let reason = format!("a sidecar instead ({msg}): {}", done.reason.as_deref().unwrap_or_default());
                Ok(Done { reason: Some(reason), ..done })
            }
            r => Ok(embedded(&r?, f, a.dry_run)),
        }
    };
    super::batch::run(cfg, job, None, None)
}

/// What embedding `f` did, for its report.
fn embedded(r: &EmbedReport, f: &Found, dry_run: bool) -> Done {
    // A dry run says what it would write, in the same words.
    let (done, written, grew) = if dry_run { (Action::WouldEmbed, "to write", "grows") } else { (Action::Embedded, "written", "grew") };
    let (action, reason) = match r.action {
        EmbedAction::UpToDate => (Action::Skipped, "index up to date".to_string()),
        EmbedAction::Reindexed => match r.grew {
            Some(g) => (done, format!("re-indexed in place from the old end (grew: {} kept, {} read); {} bytes {written}", batch::count(g.kept, "member", "members"), batch::count(g.read, "byte", "bytes"), r.bytes_written)),
            None => (done, format!("re-indexed in place{}; {} bytes {written}", in_full(r), r.bytes_written)),
        },
        EmbedAction::Embedded => {
            let full = r.in_full.as_ref().map(|why| format!("in full: {why}; ")).unwrap_or_default();
            let members = batch::count(r.displaced, "member", "members");
            (done, format!("{full}displaced {} bytes ({members} to the end); {} bytes {written}, the archive {grew} by {} bytes", r.moved, r.bytes_written, r.growth))
        }
        EmbedAction::Shifted => {
            let full = r.in_full.as_ref().map(|why| format!("in full: {why}; ")).unwrap_or_default();
            (done, format!("{full}shifted the archive, {} bytes moved; {} bytes {written}, the archive {grew} by {} bytes", r.moved, r.bytes_written, r.growth))
        }
    };
    let reason = match r.erofs {
        Some((at, len)) => format!("{reason}; EROFS image of {len} bytes at byte {at} (mount -t erofs -o fsoffset={at},device=ARCHIVE ARCHIVE MNT)"),
        None => reason,
    };
    // What the image leaves out, the mount does not show either (`tarfs mount` says so too).
    let left_out: Vec<String> = r.erofs_left_out.iter().map(|(name, why)| format!("{}: {why}", tarfs::quote::diag(name))).collect();
    let warning = (!left_out.is_empty()).then(|| format!("not in the EROFS image: {}", left_out.join("; ")));
    Done { action, reason: Some(reason), members: Some(r.members), index_path: Some(f.path.clone()), warning }
}

/// Why `embed` surveyed the whole archive though it had an embedded index, for the report.
fn in_full(r: &EmbedReport) -> String {
    r.in_full.as_ref().map(|why| format!(" (in full: {why})")).unwrap_or_default()
}
