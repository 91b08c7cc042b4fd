//! Finding archives: each path argument is a file (taken as it is) or a directory (walked
//! recursively, in sorted order, without following symbolic links unless asked), or a prefix of
//! objects, `s3://BUCKET/PREFIX/` (listed, in order). Our own `.tarfs`
//! sidecars and temporary files are never taken as archives.

use std::path::{Path, PathBuf};

use globset::{Glob, GlobSet, GlobSetBuilder};
use walkdir::WalkDir;

use crate::error::{Error, Result, UsageError};

/// One archive to work on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The archive, as found (the argument, or the argument joined with the walked path).
    pub path: PathBuf,
}

/// File names `index` and `verify` take by default: tar archives and compressed tar archives.
pub const ARCHIVE_GLOBS: [&str; 6] = ["*.tar", "*.tar.gz", "*.tgz", "*.tar.zst", "*.tar.xz", "*.tar.bz2"];
/// The file names `recompress` takes under directories: zstd and xz archives.
pub const RECOMPRESS_GLOBS: [&str; 4] = ["*.tar.zst", "*.tzst", "*.tar.xz", "*.txz"];

/// How to walk.
#[derive(Debug, Clone)]
pub struct Discover {
    /// Which file names are archives (default `*.tar`).
    pub glob: GlobSet,
    /// Follow symbolic links.
    pub follow_links: bool,
}

impl Default for Discover {
    fn default() -> Self {
        Discover::with_globs(&["*.tar"]).expect("valid glob")
    }
}

impl Discover {
    /// A walker selecting file names that match any of `globs`.
    pub fn with_globs(globs: &[&str]) -> Result<Discover> {
        let mut b = GlobSetBuilder::new();
        for g in globs {
            b.add(Glob::new(g).map_err(|reason| Error::Usage { what: UsageError::BadGlob { pattern: g.to_string(), reason } })?);
        }
        let glob = b.build().map_err(|e| Error::Usage { what: UsageError::GlobSet(e) })?;
        Ok(Discover { glob, follow_links: false })
    }

    /// Whether the file (or object) `path` is an archive to take: its name matches, and it is
    /// not one of our sidecars or temporary files.
    fn takes(&self, path: &Path) -> bool {
        let name = path.file_name().unwrap_or_default();
        let ours = name.to_string_lossy().ends_with(".tarfs") || name.to_string_lossy().ends_with(".tarfs-tmp");
        !ours && self.glob.is_match(name)
    }

    /// Expands path arguments into archives. Walk errors (unreadable directories) are returned
    /// beside the archives found, so that one bad directory does not stop the run.
    pub fn find(&self, args: &[PathBuf]) -> (Vec<Found>, Vec<Error>) {
        let mut found = Vec::new();
        let mut errors = Vec::new();
        for arg in args {
            if crate::archive::s3::is_url(arg) && arg.as_os_str().as_encoded_bytes().ends_with(b"/") {
                match crate::archive::s3::list(&arg.to_string_lossy()) {
                    Ok(objects) => found.extend(objects.into_iter().filter(|o| self.takes(o)).map(|path| Found { path })),
                    Err(e) => errors.push(Error::S3(e)),
                }
                continue;
            }
            if !arg.is_dir() {
                found.push(Found { path: arg.clone() });
                continue;
            }
            let walk = WalkDir::new(arg).follow_links(self.follow_links).sort_by_file_name();
            for entry in walk {
                match entry {
                    Ok(e) if e.file_type().is_file() || (self.follow_links && e.path().is_file()) => {
                        if self.takes(e.path()) {
                            found.push(Found { path: e.into_path() });
                        }
                    }
                    Ok(_) => {}
                    Err(err) => {
                        let path = err.path().map(Path::to_path_buf).unwrap_or_else(|| arg.clone());
                        errors.push(Error::Io { path, source: err.into() });
                    }
                }
            }
        }
        (found, errors)
    }
}

/// The paths listed in `list` (`-`: standard input), one per line, or NUL-separated with `nul`
/// (`find -print0`). Empty names are passed over; a line's `\r` is kept (it may be a name's).
pub fn read_list(list: &Path, nul: bool) -> Result<Vec<PathBuf>> {
    use std::io::Read;
    use std::os::unix::ffi::OsStrExt;
    let mut bytes = Vec::new();
    let read = if list.as_os_str() == "-" { std::io::stdin().lock().read_to_end(&mut bytes) } else { std::fs::File::open(list).and_then(|mut f| f.read_to_end(&mut bytes)) };
    read.map_err(|source| Error::Io { path: list.to_path_buf(), source })?;
    let sep = if nul { 0 } else { b'\n' };
    Ok(bytes.split(|&b| b == sep).filter(|name| !name.is_empty()).map(|name| PathBuf::from(std::ffi::OsStr::from_bytes(name))).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::ffi::OsStrExt;

    #[test]
    fn lists_by_line_or_by_nul() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list");
        std::fs::write(&list, b"a.tar\n\nsub dir/b.tar\nc\xff.tar").unwrap();
        let names = read_list(&list, false).unwrap();
        assert_eq!(names, [PathBuf::from("a.tar"), PathBuf::from("sub dir/b.tar"), PathBuf::from(std::ffi::OsStr::from_bytes(b"c\xff.tar"))]);
        std::fs::write(&list, b"a\nb.tar\0c.tar\0").unwrap();
        assert_eq!(read_list(&list, true).unwrap(), [PathBuf::from("a\nb.tar"), PathBuf::from("c.tar")]);
        let missing = read_list(&dir.path().join("none"), false).unwrap_err();
        assert!(missing.to_string().contains("none"), "{missing}");
    }
}
