//! `tarfs embed`: a `.tarfs` index as the first member of each archive, in place (or, with
//! `--output`, in a new archive).

use anyhow::Result;
use tarfs::batch::{self, Action, Done, Progress};
use tarfs::discover::Found;
use tarfs::ops::embed::{embed, embed_to, EmbedAction, EmbedOptions, EmbedReport};

use crate::cli::EmbedArgs;
use crate::config::{one_archive, Config};
use crate::{warn, Status};

pub fn run(cfg: &Config<'_>, a: &EmbedArgs) -> Result<Status> {
    let opts = EmbedOptions { scan: cfg.scan, force: a.force, dry_run: a.dry_run, max_growth: a.max_growth };
    if let Some(out) = &a.output {
        let input = one_archive(&a.walk, "--output")?;
        let r = embed_to(input, out, opts)?;
        if cfg.verbose {
            warn(format!("{}: {}, index first, {} bytes written", out.display(), batch::count(r.members, "member", "members"), r.bytes_written));
        }
        return Ok(Status::Ok);
    }
    let dry = if a.dry_run { "dry run: would have " } else { "" };
    let done = if a.dry_run { Action::WouldIndex } else { Action::Indexed };
    let job = |f: &Found, progress: &dyn Progress| -> tarfs::Result<Done> {
        if let Some(c) = super::batch::compressed_in_walk(cfg, f) {
            let why = format!("{}-compressed: embed changes only uncompressed tars (--or-sidecar writes a sidecar instead)", c.name());
            progress.note(&f.path, &format!("skipped: {why}"));
            return Ok(Done { action: Action::Skipped, reason: Some(why), members: 0, index_path: None, warning: None });
        }
        let r = embed(&f.path, opts)?;
        let (action, reason) = match r.action {
            EmbedAction::UpToDate => (Action::Skipped, "index up to date".to_string()),
            EmbedAction::Reindexed => match r.grew {
                Some(g) => (done, format!("{dry}re-indexed in place from the old end (grew: {} kept, {} read); {} bytes written", batch::count(g.kept, "member", "members"), batch::count(g.read, "byte", "bytes"), r.bytes_written)),
                None => (done, format!("{dry}re-indexed in place{}; {} bytes written", in_full(&r), r.bytes_written)),
            },
            EmbedAction::Embedded => (
                done,
                format!("{dry}embedded{}, {} displaced to the end; {} bytes written, the archive grew by {} bytes", in_full(&r), batch::count(r.displaced, "member", "members"), r.bytes_written, r.growth),
            ),
        };
        Ok(Done { action, reason: Some(reason), members: r.members, index_path: Some(f.path.clone()), warning: None })
    };
    super::batch::run(cfg, job, None, None)
}

/// Why `embed` surveyed the whole archive though it had an embedded index, for the report.
fn in_full(r: &EmbedReport) -> String {
    r.in_full.as_ref().map(|why| format!(" (in full: {why})")).unwrap_or_default()
}
