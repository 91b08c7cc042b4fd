//! Opening an archive through its best index for `ls`, `cat` and `extract`, and their member
//! operands.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use anyhow::Result;
use tarfs::archive::ArchiveFile;
use tarfs::ops::read::Reader;
use tarfs::ops::select::Selection;

use crate::cli::SelectArgs;
use crate::config::Config;
use crate::warn;

/// Opens `archive` through its best index; says why an index was passed over, and (`-v`) which
/// one is used.
pub fn open_reader<'a>(cfg: &Config<'_>, archive: &'a dyn ArchiveFile, index: Option<&Path>) -> Result<Reader<'a>> {
    let mut reader = match index {
        Some(index) => Reader::through(archive, index, cfg.scan)?,
        None => Reader::open(archive, cfg.index_dir.as_ref(), cfg.scan)?,
    };
    reader.set_verify(cfg.verify);
    if let Some(note) = reader.note() {
        warn(format!("{}: {note}", archive.path().display()));
    }
    if cfg.verbose {
        warn(format!("{}: using {}", archive.path().display(), reader.source()));
    }
    Ok(reader)
}

/// What opening the index read of the archive, for `-v`.
pub fn freshness_note(reader: &Reader<'_>) -> String {
    match (reader.opening_reads(), reader.compression()) {
        (_, Some(c)) => format!(
            " ({}-compressed, {}: {} bytes decompressed; the index's freshness is its recorded file length)",
            c.name(),
            reader.seeking().unwrap_or_default(),
            reader.bytes_decoded().unwrap_or_default()
        ),
        (0, None) => String::new(),
        (n, None) => format!(", and {n} bytes of its headers to check the index is fresh"),
    }
}

/// The member operands as the library takes them.
pub fn names(members: &[PathBuf]) -> Vec<Vec<u8>> {
    members.iter().map(|m| m.as_os_str().as_bytes().to_vec()).collect()
}

/// The selection that member operands and `--wildcards`/`--exclude` make.
pub fn selection(members: &[PathBuf], s: &SelectArgs) -> Result<Selection> {
    Ok(Selection::new(names(members), s.wildcards, &s.exclude)?)
}
