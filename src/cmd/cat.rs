//! `tarfs cat`: members' contents on standard output, like `tar -xO`, by seeking to each.
//!
//! An object whose index is cached is opened as it was remembered, with no request
//! ([`tarfs::archive::open_any_remembered`]): the member's range GET is then the one request.
//! Nothing is written before the object is confirmed (by that answer, or a HEAD); an object
//! since replaced is opened afresh and read again, and nothing of the old one is given out.

use std::io::{self, BufWriter, Write};

use anyhow::Result;
use tarfs::archive::ArchiveFile;
use tarfs::ops::read::cat;

use super::reading::{freshness_note, names, open_reader};
use crate::cli::CatArgs;
use crate::config::Config;
use crate::warn;

pub fn run(cfg: &Config<'_>, a: &CatArgs) -> Result<bool> {
    let names = names(&a.members);
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    if a.archive.as_os_str() == "-" {
        // Standard input: one pass, as `tar -xOf -` does.
        let r = tarfs::ops::read::cat_stdin(&names, cfg.scan, &mut out);
        out.flush()?;
        r?;
        return Ok(true);
    }
    let r = match cat_once(cfg, a, &names, &mut out, true) {
        Err(e) if tarfs::archive::s3::is_stale(e.as_ref()) => cat_once(cfg, a, &names, &mut out, false),
        r => r,
    };
    out.flush()?;
    r?;
    Ok(true)
}

/// `cat` through the archive opened once: as remembered where `remembered` says so and it can be.
fn cat_once(cfg: &Config<'_>, a: &CatArgs, names: &[Vec<u8>], out: &mut dyn Write, remembered: bool) -> Result<()> {
    let archive = if remembered { tarfs::archive::open_any_remembered(&a.archive)? } else { tarfs::archive::open_any(&a.archive)? };
    let mut reader = open_reader(cfg, &*archive, a.index.as_deref())?;
    if let Some(g) = &a.gzidx {
        reader.use_gzidx(tarfs::seekpoints::read_gzidx(g, &*archive)?)?;
    }
    let r = cat(&reader, names, &mut Confirmed { archive: &*archive, out, confirmed: false });
    // What the index alone answered (a name not found) is said only of the archive as it is
    // (an error of the store itself is said as it is).
    if !matches!(&r, Err(e) if tarfs::archive::s3::find(e).is_some()) {
        archive.confirm()?;
    }
    if cfg.verbose {
        warn(format!("{}: read {} bytes of the archive{}", a.archive.display(), reader.bytes_read(), freshness_note(&reader)));
    }
    Ok(r?)
}

/// A writer that confirms its archive ([`ArchiveFile::confirm`]) before the first byte it
/// passes on: bytes read of an object opened as remembered are written only once the object is
/// known to be that one.
struct Confirmed<'a> {
    archive: &'a dyn ArchiveFile,
    out: &'a mut dyn Write,
    confirmed: bool,
}

impl Write for Confirmed<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if !self.confirmed && !buf.is_empty() {
            self.archive.confirm()?;
            self.confirmed = true;
        }
        self.out.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }
}
