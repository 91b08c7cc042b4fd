//! `tarfs extract`: members into a directory, safely.

use anyhow::{Context, Result};
use tarfs::archive::{open_any, ArchiveFile};
use tarfs::batch;
use tarfs::ops::extract::{extract, ExtractOptions};
use tarfs::ops::read::Reader;

use super::reading::{open_reader, selection};
use crate::cli::ExtractArgs;
use crate::config::Config;
use crate::warn;

/// Whether every member was extracted.
pub fn run(cfg: &Config<'_>, a: &ExtractArgs) -> Result<bool> {
    let mut archive: Box<dyn ArchiveFile> = if a.archive.as_os_str() == "-" {
        // Standard input: spooled beside the destination (extraction places members in any
        // order an index gives, and checks hard links against earlier members).
        Box::new(tarfs::stream::spool_stdin(&a.dest)?)
    } else {
        open_any(&a.archive)?
    };
    if let Some(c) = tarfs::source::compression_of(&*archive) {
        // With an index that lists every member and reads each alone, one forward pass
        // through the stream (or its seek points) extracts them. Otherwise, decode once into a
        // temporary file, mapped.
        let streams = Reader::open(&*archive, cfg.index_dir.as_ref(), cfg.scan).is_ok_and(|r| r.reads_members_alone());
        if !streams {
            let plain = tarfs::source::Decoded::new(&*archive, c).materialize()?;
            archive = Box::new(plain);
        }
    }
    let reader = open_reader(cfg, &*archive, a.index.as_deref())?;
    let select = selection(&a.members, &a.select)?;
    let report = extract(&reader, &ExtractOptions { dest: a.dest.clone(), select, strip_components: a.strip_components, numeric_owner: a.numeric_owner }).context("extract")?;
    for f in &report.failures {
        warn(f);
    }
    if cfg.verbose {
        let decoded = match (reader.bytes_decoded(), reader.seeking()) {
            (Some(n), Some(how)) => format!(", {how}: {n} bytes decompressed"),
            _ if archive.compressed_len().is_some() => ", decompressed once into a temporary file".to_string(),
            _ => String::new(),
        };
        warn(format!("{}: extracted {}{decoded}", a.archive.display(), batch::count(report.extracted, "member", "members")));
    }
    Ok(report.failures.is_empty())
}
