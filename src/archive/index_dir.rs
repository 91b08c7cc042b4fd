//! Where sidecar indexes are: beside the archive, under an index dir (`--index-dir`,
//! `TARFS_INDEX_DIR`, the config file), or in the user's cache.

use std::path::{Path, PathBuf};

/// Where sidecar indexes go when they cannot go beside the archive (read-only media): under
/// `dir`, at the archive's absolute, canonical path. `/tape/gnu/g01.tar` (however it was named:
/// relative, through `..` or a symbolic link) has its sidecar at `DIR/tape/gnu/g01.tar.tarfs`, so
/// every command finds the same one, and two trees with the same layout do not collide. Moving a
/// tree means moving its mirror under `DIR` the same way (`mv /tape /mnt/tape` and
/// `mv DIR/tape DIR/mnt/tape`); a sidecar found at the old place is stale only if the archive's
/// bytes changed, never wrong.
///
/// Beside it, the user's cache of sidecars (`cache`, laid out the same way): where `index` writes
/// a sidecar when no `dir` is set and the archive's own directory refuses it, and where readers
/// look last ([`IndexDir::candidates`]).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct IndexDir {
    /// The directory sidecars are written under (`--index-dir`, `TARFS_INDEX_DIR`, the config
    /// file's `index-dir`); `None`: beside each archive.
    pub dir: Option<PathBuf>,
    /// The user's cache of sidecars (`$XDG_CACHE_HOME/tarfs/index`), if there is one.
    pub cache: Option<PathBuf>,
}

impl IndexDir {
    /// Sidecars under `dir`.
    pub fn new(dir: &Path) -> IndexDir {
        IndexDir { dir: Some(dir.to_path_buf()), cache: None }
    }

    /// Sidecars beside their archives, and in `cache` where an archive's directory refuses one.
    pub fn cache(cache: &Path) -> IndexDir {
        IndexDir { dir: None, cache: Some(cache.to_path_buf()) }
    }

    /// Where the sidecar of `archive` is written: under `dir`, or beside it.
    pub fn sidecar_for(&self, archive: &Path) -> PathBuf {
        match &self.dir {
            Some(dir) => mirrored(dir, archive),
            None => beside(archive),
        }
    }

    /// The sidecar of `archive` under `dir`, if one is set.
    pub fn in_dir(&self, archive: &Path) -> Option<PathBuf> {
        self.dir.as_deref().map(|d| mirrored(d, archive))
    }

    /// Where the sidecar of `archive` goes when its own directory refuses it: the cache, where no
    /// `dir` is set (a `dir` the user chose is not second-guessed).
    pub fn fallback_for(&self, archive: &Path) -> Option<PathBuf> {
        match (&self.dir, &self.cache) {
            (None, Some(cache)) => Some(mirrored(cache, archive)),
            _ => None,
        }
    }

    /// Where readers look for the sidecar of `archive`, in order: under `dir`, beside it, in the
    /// cache. The first usable one answers.
    pub fn candidates(&self, archive: &Path) -> Vec<PathBuf> {
        let mut all: Vec<PathBuf> = self.in_dir(archive).into_iter().chain([beside(archive)]).collect();
        all.extend(self.cache.as_deref().map(|c| mirrored(c, archive)).filter(|c| !all.contains(c)));
        all
    }
}

/// `ARCHIVE.tarfs`, beside the archive.
fn beside(archive: &Path) -> PathBuf {
    let mut name = archive.file_name().unwrap_or_default().to_os_string();
    name.push(".tarfs");
    archive.with_file_name(name)
}

/// The sidecar of `archive` under `dir`, at its canonical path.
fn mirrored(dir: &Path, archive: &Path) -> PathBuf {
    let key = canonical_key(archive);
    let mut name = key.file_name().unwrap_or_default().to_os_string();
    name.push(".tarfs");
    let rel = key.strip_prefix("/").unwrap_or(&key);
    dir.join(rel).with_file_name(name)
}

/// The archive's absolute path with symbolic links, `.` and `..` resolved. An archive that does
/// not exist (yet) keys by its absolute path as given; an object by `/s3/BUCKET/KEY`.
fn canonical_key(archive: &Path) -> PathBuf {
    if let Some(object) = archive.to_str().and_then(|s| s.strip_prefix("s3://")) {
        // An object (`s3://BUCKET/KEY`) keys as `/s3/BUCKET/KEY`, wherever it is named from.
        return Path::new("/s3").join(object);
    }
    std::fs::canonicalize(archive).or_else(|_| std::path::absolute(archive)).unwrap_or_else(|_| archive.to_path_buf())
}

/// The sidecar path of `archive`: `ARCHIVE.tarfs` beside it, or its place under an index dir.
pub fn sidecar_path(archive: &Path, index_dir: Option<&IndexDir>) -> PathBuf {
    match index_dir {
        None => beside(archive),
        Some(d) => d.sidecar_for(archive),
    }
}

/// Where readers look for the sidecar of `archive` ([`IndexDir::candidates`]; beside it alone
/// without an index dir).
pub fn sidecar_candidates(archive: &Path, index_dir: Option<&IndexDir>) -> Vec<PathBuf> {
    match index_dir {
        None => vec![beside(archive)],
        Some(d) => d.candidates(archive),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sidecar_paths() {
        assert_eq!(sidecar_path(Path::new("a/b.tar"), None), PathBuf::from("a/b.tar.tarfs"));
        let d = IndexDir::new(Path::new("/idx"));
        assert_eq!(sidecar_path(Path::new("/nonexistent-tape/x/y.tar"), Some(&d)), PathBuf::from("/idx/nonexistent-tape/x/y.tar.tarfs"));
        // Any name for the same file finds the same sidecar.
        let tmp = tempfile::TempDir::new().unwrap();
        let real = tmp.path().join("t/x");
        std::fs::create_dir_all(&real).unwrap();
        std::fs::write(real.join("y.tar"), b"").unwrap();
        std::os::unix::fs::symlink(real.join("y.tar"), tmp.path().join("link.tar")).unwrap();
        let canonical = std::fs::canonicalize(real.join("y.tar")).unwrap();
        let want = Path::new("/idx").join(canonical.strip_prefix("/").unwrap()).with_file_name("y.tar.tarfs");
        for name in [real.join("y.tar"), tmp.path().join("t/x/../x/./y.tar"), tmp.path().join("link.tar")] {
            assert_eq!(sidecar_path(&name, Some(&d)), want, "{}", name.display());
        }
    }

    #[test]
    fn candidates_and_the_fallback() {
        let a = Path::new("/nonexistent-tape/y.tar");
        let beside = PathBuf::from("/nonexistent-tape/y.tar.tarfs");
        let cache = IndexDir::cache(Path::new("/cache"));
        let in_cache = PathBuf::from("/cache/nonexistent-tape/y.tar.tarfs");
        assert_eq!(cache.sidecar_for(a), beside);
        assert_eq!(cache.fallback_for(a), Some(in_cache.clone()));
        assert_eq!(cache.candidates(a), [beside.clone(), in_cache.clone()]);
        let both = IndexDir { cache: Some("/cache".into()), ..IndexDir::new(Path::new("/idx")) };
        let in_idx = PathBuf::from("/idx/nonexistent-tape/y.tar.tarfs");
        assert_eq!(both.sidecar_for(a), in_idx);
        assert_eq!(both.fallback_for(a), None, "a chosen index dir is not second-guessed");
        assert_eq!(both.candidates(a), [in_idx, beside.clone(), in_cache]);
        assert_eq!(sidecar_candidates(a, None), [beside]);
    }

    #[test]
    fn an_object_mirrors_under_s3() {
        let d = IndexDir::new(Path::new("/idx"));
        assert_eq!(d.in_dir(Path::new("s3://bkt/a/b.tar")), Some(PathBuf::from("/idx/s3/bkt/a/b.tar.tarfs")));
    }
}
