//! `tarfs verify`: check that each archive's index is present, intact and up to date.

use anyhow::Result;
use tarfs::archive::open_any;
use tarfs::batch::{self, Action, Done, Progress};
use tarfs::discover::Found;
use tarfs::ops::verify::verify;

use crate::config::Config;
use crate::Status;

pub fn run(cfg: &Config<'_>) -> Result<Status> {
    let job = |f: &Found, _: &dyn Progress| -> tarfs::Result<Done> {
        let archive = open_any(&f.path)?;
        let r = verify(&*archive, cfg.index_dir.as_ref(), cfg.scan)?;
        let kind = if r.subset { "subset index" } else { "index" };
        let later = match r.uncovered {
            0 => String::new(),
            1 => "; 1 later member is not in it".to_string(),
            n => format!("; {n} later members are not in it"),
        };
        let reason = format!("{kind} of {} ({}), {}{later}", batch::count(r.entries, "entry", "entries"), r.source, batch::count(r.members, "member", "members"));
        Ok(Done { action: Action::Verified, reason: Some(reason), members: Some(r.members), index_path: None, warning: None })
    };
    let line = |o: &batch::Outcome| format!("{}: ok: {}", o.path.display(), o.reason.as_deref().unwrap_or_default());
    super::batch::run(cfg, job, Some(&line), None)
}
