//! Extracting members to a directory, safely.
//!
//! As GNU tar does by default, a leading `/` is removed from member names, and a member whose
//! name has a `..` component is refused. Beyond GNU tar's defaults, nothing is ever written through
//! a symbolic link that leads outside the destination: every parent directory is checked, files
//! are created fresh (an existing file or link at the name is removed first, as tar's default
//! `--overwrite`-by-unlink does), and hard-link targets must resolve inside the destination.
//!
//! Modes (including setuid/setgid/sticky bits) and modification times are restored (a symbolic
//! link's own time, and the `./` member's mode and time on the destination itself, as GNU tar
//! does); directories get theirs after everything inside them is written, and never through a symbolic link: each is
//! found again by its path through real directories only, and must still be the directory (device
//! and inode number) noted when it was created, as GNU tar checks (see `DeferredDirs`). As
//! root, owners are restored. Device nodes and FIFOs are created when running as root; otherwise
//! devices are refused with a message, as non-root GNU tar fails on them.

use std::fs::{self, OpenOptions};
use std::io::{self, BufWriter};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{symlink, OpenOptionsExt, PermissionsExt};
use std::path::{Component, Path, PathBuf};
use std::time::{Duration, SystemTime};

use rustix::fs::{Mode, OFlags};
use rustix::io::Errno;

use crate::error::{IoContext, Result};
use crate::ops::read::{write_data, Reader};
use crate::ops::select::Selection;
use crate::scan::Entry;

/// What to extract, and where.
#[derive(Debug, Clone, Default)]
pub struct ExtractOptions {
    /// The destination directory, which must exist (as `tar -C` requires).
    pub dest: PathBuf,
    /// Members to extract (operands select directories with everything under them; see
    /// [`Selection`]).
    pub select: Selection,
    /// Leading path components removed from names and hard link targets (`--strip-components`).
    pub strip_components: usize,
    /// As root, restore owners by numeric id rather than by name (`--numeric-owner`).
    pub numeric_owner: bool,
}

/// Who will own what extraction creates: as root, the member's owner (by user and group name
/// where the name exists here, else by id, as GNU tar does); otherwise nobody's is restored.
struct Owners {
    root: bool,
    numeric: bool,
    users: std::collections::HashMap<Vec<u8>, Option<u32>>,
    groups: std::collections::HashMap<Vec<u8>, Option<u32>>,
}

impl Owners {
    fn of(&mut self, e: &Entry<'_>) -> Option<(u32, u32)> {
        if !self.root {
            return None;
        }
        let by_name = |cache: &mut std::collections::HashMap<Vec<u8>, Option<u32>>, name: &[u8], user: bool| -> Option<u32> {
            if name.is_empty() {
                return None;
            }
            *cache.entry(name.to_vec()).or_insert_with(|| {
                let n = std::str::from_utf8(name).ok()?;
                if user {
                    nix::unistd::User::from_name(n).ok().flatten().map(|u| u.uid.as_raw())
                } else {
                    nix::unistd::Group::from_name(n).ok().flatten().map(|g| g.gid.as_raw())
                }
            })
        };
        let (mut uid, mut gid) = (u32::try_from(e.uid).ok()?, u32::try_from(e.gid).ok()?);
        if !self.numeric {
            uid = by_name(&mut self.users, e.uname(), true).unwrap_or(uid);
            gid = by_name(&mut self.groups, e.gname(), false).unwrap_or(gid);
        }
        Some((uid, gid))
    }
}

/// Gives `target` its owner, if one is to be restored; returns whether it was. Symbolic links
/// themselves are changed, never what they point to.
fn chown(target: &Path, owner: Option<(u32, u32)>) -> bool {
    use rustix::fs::{chownat, AtFlags, Gid, Uid, CWD};
    owner.is_some_and(|(u, g)| chownat(CWD, target, Some(Uid::from_raw(u)), Some(Gid::from_raw(g)), AtFlags::SYMLINK_NOFOLLOW).is_ok())
}

/// The permission bits to give a file: setuid and setgid only where its owner was restored.
fn safe_mode(mode: u32, owned: bool) -> u32 {
    if owned {
        mode
    } else {
        mode & !0o6000
    }
}

/// What extraction did.
#[derive(Debug, Clone, Default)]
pub struct ExtractReport {
    /// Members written.
    pub extracted: u64,
    /// Members refused or failed, each with the reason. The other members were still extracted.
    pub failures: Vec<String>,
}

/// Extracts members of `reader`'s archive under `opts.dest`.
pub fn extract(reader: &Reader<'_>, opts: &ExtractOptions) -> Result<ExtractReport> {
    // As tar does: the destination must exist.
    if !opts.dest.is_dir() {
        return Err(crate::Error::Usage { what: crate::error::UsageError::NoSuchDestination { path: opts.dest.clone() } });
    }
    let root = fs::canonicalize(&opts.dest).at(&opts.dest)?;
    let mut select = opts.select.clone();
    let mut report = ExtractReport::default();
    let mut dirs = DeferredDirs::new(&root)?;
    let archive = reader.archive().path().to_path_buf();
    let mut owners = Owners { root: rustix::process::geteuid().is_root(), numeric: opts.numeric_owner, users: Default::default(), groups: Default::default() };
    let digests = reader.digests()?;
    reader.for_each(|e| {
        let path = e.path();
        if !select.take(&path) {
            return Ok(());
        }
        // Read through a source that does not lend its bytes (a compressed archive), a member
        // is checked as its data is read (`Reader::layout_of`).
        let e = if reader.lent().is_none() { *e } else { reader.checked(e)? };
        let to = Dest { root: &root, strip_n: opts.strip_components, expected: reader.expected(digests.as_ref(), &e) };
        match extract_one(reader, &e, &to, &mut dirs, &mut owners) {
            Ok(true) => report.extracted += 1,
            Ok(false) => {}
            Err(msg) => report.failures.push(format!("{}: {}: {msg}", archive.display(), crate::quote::diag(&path))),
        }
        Ok(())
    })?;
    dirs.apply(&root, &mut report.failures);
    for name in select.unmatched() {
        report.failures.push(format!("{}: {}: not found in archive", archive.display(), crate::quote::diag(name)));
    }
    Ok(report)
}

/// Directories whose modes and times are set after everything inside them is written, each found
/// again without following a symbolic link.
///
/// A directory may be created through a link inside the destination (`l -> sub`, then `l/d/`),
/// and a later member may point that link elsewhere (`l -> /etc`): setting `l/d`'s mode at the
/// end by that name would change `/etc/d`. So each directory is noted by its path through real
/// directories only (`sub/d`) and by its device and inode number; at the end that path is opened
/// from the destination one component at a time with `O_NOFOLLOW`, and the mode and time are set
/// through the descriptor only if it is still the same directory. Otherwise the directory is
/// reported and left alone, as GNU tar reports a directory "renamed before its status could be
/// extracted".
struct DeferredDirs {
    /// The destination, opened once.
    root: OwnedFd,
    /// The directories, in the order they were met.
    list: Vec<Deferred>,
}

/// One directory whose mode and time wait for the end of the extraction.
struct Deferred {
    /// Its path from the destination, through no symbolic link.
    rel: PathBuf,
    /// Its device and inode number when it was created or first met.
    id: (u64, u64),
    /// The permission bits to give it.
    mode: u32,
    /// The modification time to give it, in seconds since the epoch.
    mtime: i64,
}

impl DeferredDirs {
    /// Opens the destination `root` (a canonical path) to find directories from.
    fn new(root: &Path) -> Result<Self> {
        let fd = rustix::fs::open(root, OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC, Mode::empty());
        Ok(DeferredDirs { root: fd.map_err(io::Error::from).at(root)?, list: Vec::new() })
    }

    /// Notes the directory just created (or found) at `target`, whose parents [`safe_parent`]
    /// checked, to be given `mode` and `mtime` at the end.
    fn note(&mut self, root: &Path, target: &Path, mode: u32, mtime: i64) -> Outcome<()> {
        let real = fs::canonicalize(target).map_err(path_error(Step::At, target))?;
        let Ok(rel) = real.strip_prefix(root) else {
            return Err(ExtractError::DirectoryOutside(target.to_path_buf()));
        };
        let dir = open_beneath(self.root.as_fd(), rel, OFlags::PATH).map_err(|err| path_error(Step::At, &real)(err.into()))?;
        let st = rustix::fs::fstat(&dir).map_err(|err| path_error(Step::At, &real)(err.into()))?;
        self.list.push(Deferred { rel: rel.to_path_buf(), id: (st.st_dev, st.st_ino), mode, mtime });
        Ok(())
    }

    /// Gives every noted directory its mode and time, deepest first, so that they are not
    /// disturbed by the directory's contents and read-only directories do not block extraction; a
    /// directory noted twice gets the later member's. What fails is added to `failures`.
    fn apply(mut self, root: &Path, failures: &mut Vec<String>) {
        // Stable: members with the same path keep the archive's order.
        self.list.sort_by(|a, b| b.rel.cmp(&a.rel));
        for d in &self.list {
            if let Err(err) = d.apply(self.root.as_fd()) {
                failures.push(format!("{}: cannot set mode and time: {err}", root.join(&d.rel).display()));
            }
        }
    }
}

impl Deferred {
    /// Gives the directory its mode and time if it is still the directory noted, reached from
    /// `root` through no symbolic link.
    fn apply(&self, root: BorrowedFd<'_>) -> io::Result<()> {
        // fchmod and futimens need a directory opened for reading. One whose mode denies that to
        // its owner (set by an earlier member of the same name, or there before) is opened as a
        // path only and changed through its /proc/self/fd link, which names that very directory.
        let (dir, path_only) = match open_beneath(root, &self.rel, OFlags::RDONLY) {
            Err(Errno::ACCESS) => (open_beneath(root, &self.rel, OFlags::PATH)?, true),
            opened => (opened?, false),
        };
        let st = rustix::fs::fstat(&dir)?;
        if (st.st_dev, st.st_ino) != self.id {
            return Err(io::Error::other("the directory was replaced before its mode and time could be set"));
        }
        use rustix::fs::{AtFlags, Timespec, Timestamps, CWD, UTIME_OMIT};
        let times = Timestamps { last_access: Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT }, last_modification: Timespec { tv_sec: self.mtime, tv_nsec: 0 } };
        let mode = Mode::from_raw_mode(self.mode);
        if path_only {
            let link = format!("/proc/self/fd/{}", dir.as_raw_fd());
            rustix::fs::utimensat(CWD, &link, &times, AtFlags::empty())?;
            rustix::fs::chmodat(CWD, &link, mode, AtFlags::empty())?;
        } else {
            rustix::fs::futimens(&dir, &times)?;
            rustix::fs::fchmod(&dir, mode)?;
        }
        Ok(())
    }
}

/// Opens the directory `rel` under `root` one component at a time, each with `O_NOFOLLOW` and
/// `O_DIRECTORY`, so that a symbolic link anywhere on the way fails the open: the last component
/// with `last` (`O_RDONLY` or `O_PATH`), the others as paths only. An empty `rel` opens `root`.
fn open_beneath(root: BorrowedFd<'_>, rel: &Path, last: OFlags) -> rustix::io::Result<OwnedFd> {
    let always = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    let mut at: Option<OwnedFd> = None;
    let mut names = rel.components().peekable();
    while let Some(c) = names.next() {
        let Component::Normal(name) = c else { return Err(Errno::INVAL) };
        let how = if names.peek().is_some() { OFlags::PATH } else { last };
        let parent = at.as_ref().map_or(root, |fd| fd.as_fd());
        at = Some(rustix::fs::openat(parent, name, how | always, Mode::empty())?);
    }
    match at {
        Some(fd) => Ok(fd),
        None => rustix::fs::openat(root, ".", last | always, Mode::empty()),
    }
}

/// Why one member was not extracted (the others still are).
#[derive(Debug, thiserror::Error)]
pub enum ExtractError {
    /// A name (or hard link target) with a `..` component.
    #[error("refusing a member name with a '..' component")]
    DotDot,
    /// A directory that resolves outside the destination.
    #[error("refusing directory {}, which leads outside the destination", .0.display())]
    DirectoryOutside(PathBuf),
    /// A parent that is a symbolic link leading outside the destination.
    #[error("refusing to write through symbolic link {} that leads outside the destination", .0.display())]
    ThroughLinkOutside(PathBuf),
    /// A parent that is neither a directory nor a link to one inside the destination.
    #[error("{} is not a directory", .0.display())]
    NotADirectory(PathBuf),
    /// A directory where a member other than a directory goes.
    #[error("{} is a directory", .0.display())]
    IsADirectory(PathBuf),
    /// A hard link whose target `--strip-components` removes entirely.
    #[error("its hard link target has no components left after --strip-components")]
    LinkTargetStripped,
    /// A hard link whose target resolves outside the destination.
    #[error("refusing a hard link to {} outside the destination", .0.display())]
    HardLinkOutside(PathBuf),
    /// A device node, without the privilege to create one.
    #[error("cannot create a device node: not running as root")]
    DeviceNotRoot,
    /// A sparse member's map needs more data than the member stores.
    #[error("sparse map needs {needs} bytes of data, the member stores {stores}")]
    SparseShort {
        /// Bytes the map's regions add up to.
        needs: u64,
        /// Bytes the member stores.
        stores: u64,
    },
    /// A file system operation on a named path failed.
    #[error("{step}{}: {source}", path.display())]
    Path {
        /// What was being done.
        step: Step,
        /// The path.
        path: PathBuf,
        /// Why it failed.
        source: io::Error,
    },
    /// A file system operation on the member's own path failed.
    #[error("{0}")]
    Io(#[from] io::Error),
    /// Reading the member's data failed.
    #[error("{0}")]
    Read(#[from] crate::Error),
    /// What was written differs from the index's digests (the file is removed).
    #[error("damaged: bytes {}..{} of the member differ from the index's SHA-256 (not extracted)", .0.start, .0.end)]
    Damaged(std::ops::Range<u64>),
}

/// What extraction was doing with a path when it failed ([`ExtractError::Path`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// Looking it up.
    At,
    /// Creating it (a parent directory).
    Create,
    /// Removing what was there.
    Replace,
    /// Resolving a hard link's target.
    LinkTarget,
}

impl std::fmt::Display for Step {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Step::At => "",
            Step::Create => "cannot create ",
            Step::Replace => "cannot replace ",
            Step::LinkTarget => "hard link target ",
        })
    }
}

/// The result of extracting one member, or of a step of it.
type Outcome<T> = std::result::Result<T, ExtractError>;

/// [`ExtractError::Path`] for `step` on `path`.
fn path_error(step: Step, path: &Path) -> impl FnOnce(io::Error) -> ExtractError + '_ {
    move |source| ExtractError::Path { step, path: path.to_path_buf(), source }
}

/// A member name made relative and safe: leading `/` removed, `.` components dropped, `..`
/// refused.
pub fn safe_relative(name: &[u8]) -> Outcome<PathBuf> {
    let p = Path::new(std::ffi::OsStr::from_bytes(name));
    let mut out = PathBuf::new();
    for c in p.components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
            Component::ParentDir => return Err(ExtractError::DotDot),
        }
    }
    Ok(out)
}

fn to_time(mtime: i64) -> SystemTime {
    if mtime >= 0 {
        SystemTime::UNIX_EPOCH + Duration::from_secs(mtime as u64)
    } else {
        SystemTime::UNIX_EPOCH - Duration::from_secs(mtime.unsigned_abs())
    }
}

/// Creates the parents of `rel` under `root`, refusing to pass through anything that leads
/// outside `root`.
fn safe_parent(root: &Path, rel: &Path) -> Outcome<PathBuf> {
    let mut at = root.to_path_buf();
    if let Some(parent) = rel.parent() {
        for c in parent.components() {
            at.push(c);
            match fs::symlink_metadata(&at) {
                Ok(m) if m.file_type().is_symlink() => {
                    let real = fs::canonicalize(&at).map_err(path_error(Step::At, &at))?;
                    if !real.starts_with(root) {
                        return Err(ExtractError::ThroughLinkOutside(at));
                    }
                }
                Ok(m) if m.is_dir() => {}
                Ok(_) => return Err(ExtractError::NotADirectory(at)),
                Err(_) => fs::create_dir(&at).map_err(path_error(Step::Create, &at))?,
            }
        }
    }
    Ok(at.join(rel.file_name().unwrap_or_default()))
}

/// Removes whatever is at `target`, unless it is a directory.
fn clear(target: &Path) -> Outcome<()> {
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => Err(ExtractError::IsADirectory(target.to_path_buf())),
        Ok(_) => fs::remove_file(target).map_err(path_error(Step::Replace, target)),
        Err(_) => Ok(()),
    }
}

/// `name` without its first `n` components, counted as GNU tar counts them for
/// `--strip-components`: after any leading slashes, runs of slashes separate components, and
/// `.` is one (`./usr/bin/x` less 1 is `usr/bin/x`). `None` when nothing is left. (bsdtar
/// differs on absolute names, counting the root: GNU tar's count is the one followed.)
fn strip(name: &[u8], n: usize) -> Option<&[u8]> {
    let after_slashes = |s: &[u8]| -> usize { s.iter().position(|&b| b != b'/').unwrap_or(s.len()) };
    let mut rest = name;
    for _ in 0..n {
        rest = &rest[after_slashes(rest)..];
        rest = &rest[memchr::memchr(b'/', rest)?..];
    }
    if n > 0 {
        rest = &rest[after_slashes(rest)..];
    }
    (!rest.is_empty()).then_some(rest)
}

/// The path under the destination of a name, with `n` components stripped; `None` when nothing
/// is left of it.
fn stripped_relative(name: &[u8], n: usize) -> Outcome<Option<PathBuf>> {
    let Some(name) = strip(name, n) else { return Ok(None) };
    let rel = safe_relative(name)?;
    Ok((!rel.as_os_str().is_empty()).then_some(rel))
}

/// Where a member goes, and what it gets there.
struct Place<'p> {
    /// The destination (canonical).
    root: &'p Path,
    /// The member's path under it, its parents checked.
    target: PathBuf,
    /// The owner to restore, if any.
    owner: Option<(u32, u32)>,
    /// The member's permission bits.
    mode: u32,
}

/// Extracts one member; `Ok(false)` for one that is not written (a name that
/// `--strip-components` removes, a volume label, a multi-volume continuation).
/// Where a member goes, and what its content must be.
struct Dest<'a> {
    root: &'a Path,
    strip_n: usize,
    /// Its digests, where the index has them and they are checked.
    expected: Option<crate::format::digests::Found<'a>>,
}

fn extract_one(reader: &Reader<'_>, e: &Entry<'_>, to: &Dest<'_>, dirs: &mut DeferredDirs, owners: &mut Owners) -> Outcome<bool> {
    let (root, strip_n) = (to.root, to.strip_n);
    let path = e.path();
    let Some(name) = strip(&path, strip_n) else { return Ok(false) };
    let rel = safe_relative(name)?;
    if rel.as_os_str().is_empty() {
        // `./`: the destination itself, which a directory member gives its mode and time (at
        // the end, as any directory), as GNU tar does.
        let place = Place { root, target: root.to_path_buf(), owner: owners.of(e), mode: e.mode & 0o7777 };
        let is_dir = matches!(e.typeflag, b'5' | b'D');
        return if is_dir { extract_dir(&place, e, dirs).map(|()| true) } else { Ok(false) };
    }
    let place = Place { root, target: safe_parent(root, &rel)?, owner: owners.of(e), mode: e.mode & 0o7777 };
    match e.typeflag {
        b'5' | b'D' => extract_dir(&place, e, dirs)?,
        b'2' => {
            clear(&place.target)?;
            symlink(std::ffi::OsStr::from_bytes(e.link()), &place.target)?;
            chown(&place.target, place.owner);
            set_own_mtime(&place.target, e.mtime)?;
        }
        b'1' => extract_hard_link(&place, e, strip_n)?,
        b'3' | b'4' | b'6' => extract_node(&place, e)?,
        b'V' | b'M' | b'N' => return Ok(false),
        // Regular files, contiguous files, sparse files and unknown types (as tar does).
        _ => extract_file(reader, &place, e, to.expected)?,
    }
    Ok(true)
}

/// A directory member: created unless one is there, its mode and time noted for the end.
fn extract_dir(place: &Place<'_>, e: &Entry<'_>, dirs: &mut DeferredDirs) -> Outcome<()> {
    let target = &place.target;
    match fs::symlink_metadata(target) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            clear(target)?;
            fs::create_dir(target)?;
        }
        Err(_) => fs::create_dir(target)?,
    }
    let owned = chown(target, place.owner);
    dirs.note(place.root, target, safe_mode(place.mode, owned), e.mtime)
}

/// A hard link member: its target must resolve inside the destination.
fn extract_hard_link(place: &Place<'_>, e: &Entry<'_>, strip_n: usize) -> Outcome<()> {
    let Some(src_rel) = stripped_relative(e.link(), strip_n)? else {
        return Err(ExtractError::LinkTargetStripped);
    };
    let src = place.root.join(&src_rel);
    let real = fs::canonicalize(&src).map_err(path_error(Step::LinkTarget, &src_rel))?;
    if !real.starts_with(place.root) {
        return Err(ExtractError::HardLinkOutside(src_rel));
    }
    // A link to the very file at its own path (binutils' source tarball has one after every
    // file) leaves it as it is, as GNU tar and Python do.
    let target = &place.target;
    if fs::canonicalize(target).is_ok_and(|t| t == real) && fs::symlink_metadata(target).is_ok_and(|m| !m.file_type().is_symlink()) {
        return Ok(());
    }
    clear(target)?;
    Ok(fs::hard_link(&real, target)?)
}

/// A device node (as root only) or a FIFO.
fn extract_node(place: &Place<'_>, e: &Entry<'_>) -> Outcome<()> {
    use rustix::fs::{mknodat, FileType, CWD};
    let kind = match e.typeflag {
        b'3' => FileType::CharacterDevice,
        b'4' => FileType::BlockDevice,
        _ => FileType::Fifo,
    };
    if kind != FileType::Fifo && !rustix::process::geteuid().is_root() {
        return Err(ExtractError::DeviceNotRoot);
    }
    let target = &place.target;
    clear(target)?;
    let dev = rustix::fs::makedev(e.device.0 as u32, e.device.1 as u32);
    mknodat(CWD, target, kind, Mode::from_raw_mode(place.mode & 0o777), dev).map_err(io::Error::from)?;
    let owned = chown(target, place.owner);
    fs::set_permissions(target, fs::Permissions::from_mode(safe_mode(place.mode, owned)))?;
    Ok(set_own_mtime(target, e.mtime)?)
}

/// Gives `target` itself its modification time: a symbolic link's own (`AT_SYMLINK_NOFOLLOW`),
/// never what it points to.
fn set_own_mtime(target: &Path, mtime: i64) -> io::Result<()> {
    use rustix::fs::{AtFlags, Timespec, Timestamps, CWD, UTIME_OMIT};
    let times = Timestamps { last_access: Timespec { tv_sec: 0, tv_nsec: UTIME_OMIT }, last_modification: Timespec { tv_sec: mtime, tv_nsec: 0 } };
    Ok(rustix::fs::utimensat(CWD, target, &times, AtFlags::SYMLINK_NOFOLLOW)?)
}

/// A file's data written to a new file, which then gets its owner, mode and time.
/// Where the index has digests, the file written is checked against them before it gets its
/// mode and time, and removed where it differs.
fn extract_file(reader: &Reader<'_>, place: &Place<'_>, e: &Entry<'_>, expected: Option<crate::format::digests::Found<'_>>) -> Outcome<()> {
    let target = &place.target;
    clear(target)?;
    let f = OpenOptions::new().read(true).write(true).create_new(true).mode(0o600).open(target)?;
    write_file(reader, e, &f)?;
    if let Some(found) = expected {
        if let Err(m) = crate::digest::check_file(&f, found)? {
            let _ = fs::remove_file(target);
            return Err(ExtractError::Damaged(m.range));
        }
    }
    finish_file(&f, place, e)
}

/// A file's content: a sparse member, or any member read through a source that does not lend
/// its bytes (the checkpoints, the decoder moving forward, `pread`), whose entry may be the
/// index's (which does not say whether it is sparse): region by region, holes left unwritten.
fn write_file(reader: &Reader<'_>, e: &Entry<'_>, f: &fs::File) -> Outcome<()> {
    let Some(bytes) = reader.lent().filter(|_| e.sparse.is_none()) else {
        return write_regions(reader, e, f);
    };
    let mut w = BufWriter::with_capacity(1 << 20, f);
    write_data(bytes, reader.archive().path(), e, &reader.scan_options(), &mut w)?;
    Ok(std::io::Write::flush(&mut w)?)
}

/// A written file's owner, mode and time.
fn finish_file(f: &fs::File, place: &Place<'_>, e: &Entry<'_>) -> Outcome<()> {
    let target = &place.target;
    // The owner first: changing it clears setuid and setgid, which the mode then sets only
    // where the owner was restored.
    let owned = chown(target, place.owner);
    f.set_permissions(fs::Permissions::from_mode(safe_mode(place.mode, owned)))?;
    Ok(f.set_modified(to_time(e.mtime))?)
}

/// Writes a member's data regions at their offsets and sets its length, leaving a sparse
/// member's holes unwritten, as GNU tar does: a 60 GB sparse member with little data takes
/// little time and space. The regions are read through the reader's byte source
/// ([`Reader::layout_of`], which reads the header chain again and compares it with `e`), in
/// pieces of at most 1 MiB.
fn write_regions(reader: &Reader<'_>, e: &Entry<'_>, f: &fs::File) -> Outcome<()> {
    use std::os::unix::fs::FileExt;
    let layout = reader.layout_of(e)?;
    for &(logical, len, at) in &layout.regions {
        let mut done = 0u64;
        while done < len {
            let n = (len - done).min(1 << 20) as usize;
            let piece = reader.bytes_at(at + done, n)?;
            if piece.len() < n {
                return Err(ExtractError::SparseShort { needs: len, stores: done + piece.len() as u64 });
            }
            f.write_all_at(&piece, logical + done)?;
            done += n as u64;
        }
    }
    Ok(f.set_len(layout.size)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_names() {
        assert_eq!(safe_relative(b"/etc/passwd").unwrap(), PathBuf::from("etc/passwd"));
        assert_eq!(safe_relative(b"./a/./b").unwrap(), PathBuf::from("a/b"));
        assert!(safe_relative(b"a/../../b").is_err());
        assert!(safe_relative(b"..").is_err());
    }

    /// A directory replaced between its member and the end of the extraction (by another
    /// process: members cannot replace a directory) is reported and left alone, whether a
    /// symbolic link to outside or another directory now stands at its path.
    #[test]
    fn a_replaced_directory_is_left_alone() {
        use std::os::unix::fs::MetadataExt;
        let tmp = tempfile::tempdir().unwrap();
        let top = fs::canonicalize(tmp.path()).unwrap();
        let (dest, outside) = (top.join("dest"), top.join("outside"));
        for d in ["dest/a", "dest/b", "dest/c", "outside"] {
            fs::create_dir_all(top.join(d)).unwrap();
            fs::set_permissions(top.join(d), fs::Permissions::from_mode(0o700)).unwrap();
        }
        let mut dirs = DeferredDirs::new(&dest).unwrap();
        for d in ["a", "b", "c"] {
            dirs.note(&dest, &dest.join(d), 0o777, 0).unwrap();
        }
        fs::rename(dest.join("a"), dest.join("a.old")).unwrap();
        symlink(&outside, dest.join("a")).unwrap();
        fs::rename(dest.join("b"), dest.join("b.old")).unwrap();
        fs::create_dir(dest.join("b")).unwrap();
        fs::set_permissions(dest.join("b"), fs::Permissions::from_mode(0o700)).unwrap();
        let mut failures = Vec::new();
        dirs.apply(&dest, &mut failures);
        assert_eq!(failures.len(), 2, "{failures:?}");
        assert!(failures.iter().all(|f| f.contains("cannot set mode and time")), "{failures:?}");
        for d in ["outside", "dest/a.old", "dest/b", "dest/b.old"] {
            let m = fs::metadata(top.join(d)).unwrap();
            assert_eq!(m.mode() & 0o7777, 0o700, "{d}");
            assert_ne!(m.mtime(), 0, "{d}");
        }
        assert_eq!((fs::metadata(dest.join("c")).unwrap().mode() & 0o7777, fs::metadata(dest.join("c")).unwrap().mtime()), (0o777, 0));
    }
}
