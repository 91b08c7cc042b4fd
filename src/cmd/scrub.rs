//! `tarfs scrub`: read every member of each archive and compare it with the digests its index
//! recorded (issue #36), for cron. A damaged archive fails, naming each damaged member and its
//! bytes (exit status 1); one whose index has no digests is skipped, and said so.

use anyhow::Result;
use tarfs::archive::open_any;
use tarfs::batch::{self, Action, Done, Progress};
use tarfs::discover::Found;
use tarfs::ops::read::Reader;
use tarfs::ops::scrub::{damaged_error, scrub, RateLimit};

use crate::cli::ScrubArgs;
use crate::config::Config;
use crate::Status;

pub fn run(cfg: &Config<'_>, a: &ScrubArgs) -> Result<Status> {
    let limit = a.max_rate.map(RateLimit::new);
    let job = |f: &Found, _: &dyn Progress| -> tarfs::Result<Done> {
        let archive = open_any(&f.path)?;
        let reader = Reader::open(&*archive, cfg.index_dir.as_ref(), cfg.scan)?;
        let r = scrub(&reader, limit.as_ref())?;
        if !r.damaged.is_empty() {
            return Err(damaged_error(&reader, r.damaged));
        }
        let (action, reason) = match r.has_digests {
            true => (Action::Verified, format!("{} checked, {} read, no damage", batch::count(r.checked, "file", "files"), batch::count(r.bytes, "byte", "bytes"))),
            false => (Action::Skipped, "its index has no member digests (tarfs index --digests records them): nothing checked".to_string()),
        };
        Ok(Done { action, reason: Some(reason), members: Some(r.checked), index_path: None, warning: None })
    };
    let line = |o: &batch::Outcome| format!("{}: {}: {}", o.path.display(), if o.action == Action::Skipped { "skipped" } else { "ok" }, o.reason.as_deref().unwrap_or_default());
    super::batch::run(cfg, job, Some(&line), None)
}
