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
//!
//! A regular file is checked as GNU tar checks it: its `lstat` before it is opened, against the
//! `fstat` of the open file after its data was read. If its size, inode, modification or status
//! change time differ, or it gave fewer bytes than its size, it changed while it was read: the
//! member keeps the size of the first `stat` (bytes past it are left out; missing bytes are
//! zeros, as GNU tar pads them), and the report lists it ([`CreateReport::changed`]), so that
//! the command can warn and fail as `tar` does (exit status 1) while still writing the archive.

use std::collections::HashMap;
use std::fs::File;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use walkdir::WalkDir;

use crate::builder::{IndexFirstBuilder, MemberOptions};
use crate::error::{Error, IoContext, Result};
use crate::format::tarfs::Stamp;
use crate::ops::atomic::write_atomic;

/// What `create` wrote.
#[derive(Debug, Clone)]
pub struct CreateReport {
    /// Members in the new archive (without `.tarfs`).
    pub members: u64,
    /// Files left out, with why (sockets and devices, as tar leaves sockets out).
    pub skipped: Vec<String>,
    /// Files that changed while they were read: their members may hold neither the old nor the
    /// new content.
    pub changed: Vec<ChangedAsRead>,
}

/// A file that changed while `create` read it (GNU tar: "file changed as we read it").
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangedAsRead {
    /// The file.
    pub path: PathBuf,
    /// Bytes it gave fewer than its size (it shrank): the member ends with as many zeros.
    pub zeros: u64,
}

impl std::fmt::Display for ChangedAsRead {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: file changed as we read it", self.path.display())?;
        if self.zeros > 0 {
            write!(f, "; it shrank by {} bytes: padded with zeros", self.zeros)?;
        }
        Ok(())
    }
}

/// Owner and group names by id, looked up once each.
#[derive(Default)]
struct Names {
    users: HashMap<u32, String>,
    groups: HashMap<u32, String>,
}

impl Names {
    fn user(&mut self, uid: u32) -> String {
        self.users.entry(uid).or_insert_with(|| nix::unistd::User::from_uid(uid.into()).ok().flatten().map(|u| u.name).unwrap_or_default()).clone()
    }

    fn group(&mut self, gid: u32) -> String {
        self.groups.entry(gid).or_insert_with(|| nix::unistd::Group::from_gid(gid.into()).ok().flatten().map(|g| g.name).unwrap_or_default()).clone()
    }
}

/// How `create` indexes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CreateOptions {
    /// The index version.
    pub format: crate::ops::index::IndexFormat,
    /// Member digests (computed as the files are read).
    pub digests: bool,
}

impl Default for CreateOptions {
    fn default() -> Self {
        CreateOptions { format: crate::ops::index::IndexFormat::default(), digests: true }
    }
}

/// Creates `out` from `paths`, taken relative to `base`. `out` of `-` is standard output.
pub fn create(out: &Path, base: &Path, paths: &[PathBuf], opts: CreateOptions) -> Result<CreateReport> {
    use std::os::unix::fs::FileTypeExt;
    let mut b = IndexFirstBuilder::new().format(opts.format).digests(opts.digests);
    let mut names = Names::default();
    let mut skipped = Vec::new();
    let mut changed = Vec::new();
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
            if name.is_empty() {
                // The base itself (`create -C dir .`): `./`, as GNU tar names it, never `/`.
                name.push(b'.');
            }
            let mut opts = MemberOptions {
                mode: meta.mode() & 0o7777,
                mtime: meta.mtime(),
                uid: u64::from(meta.uid()),
                gid: u64::from(meta.gid()),
                uname: names.user(meta.uid()),
                gname: names.group(meta.gid()),
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
                changed.extend(add_regular(&mut b, full, &name, &meta, &opts)?);
            } else if ft.is_fifo() {
                opts.typeflag = b'6';
                b.add_with(&name, &[], &opts).map_err(io)?;
            } else {
                let kind = if ft.is_socket() { "socket" } else { "device" };
                skipped.push(format!("{}: {kind} left out", full.display()));
                continue;
            }
            members += 1;
        }
    }
    if out.as_os_str() == "-" {
        let stdout = std::io::stdout();
        let mut w = std::io::BufWriter::with_capacity(1 << 20, stdout.lock());
        b.finish(&mut w).at(out)?;
    } else {
        write_atomic(out, |w| b.finish(w).at(out))?;
    }
    Ok(CreateReport { members, skipped, changed })
}

/// Adds the regular file `full` as `name`, `meta` being its `lstat` from before it was opened,
/// and says whether it changed while it was read (see the module's docs).
fn add_regular(b: &mut IndexFirstBuilder, full: &Path, name: &[u8], meta: &std::fs::Metadata, opts: &MemberOptions) -> Result<Option<ChangedAsRead>> {
    let mut f = File::open(full).at(full)?;
    crate::ops::crash::pause_point("create-opened");
    let read = b.add_file(name, meta.len(), &mut f, opts).at(full)?;
    let after = f.metadata().at(full)?;
    let same = read == meta.len() && after.len() == meta.len() && Stamp::of(&after) == Stamp::of(meta);
    Ok((!same).then(|| ChangedAsRead { path: full.to_path_buf(), zeros: meta.len() - read }))
}
