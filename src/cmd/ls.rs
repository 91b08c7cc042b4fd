//! `tarfs ls`: list members, like `tar -t`, through the best index (or one pass over standard
//! input).

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::Result;
use tarfs::archive::open_any;
use tarfs::quote::Quoting;

use super::reading::{freshness_note, open_reader, selection};
use crate::cli::LsArgs;
use crate::config::Config;
use crate::listing::{JsonMember, LongFormat};
use crate::warn;

/// Whether every member operand named something.
pub fn run(cfg: &Config<'_>, a: &LsArgs) -> Result<bool> {
    if a.digest {
        return super::ls_digest::run(cfg, a);
    }
    let from_stdin = a.archive.as_os_str() == "-";
    let mut select = selection(&a.members, &a.select)?;
    let archive = if from_stdin { None } else { Some(open_any(&a.archive)?) };
    let mut out = BufWriter::with_capacity(1 << 16, io::stdout().lock());
    let quoting = Quoting::new(a.quoting_style.into());
    let mut long = LongFormat::new(quoting);
    let mut io_err = None;
    let mut each = |e: &tarfs::Entry<'_>| {
        if !select.take(&e.path()) {
            return Ok(());
        }
        let r = if a.json {
            serde_json::to_writer(&mut out, &JsonMember::new(e)).map_err(io::Error::from).and_then(|_| out.write_all(b"\n"))
        } else if a.long {
            out.write_all(&long.line(e)).and_then(|_| out.write_all(b"\n"))
        } else {
            out.write_all(&quoting.quote(&e.path())).and_then(|_| out.write_all(b"\n"))
        };
        if let Err(err) = r {
            // Stops the listing; the error itself is reported below.
            let stop = tarfs::Error::Io { path: PathBuf::from("-"), source: io::Error::from(err.kind()) };
            io_err = Some(err);
            return Err(stop);
        }
        Ok(())
    };
    let end = match &archive {
        // Standard input: one pass over the stream, as `tar -tf -` does.
        None => tarfs::stream::open_stdin().and_then(|mut r| tarfs::stream::scan_stream(&mut r, Path::new("-"), cfg.scan, 1 << 20, &mut each)).map(|e| Some(e.end)),
        Some(archive) => {
            let reader = open_reader(cfg, &**archive, a.index.as_deref())?;
            let end = reader.for_each(&mut each);
            if cfg.verbose {
                warn(format!("{}: read {} bytes of the archive for the listing{}", a.archive.display(), reader.bytes_read(), freshness_note(&reader)));
            }
            end
        }
    };
    if let Some(err) = io_err {
        return Err(err.into());
    }
    let end = end?;
    out.flush()?;
    if let Some(w) = end.and_then(|e| e.warning) {
        warn(format!("{}: warning: {w}", a.archive.display()));
    }
    // As tar: each operand that named nothing is an error, after the listing.
    let mut all_found = true;
    for name in select.unmatched() {
        warn(format!("{}: {}: not found in archive", a.archive.display(), tarfs::quote::diag(name)));
        all_found = false;
    }
    Ok(all_found)
}
