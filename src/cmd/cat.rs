//! `tarfs cat`: members' contents on standard output, like `tar -xO`, by seeking to each.

use std::io::{self, BufWriter, Write};

use anyhow::Result;
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
    let archive = tarfs::archive::open_any(&a.archive)?;
    let mut reader = open_reader(cfg, &*archive, a.index.as_deref())?;
    if let Some(g) = &a.gzidx {
        reader.use_gzidx(tarfs::seekpoints::read_gzidx(g, &*archive)?)?;
    }
    let r = cat(&reader, &names, &mut out);
    out.flush()?;
    if cfg.verbose {
        warn(format!("{}: read {} bytes of the archive{}", a.archive.display(), reader.bytes_read(), freshness_note(&reader)));
    }
    r?;
    Ok(true)
}
