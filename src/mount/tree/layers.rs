//! Trees of several archives: a union of archives added one after the other (the later one's
//! entries replacing the earlier ones'), and an archive inside an archive grafted as a
//! directory in place of its member (`tarfs mount --recursive`).
//!
//! A [`Layer`] is where the archive being added goes (the directory its paths start from) and
//! the first inode it made: what is older belongs to earlier archives, which any entry of this
//! one replaces (a file a directory, a directory a file, as ratarmount's union does; two
//! directories still merge), and which its hard links never reach. One archive alone is one
//! layer from inode 1, and so is built by the rules of extraction, unchanged.

use super::{components, Attr, Data, Kind, TreeBuilder, ROOT};

/// Where an archive's members go, and which inodes are its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// The directory its paths start from.
    pub(super) base: u32,
    /// Its first inode: older ones are earlier archives'.
    first: u32,
}

impl Default for Layer {
    fn default() -> Layer {
        Layer { base: ROOT, first: 1 }
    }
}

impl Layer {
    /// Whether an entry of this archive replaces inode `ino` whatever their kinds.
    pub(super) fn replaces(&self, ino: u32) -> bool {
        ino < self.first
    }

    /// Whether inode `ino` is this archive's (a hard link may name it).
    pub(super) fn owns(&self, ino: u32) -> bool {
        ino >= self.first
    }
}

impl TreeBuilder {
    /// The next archive of a union: its paths start at the root, and its entries replace what
    /// earlier archives left there.
    pub fn next_archive(&mut self) {
        self.layer = Layer { base: ROOT, first: self.next_ino() };
    }

    /// Replaces the file `path` (from the current archive's directory), which member `member`
    /// still is, with an empty directory that has its attributes (and search permission where
    /// it can be read), and adds what follows into it as another archive, until
    /// [`TreeBuilder::restore`] is given the layer returned. `None` (nothing changed) where the
    /// path is no longer that member.
    pub fn graft(&mut self, path: &[u8], member: u32) -> Option<Layer> {
        let parts = components(path)?;
        let (last, parents) = parts.split_last()?;
        let dir = self.resolve(parents)?;
        let file = self.find(dir, last)?.1;
        let attr = self.tree.inode(file).filter(|i| i.data == Data::Member(member))?.attr;
        let mode = attr.mode | (attr.mode & 0o444) >> 2;
        let ino = self.new_inode(Attr { kind: Kind::Dir, mode, size: 0, ..attr }, Data::None, dir);
        self.link(dir, last, ino);
        let was = self.layer;
        self.layer = Layer { base: ino, first: self.next_ino() };
        Some(was)
    }

    /// Goes back to adding to `layer` (what [`TreeBuilder::graft`] returned).
    pub fn restore(&mut self, layer: Layer) {
        self.layer = layer;
    }

    /// The number the next inode will have.
    fn next_ino(&self) -> u32 {
        u32::try_from(self.tree.len() + 1).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MemberInfo, Tree};
    use super::*;

    fn m<'a>(path: &'a str, typeflag: u8, link: &'a str) -> MemberInfo<'a> {
        MemberInfo { path: path.as_bytes(), typeflag, link: link.as_bytes(), mode: 0o644, uid: 1, gid: 2, mtime: 7, size: 1, device: (0, 0) }
    }

    fn path(t: &Tree, p: &str) -> Option<u32> {
        p.split('/').try_fold(ROOT, |at, c| t.lookup(at, c.as_bytes()))
    }

    #[test]
    fn later_archives_replace_and_directories_merge() {
        let mut b = TreeBuilder::new(0, 0, 100);
        b.add(0, &m("d/x", b'0', ""));
        b.add(1, &m("f", b'0', ""));
        b.add(2, &m("e/g", b'0', ""));
        b.add(3, &m("p", b'0', ""));
        b.next_archive();
        b.add(4, &m("d", b'0', "")); // a file over a directory
        b.add(5, &m("f/in", b'0', "")); // a directory (implied) over a file
        b.add(6, &m("e/h", b'0', "")); // directories merge
        b.add(7, &m("l", b'1', "p")); // a hard link to an earlier archive's file: left out
        b.add(8, &m("p", b'0', ""));
        b.add(9, &m("q", b'1', "p"));
        let t = b.finish();
        assert_eq!(t.inode(path(&t, "d").unwrap()).unwrap().data, Data::Member(4));
        assert_eq!(t.inode(path(&t, "f/in").unwrap()).unwrap().data, Data::Member(5));
        assert!(path(&t, "e/g").is_some() && path(&t, "e/h").is_some());
        assert_eq!(path(&t, "l"), None);
        assert_eq!(path(&t, "q"), path(&t, "p"));
        assert_eq!(t.inode(path(&t, "p").unwrap()).unwrap().nlink, 2);
    }

    #[test]
    fn an_archive_grafts_in_place_of_its_member() {
        let mut b = TreeBuilder::new(0, 0, 100);
        b.add(0, &m("a/in.tar", b'0', ""));
        let was = b.graft(b"a/in.tar", 0).unwrap();
        b.add(1, &m("./", b'5', ""));
        b.add(2, &m("x/y", b'0', ""));
        b.add(3, &m("z", b'1', "x/y"));
        b.restore(was);
        assert_eq!(b.graft(b"a/in.tar", 0), None, "no longer that member");
        let t = b.finish();
        let dir = t.inode(path(&t, "a/in.tar").unwrap()).unwrap();
        assert_eq!((dir.attr.kind, dir.attr.mode), (Kind::Dir, 0o755));
        assert_eq!(path(&t, "a/in.tar/z"), path(&t, "a/in.tar/x/y"));
        assert_eq!(t.inode(path(&t, "a/in.tar/x/y").unwrap()).unwrap().data, Data::Member(2));
    }
}
