//! The file tree that extracting an archive would leave, built from its members in archive
//! order, without touching any file: what `tarfs mount` shows.
//!
//! The rules are those of `tarfs extract` (and GNU tar's defaults, which it is tested against):
//! - a leading `/` and `.` components are dropped, and a name with a `..` component is left out;
//! - directories that paths imply but no member names are made, with mode 0755;
//! - a later member of the same name replaces an earlier one, except that only a directory can
//!   take the place of a directory (which keeps what is in it, and takes the newer attributes);
//! - a hard link is another name for the inode its target has at that point in the archive, so
//!   the link count counts the names left at the end; a link to itself changes nothing;
//! - a member whose parent is not a directory (a file, or a symbolic link, which tarfs does not
//!   follow) is left out, as extraction fails for it; so is a volume label (`V`) and the other
//!   GNU types tar does not extract (`M`, `N`).
//!
//! Several archives in one tree (a union, an archive grafted inside another) are layers of it:
//! see [`layers`].
//!
//! Memory is about 64 bytes per inode and 12 per name, plus the names: names live in one
//! arena, and each directory's entries are a sorted run of one vector, searched by binary
//! search.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::os::unix::ffi::OsStrExt;

use xxhash_rust::xxh3::xxh3_64;

mod layers;
pub use layers::Layer;

/// What an inode is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A directory.
    Dir,
    /// A regular file (member data, sparse or not).
    File,
    /// A symbolic link.
    Symlink,
    /// A character device.
    Char,
    /// A block device.
    Block,
    /// A FIFO.
    Fifo,
}

/// An inode's attributes, as the member gave them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attr {
    /// Its kind.
    pub kind: Kind,
    /// Permission bits (with setuid, setgid and sticky).
    pub mode: u32,
    /// Owner.
    pub uid: u32,
    /// Group.
    pub gid: u32,
    /// Modification time, seconds since the epoch.
    pub mtime: i64,
    /// Logical size (a symbolic link's: its target's length).
    pub size: u64,
}

/// An inode.
#[derive(Debug, Clone)]
pub struct Inode {
    /// Its attributes.
    pub attr: Attr,
    /// Names left pointing at it (for a directory: 2 plus its subdirectories).
    pub nlink: u32,
    /// What it holds: a file's member, a link's target, a device's numbers, a directory's
    /// entries.
    pub data: Data,
}

/// A directory's entries (`len` of them from `start` in the tree's entry list, sorted by
/// name) and its parent.
#[derive(Debug, Clone, Copy, Default)]
pub struct Dir {
    start: u32,
    len: u32,
    /// Its parent's inode number.
    pub parent: u32,
}

/// What an inode's contents are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Data {
    /// None (a FIFO).
    None,
    /// A directory: its entry in the tree's directory list.
    Dir(u32),
    /// The member with this number.
    Member(u32),
    /// A symbolic link's target: `attr.size` bytes at this offset in the name arena.
    Target(u32),
    /// A device's numbers (major, minor).
    Device(u32, u32),
}

/// A directory entry: a name in the arena, and the inode it names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Child {
    at: u32,
    len: u32,
    /// The inode number.
    pub ino: u32,
}

/// Inode number of the root directory.
pub const ROOT: u32 = 1;

/// A member as [`TreeBuilder::add`] takes it.
#[derive(Debug, Clone, Copy)]
pub struct MemberInfo<'a> {
    /// Its path, as stored.
    pub path: &'a [u8],
    /// Its effective typeflag.
    pub typeflag: u8,
    /// Its link target (hard or symbolic).
    pub link: &'a [u8],
    /// Its attributes (the kind is derived from the typeflag).
    pub mode: u32,
    /// Owner.
    pub uid: u64,
    /// Group.
    pub gid: u64,
    /// Modification time.
    pub mtime: i64,
    /// Logical size.
    pub size: u64,
    /// Device numbers.
    pub device: (u64, u64),
}

/// The hasher of the builder's lookup keys, which are already hashes (a directory's number and
/// the xxh3 of a name): mixing them is enough, where SipHash cost a tenth of building a tree of
/// 1M members.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.write_u64(u64::from(b));
        }
    }

    fn write_u32(&mut self, v: u32) {
        self.write_u64(u64::from(v));
    }

    fn write_u64(&mut self, v: u64) {
        self.0 = (self.0.rotate_left(5) ^ v).wrapping_mul(0x51_7c_c1_b7_27_22_0a_95);
    }
}

/// Builds a [`Tree`].
#[derive(Debug)]
pub struct TreeBuilder {
    tree: Tree,
    /// Each directory's entries, while building.
    children: Vec<Vec<Child>>,
    /// (parent, xxh3 of the name) to the entry's index in the parent's list, while building.
    lookup: HashMap<(u32, u64), u32, BuildHasherDefault<KeyHasher>>,
    /// Attributes of directories that no member names.
    implied: Attr,
    /// Where the archive being added goes, and what it may replace (see [`layers`]).
    layer: layers::Layer,
}

/// The tree: inodes (numbered from 1; 1 is the root) and the name arena.
#[derive(Debug, Default)]
pub struct Tree {
    inodes: Vec<Inode>,
    dirs: Vec<Dir>,
    entries: Vec<Child>,
    names: Vec<u8>,
    /// Members left out, and why (for the log).
    pub skipped: Vec<(Vec<u8>, &'static str)>,
}

impl TreeBuilder {
    /// An empty tree whose root and implied directories have `dir` as attributes (mode 0755,
    /// the mounting user, the mount's time, as extraction would give them).
    pub fn new(uid: u32, gid: u32, now: i64) -> TreeBuilder {
        let implied = Attr { kind: Kind::Dir, mode: 0o755, uid, gid, mtime: now, size: 0 };
        let root = Inode { attr: implied, nlink: 2, data: Data::Dir(0) };
        let tree = Tree { inodes: vec![root], dirs: vec![Dir { start: 0, len: 0, parent: ROOT }], entries: Vec::new(), names: Vec::new(), skipped: Vec::new() };
        TreeBuilder { tree, children: vec![Vec::new()], lookup: HashMap::default(), implied, layer: layers::Layer::default() }
    }

    fn push_name(&mut self, name: &[u8]) -> (u32, u32) {
        let at = u32::try_from(self.tree.names.len()).unwrap_or(u32::MAX);
        self.tree.names.extend_from_slice(name);
        (at, u32::try_from(name.len()).unwrap_or(u32::MAX))
    }

    fn new_inode(&mut self, attr: Attr, data: Data, parent: u32) -> u32 {
        let data = if attr.kind == Kind::Dir {
            self.tree.dirs.push(Dir { start: 0, len: 0, parent });
            self.children.push(Vec::new());
            Data::Dir(u32::try_from(self.tree.dirs.len() - 1).unwrap_or(u32::MAX))
        } else {
            data
        };
        self.tree.inodes.push(Inode { attr, nlink: if attr.kind == Kind::Dir { 2 } else { 0 }, data });
        u32::try_from(self.tree.inodes.len()).unwrap_or(u32::MAX)
    }

    /// The directory list index of inode `dir`.
    fn dir_index(&self, dir: u32) -> usize {
        match self.tree.inode(dir).map(|i| i.data) {
            Some(Data::Dir(d)) => d as usize,
            _ => unreachable!("only directories have entries"),
        }
    }

    /// The entry `name` of directory `dir`, while building: (its index in the list, inode).
    fn find(&self, dir: u32, name: &[u8]) -> Option<(usize, u32)> {
        let kids = &self.children[self.dir_index(dir)];
        let names = &self.tree.names;
        let is = |c: &Child| names.get(c.at as usize..(c.at + c.len) as usize) == Some(name);
        match self.lookup.get(&(dir, xxh3_64(name))) {
            Some(&k) if kids.get(k as usize).is_some_and(is) => Some((k as usize, kids[k as usize].ino)),
            // Another name with the same hash (or none): look through the list.
            Some(_) => kids.iter().position(is).map(|k| (k, kids[k].ino)),
            None => None,
        }
    }

    /// Links `ino` under `dir` as `name`, replacing what was there.
    fn link(&mut self, dir: u32, name: &[u8], ino: u32) {
        let d = self.dir_index(dir);
        if let Some((k, old)) = self.find(dir, name) {
            self.unlink_ino(old, dir);
            self.children[d][k].ino = ino;
        } else {
            let (at, len) = self.push_name(name);
            let k = u32::try_from(self.children[d].len()).unwrap_or(u32::MAX);
            self.children[d].push(Child { at, len, ino });
            self.lookup.entry((dir, xxh3_64(name))).or_insert(k);
        }
        let child = self.tree.inode_mut(ino);
        if let Data::Dir(cd) = child.data {
            // A directory has one name; its count is 2 and one per subdirectory.
            self.tree.dirs[cd as usize].parent = dir;
            self.tree.inode_mut(dir).nlink += 1;
        } else {
            child.nlink += 1;
        }
    }

    /// One name of `ino` (under `dir`) is gone.
    fn unlink_ino(&mut self, ino: u32, dir: u32) {
        let was_dir = {
            let i = self.tree.inode_mut(ino);
            i.nlink = i.nlink.saturating_sub(1);
            i.attr.kind == Kind::Dir
        };
        if was_dir {
            let d = self.tree.inode_mut(dir);
            d.nlink = d.nlink.saturating_sub(1);
        }
    }

    /// The directory `components` name, made where missing; `None` if a component is not a
    /// directory.
    fn dir_of(&mut self, components: &[&[u8]]) -> Option<u32> {
        let mut at = self.layer.base;
        for c in components {
            at = match self.find(at, c).map(|f| f.1) {
                Some(ino) if self.tree.inode(ino)?.attr.kind == Kind::Dir => ino,
                Some(ino) if !self.layer.replaces(ino) => return None,
                _ => {
                    let ino = self.new_inode(self.implied, Data::None, at);
                    self.link(at, c, ino);
                    ino
                }
            };
        }
        Some(at)
    }

    /// The inode `components` name now (from the current archive's directory), following no
    /// symbolic link.
    fn resolve(&self, components: &[&[u8]]) -> Option<u32> {
        let mut at = self.layer.base;
        for c in components {
            if self.tree.inode(at)?.attr.kind != Kind::Dir {
                return None;
            }
            at = self.find(at, c)?.1;
        }
        Some(at)
    }

    /// Adds member number `member`, in archive order.
    pub fn add(&mut self, member: u32, m: &MemberInfo<'_>) {
        let Some(parts) = components(m.path) else {
            self.tree.skipped.push((m.path.to_vec(), "its name has a '..' component"));
            return;
        };
        let kind = match m.typeflag {
            b'5' | b'D' => Kind::Dir,
            b'2' => Kind::Symlink,
            b'3' => Kind::Char,
            b'4' => Kind::Block,
            b'6' => Kind::Fifo,
            b'V' | b'M' | b'N' => return,
            _ => Kind::File,
        };
        let clamp = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
        // An owner no file can have (u32::MAX is "no change" to chown) stays the extracting
        // user's, as extraction leaves it.
        let owner = |v: u64, own: u32| u32::try_from(v).ok().filter(|&v| v != u32::MAX).unwrap_or(own);
        let attr = Attr {
            kind,
            mode: m.mode & 0o7777,
            uid: owner(m.uid, self.implied.uid),
            gid: owner(m.gid, self.implied.gid),
            mtime: m.mtime,
            size: if kind == Kind::File { m.size } else if kind == Kind::Symlink { m.link.len() as u64 } else { 0 },
        };
        let Some((last, parents)) = parts.split_last() else {
            // `./` or `/`: the root's own attributes (a grafted archive's directory keeps its
            // member's).
            if kind == Kind::Dir && self.layer.base == ROOT {
                self.tree.inode_mut(ROOT).attr = attr;
            }
            return;
        };
        let Some(dir) = self.dir_of(parents) else {
            self.tree.skipped.push((m.path.to_vec(), "a directory in its path is not one"));
            return;
        };
        let existing = self.find(dir, last).map(|f| f.1);
        let existing_kind = existing.and_then(|i| self.tree.inode(i)).map(|i| i.attr.kind);
        if kind == Kind::Dir {
            match (existing, existing_kind) {
                (Some(ino), Some(Kind::Dir)) => self.tree.inode_mut(ino).attr = attr,
                _ => {
                    let ino = self.new_inode(attr, Data::None, dir);
                    self.link(dir, last, ino);
                }
            }
            return;
        }
        if existing_kind == Some(Kind::Dir) && !existing.is_some_and(|i| self.layer.replaces(i)) {
            self.tree.skipped.push((m.path.to_vec(), "a directory of its name is in the way"));
            return;
        }
        if m.typeflag == b'1' {
            let target = components(m.link).and_then(|t| self.resolve(&t));
            // Only to an inode of this archive's (in a union, never one an earlier archive made).
            match target.filter(|&t| self.layer.owns(t) && self.tree.inode(t).is_some_and(|i| i.attr.kind != Kind::Dir)) {
                Some(t) if Some(t) == existing => {}
                Some(t) => self.link(dir, last, t),
                None => self.tree.skipped.push((m.path.to_vec(), "its hard link target is not there")),
            }
            return;
        }
        let data = match kind {
            Kind::File => Data::Member(member),
            Kind::Symlink => Data::Target(self.push_name(m.link).0),
            Kind::Char | Kind::Block => Data::Device(clamp(m.device.0), clamp(m.device.1)),
            _ => Data::None,
        };
        let ino = self.new_inode(attr, data, dir);
        self.link(dir, last, ino);
    }

    /// Adds every member `index` lists, in archive order, and finishes the tree: member `i`
    /// (numbered from 0, as [`Data::Member`] names it) is handed to `each` as it is added.
    pub fn add_all(mut self, index: &dyn crate::members::MemberIndex, each: &mut dyn FnMut(&crate::members::Member)) -> crate::Result<Tree> {
        self.add_index(0, index, each)?;
        Ok(self.finish())
    }

    /// Adds every member `index` lists, in archive order, numbered from `first` (the archives
    /// of a union, and those grafted into it, number their members one after the other):
    /// member `first + i` is handed to `each` as it is added. The count added.
    pub fn add_index(&mut self, first: u32, index: &dyn crate::members::MemberIndex, each: &mut dyn FnMut(&crate::members::Member)) -> crate::Result<u32> {
        let mut n = first;
        index.for_each(&mut |_, m| {
            each(m);
            self.add(n, &MemberInfo { path: &m.path, typeflag: m.typeflag, link: &m.link, mode: m.mode, uid: m.uid, gid: m.gid, mtime: m.mtime, size: m.size, device: m.device });
            n = n.saturating_add(1);
            Ok(())
        })?;
        Ok(n - first)
    }

    /// The members left out so far, and why.
    pub fn skipped(&self) -> &[(Vec<u8>, &'static str)] {
        &self.tree.skipped
    }

    /// The finished tree: each directory's entries sorted by name.
    pub fn finish(self) -> Tree {
        let TreeBuilder { mut tree, children, lookup, .. } = self;
        drop(lookup);
        let names = &tree.names;
        let mut entries = Vec::with_capacity(children.iter().map(Vec::len).sum());
        for (dir, mut kids) in tree.dirs.iter_mut().zip(children) {
            kids.sort_unstable_by(|a, b| names[a.at as usize..(a.at + a.len) as usize].cmp(&names[b.at as usize..(b.at + b.len) as usize]));
            dir.start = u32::try_from(entries.len()).unwrap_or(u32::MAX);
            dir.len = u32::try_from(kids.len()).unwrap_or(u32::MAX);
            entries.extend(kids);
        }
        tree.dirs.shrink_to_fit();
        tree.entries = entries;
        tree.names.shrink_to_fit();
        tree.inodes.shrink_to_fit();
        tree
    }
}

/// The components of a member name, as extraction makes it relative (see
/// [`crate::ops::extract::safe_relative`]); `None` for a name with `..`.
fn components(name: &[u8]) -> Option<Vec<&[u8]>> {
    let p = std::path::Path::new(std::ffi::OsStr::from_bytes(name));
    let mut out = Vec::new();
    for c in p.components() {
        match c {
            std::path::Component::Normal(part) => out.push(part.as_bytes()),
            std::path::Component::ParentDir => return None,
            _ => {}
        }
    }
    Some(out)
}

impl Tree {
    /// Inode `ino`.
    pub fn inode(&self, ino: u32) -> Option<&Inode> {
        self.inodes.get(usize::try_from(ino).ok()?.checked_sub(1)?)
    }

    fn inode_mut(&mut self, ino: u32) -> &mut Inode {
        &mut self.inodes[ino as usize - 1]
    }

    /// The number of inodes.
    pub fn len(&self) -> usize {
        self.inodes.len()
    }

    /// Whether there is only the root.
    pub fn is_empty(&self) -> bool {
        self.inodes.len() <= 1
    }

    /// A directory entry's name.
    pub fn name(&self, c: &Child) -> &[u8] {
        &self.names[c.at as usize..(c.at + c.len) as usize]
    }

    /// The entries of directory `dir`, sorted by name.
    pub fn children(&self, dir: u32) -> &[Child] {
        match self.inode(dir).map(|i| i.data) {
            Some(Data::Dir(d)) => self.dirs.get(d as usize).and_then(|d| self.entries.get(d.start as usize..(d.start + d.len) as usize)).unwrap_or(&[]),
            _ => &[],
        }
    }

    /// The parent of directory `dir` (the root's is itself).
    pub fn parent(&self, dir: u32) -> u32 {
        match self.inode(dir).map(|i| i.data) {
            Some(Data::Dir(d)) => self.dirs.get(d as usize).map_or(ROOT, |d| d.parent),
            _ => ROOT,
        }
    }

    /// The entry `name` of directory `dir`.
    pub fn lookup(&self, dir: u32, name: &[u8]) -> Option<u32> {
        let kids = self.children(dir);
        let i = kids.binary_search_by(|c| self.name(c).cmp(name)).ok()?;
        Some(kids[i].ino)
    }

    /// A symbolic link's target.
    pub fn target(&self, ino: u32) -> Option<&[u8]> {
        let i = self.inode(ino)?;
        match i.data {
            Data::Target(at) => self.names.get(at as usize..(at as usize).saturating_add(usize::try_from(i.attr.size).ok()?)),
            _ => None,
        }
    }

    /// Bytes held, roughly (for the memory figure of `-v`).
    pub fn heap_bytes(&self) -> usize {
        self.names.capacity() + self.inodes.capacity() * std::mem::size_of::<Inode>() + self.entries.capacity() * std::mem::size_of::<Child>() + self.dirs.capacity() * std::mem::size_of::<Dir>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m<'a>(path: &'a str, typeflag: u8, link: &'a str, size: u64) -> MemberInfo<'a> {
        MemberInfo { path: path.as_bytes(), typeflag, link: link.as_bytes(), mode: 0o644, uid: 1, gid: 2, mtime: 7, size, device: (0, 0) }
    }

    fn path(t: &Tree, p: &str) -> Option<u32> {
        p.split('/').try_fold(ROOT, |at, c| t.lookup(at, c.as_bytes()))
    }

    #[test]
    fn extraction_semantics() {
        let mut b = TreeBuilder::new(0, 0, 100);
        b.add(0, &m("./a/b/f", b'0', "", 3));
        b.add(1, &m("a/h", b'1', "a/b/f", 0));
        b.add(2, &m("a/b/f", b'0', "", 9)); // replaces f; h keeps the old inode
        b.add(3, &m("/a/s", b'2', "b/f", 0));
        b.add(4, &m("../x", b'0', "", 1));
        b.add(5, &m("a/s/y", b'0', "", 1)); // through a symlink: left out
        b.add(6, &m("a/b", b'0', "", 1)); // a file over a directory: left out
        b.add(7, &m("a/b/", b'5', "", 0));
        b.add(8, &m("a/h2", b'1', "a/h", 0));
        b.add(9, &m("a/h2", b'1', "a/h2", 0)); // to itself
        let t = b.finish();
        let f = path(&t, "a/b/f").unwrap();
        let h = path(&t, "a/h").unwrap();
        assert_ne!(f, h);
        assert_eq!(t.inode(f).unwrap().data, Data::Member(2));
        assert_eq!((t.inode(h).unwrap().data, t.inode(h).unwrap().nlink), (Data::Member(0), 2));
        assert_eq!(path(&t, "a/h2"), Some(h));
        assert_eq!(t.target(path(&t, "a/s").unwrap()), Some(&b"b/f"[..]));
        assert_eq!(path(&t, "x"), None);
        let a = path(&t, "a").unwrap();
        assert_eq!((t.inode(a).unwrap().attr.mode, t.inode(a).unwrap().attr.mtime, t.inode(a).unwrap().nlink), (0o755, 100, 3));
        let bdir = path(&t, "a/b").unwrap();
        assert_eq!((t.inode(bdir).unwrap().attr.mode, t.inode(bdir).unwrap().attr.mtime), (0o644, 7));
        assert_eq!(t.skipped.len(), 3);
        let names: Vec<&[u8]> = t.children(a).iter().map(|c| t.name(c)).collect();
        assert_eq!(names, [&b"b"[..], b"h", b"h2", b"s"]);
    }
}
