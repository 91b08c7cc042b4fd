//! `tarfs create`: a new archive from files on disk, with its `.tarfs` index as the first member.
//!
//! Paths are taken relative to a base directory, and directories are walked recursively in
//! sorted order. Each entry becomes a member as GNU tar would write it:
//! - directories get a trailing `/`;
//! - symbolic links are stored as links;
//! - a file seen again through another hard link becomes a hard link to the first name;
//! - modes, times and ids are kept.
//!
//! The output is written atomically: nothing appears under its name until it is complete and
//! fsynced.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::builder::{IndexFirstBuilder, MemberOptions};
use crate::error::{Error, IoContext, Result};
use crate::ops::atomic::write_atomic;

/// What `create` wrote.
#[derive(Debug, Clone)]
pub struct CreateReport {
    /// Members in the new archive (without `.tarfs`).
    pub members: u64,
}

/// Creates `out` from `paths`, taken relative to `base`.
pub fn create(out: &Path, base: &Path, paths: &[PathBuf]) -> Result<CreateReport> {
    let mut b = IndexFirstBuilder::new();
    let mut links: HashMap<(u64, u64), Vec<u8>> = HashMap::new();
    let mut members = 0u64;
    for p in paths {
        for entry in WalkDir::new(base.join(p)).sort_by_file_name() {
            let entry = entry.map_err(|e| {
                let path = e.path().map(Path::to_path_buf).unwrap_or_else(|| base.join(p));
                Error::Io { path, source: e.into() }
            })?;
            let full = entry.path();
            let rel = full.strip_prefix(base).unwrap_or(full);
            let meta = entry.path().symlink_metadata().at(full)?;
            let mut name = rel.as_os_str().as_bytes().to_vec();
            let mut opts = MemberOptions {
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
                uid: u64::from(meta.uid()),
                gid: u64::from(meta.gid()),
                ..MemberOptions::default()
            };
            let io = |e| Error::Io { path: full.to_path_buf(), source: e };
            let ft = meta.file_type();
            if ft.is_dir() {
                name.push(b'/');
                opts.typeflag = b'5';
                b.add_with(&name, &[], &opts).map_err(io)?;
            } else if ft.is_symlink() {
                opts.typeflag = b'2';
                opts.link = std::fs::read_link(full).at(full)?.as_os_str().as_bytes().to_vec();
                b.add_with(&name, &[], &opts).map_err(io)?;
            } else if ft.is_file() {
                if meta.nlink() > 1 {
                    if let Some(first) = links.get(&(meta.dev(), meta.ino())) {
                        opts.typeflag = b'1';
                        opts.link = first.clone();
                        b.add_with(&name, &[], &opts).map_err(io)?;
                        members += 1;
                        continue;
                    }
                    links.insert((meta.dev(), meta.ino()), name.clone());
                }
                let mut f = File::open(full).at(full)?;
                b.add_stream(&name, meta.len(), &mut f, &opts).map_err(io)?;
            } else {
                return Err(Error::Invalid(format!("{}: cannot archive this kind of file (device, FIFO or socket)", full.display())));
            }
            members += 1;
        }
    }
    write_atomic(out, |w| b.finish(w).at(out))?;
    Ok(CreateReport { members })
}
