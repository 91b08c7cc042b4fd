//! Atomic file creation: write to a temporary file in the destination's directory, fsync it,
//! rename it over the destination, and fsync the directory. A crash leaves either the old file or
//! the new one under the final name, never a partial one; an error leaves nothing behind.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;

use tempfile::NamedTempFile;

use crate::error::{Error, IoContext, Result};

/// Creates `dest` atomically from what `write` puts into the buffered temporary file.
pub(crate) fn write_atomic<T>(dest: &Path, write: impl FnOnce(&mut BufWriter<&File>) -> Result<T>) -> Result<T> {
    let dir = match dest.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    std::fs::create_dir_all(dir).at(dir)?;
    let name = dest.file_name().unwrap_or_default().to_string_lossy();
    let tmp = tempfile::Builder::new().prefix(&format!(".{name}.")).suffix(".tmp").tempfile_in(dir).at(dir)?;
    let value = {
        let mut w = BufWriter::with_capacity(1 << 20, tmp.as_file());
        let value = write(&mut w)?;
        w.flush().at(tmp.path())?;
        value
    };
    tmp.as_file().sync_all().at(tmp.path())?;
    persist(tmp, dest)?;
    File::open(dir).and_then(|d| d.sync_all()).at(dir)?;
    Ok(value)
}

fn persist(tmp: NamedTempFile, dest: &Path) -> Result<()> {
    tmp.persist(dest).map(drop).map_err(|e| Error::Io { path: dest.to_path_buf(), source: e.error })
}
