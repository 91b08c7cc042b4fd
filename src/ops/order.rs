//! What extracting a sequence of members leaves on disk: a model of what `tar -xf` (GNU tar,
//! bsdtar, Python's `tarfile`) does with the sequence, used to decide whether moving members
//! changes an archive's meaning (DESIGN §10).
//!
//! The model follows the members in order over a map from normalized path to node:
//! - a directory member creates a directory, or sets the attributes of the one there (the last
//!   directory member of a path wins); parents that have no member are created implicitly;
//! - a regular file, a symlink, a device or a FIFO replaces what is at its path with a new inode;
//! - a hard link gives its path the inode that is at its target *at that moment*, and fails when
//!   there is nothing there (or a directory).
//!
//! The resulting tree is the map (each path's kind and the member that made its inode, so hard
//! links show as shared inodes) and the set of failed links. Two orders have the same meaning
//! when both trees and both failure sets are equal. Some sequences are read differently by
//! different readers: a member whose parent path is a file or a symlink, a directory over a file
//! or the reverse, a name with a `..` component. Where the model meets one, it does not claim to
//! know the result, and the orders are not taken to be the same.

use std::collections::HashMap;

/// What a member is, for extraction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// A regular file (also contiguous and sparse files).
    File,
    /// A directory.
    Dir,
    /// A symbolic link.
    Symlink,
    /// A hard link to this (normalized) path.
    HardLink(Vec<u8>),
    /// A device, a FIFO, or a header that some readers extract as a file.
    Other,
}

/// One member, as extraction sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The normalized path ([`normalize`]); `None` when readers disagree on it (`..`).
    pub name: Option<Vec<u8>>,
    /// What it is.
    pub kind: Kind,
}

impl Item {
    /// The item of a member named `name`, with typeflag `typeflag` and link target `link`.
    pub fn new(name: &[u8], typeflag: u8, link: &[u8]) -> Item {
        let kind = match typeflag {
            b'0' | 0 | b'7' | b'S' => Kind::File,
            b'5' => Kind::Dir,
            b'2' => Kind::Symlink,
            b'1' => match normalize(link) {
                Some(t) => Kind::HardLink(t),
                None => return Item { name: None, kind: Kind::Other },
            },
            _ => Kind::Other,
        };
        Item { name: normalize(name), kind }
    }
}

/// A path as extraction resolves it: leading `/` and `./` removed, `.` components and repeated
/// or trailing slashes dropped. The archive's root (`.`, `./`) is the empty path. `None` when a
/// component is `..`, which readers treat differently (skip, strip, refuse).
pub fn normalize(path: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(path.len());
    for c in path.split(|&b| b == b'/') {
        match c {
            b"" | b"." => {}
            b".." => return None,
            c => {
                if !out.is_empty() {
                    out.push(b'/');
                }
                out.extend_from_slice(c);
            }
        }
    }
    Some(out)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Node {
    /// A directory, with the last member that set its attributes.
    Dir(Option<usize>),
    /// A file, symlink or other non-directory, with the member that made its inode.
    Inode(usize, bool),
}

/// The tree a sequence extracts to.
#[derive(Debug, PartialEq, Eq)]
struct Tree<'a> {
    nodes: HashMap<&'a [u8], Node>,
    failed: Vec<usize>,
}

/// Why the model cannot tell what readers do with a sequence.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unclear {
    /// The member (its index in the items) where it became unclear.
    pub member: usize,
    /// Why.
    pub why: &'static str,
}

fn extract<'a>(items: &'a [Item], order: impl Iterator<Item = usize>) -> Result<Tree<'a>, Unclear> {
    let mut nodes: HashMap<&'a [u8], Node> = HashMap::with_capacity(items.len());
    let mut failed = Vec::new();
    for i in order {
        let item = &items[i];
        let unclear = |why| Unclear { member: i, why };
        let Some(name) = item.name.as_deref() else { return Err(unclear("its name has a `..` component, which readers treat differently")) };
        // Parents, implicitly created.
        for (j, _) in name.iter().enumerate().filter(|&(_, &b)| b == b'/') {
            match nodes.entry(&name[..j]).or_insert(Node::Dir(None)) {
                Node::Dir(_) => {}
                Node::Inode(..) => return Err(unclear("a parent of its path is a file or a link, which readers treat differently")),
            }
        }
        let here = nodes.get(name).copied();
        let new = match &item.kind {
            Kind::Dir => match here {
                Some(Node::Inode(..)) => return Err(unclear("it is a directory where a file was, which readers treat differently")),
                _ => Node::Dir(Some(i)),
            },
            Kind::HardLink(target) => match nodes.get(target.as_slice()).copied() {
                Some(n @ Node::Inode(..)) => n,
                _ => {
                    failed.push(i);
                    continue;
                }
            },
            kind => Node::Inode(i, *kind == Kind::Symlink),
        };
        if matches!(here, Some(Node::Dir(_))) && matches!(new, Node::Inode(..)) {
            return Err(unclear("it replaces a directory, which readers treat differently"));
        }
        nodes.insert(name, new);
    }
    Ok(Tree { nodes, failed })
}

/// Whether extracting `items` in the order `reordered` gives the same tree as in their own
/// order. `Err` says why not, naming a member.
pub fn same_meaning(items: &[Item], reordered: impl Iterator<Item = usize>) -> Result<(), Unclear> {
    let before = extract(items, 0..items.len())?;
    let after = extract(items, reordered)?;
    if before.nodes != after.nodes {
        let member = items
            .iter()
            .enumerate()
            .find(|(_, it)| it.name.as_deref().is_some_and(|n| before.nodes.get(n) != after.nodes.get(n)))
            .map_or(0, |(i, _)| i);
        let why = if before.nodes.values().any(|n| matches!(n, Node::Inode(..))) && items.iter().any(|it| matches!(it.kind, Kind::HardLink(_))) {
            "moving it changes what is extracted (a hard link to it, or another member of the same name, would come before it)"
        } else {
            "moving it changes what is extracted (another member of the same name would come before it)"
        };
        return Err(Unclear { member, why });
    }
    let mut a = before.failed.clone();
    let mut b = after.failed.clone();
    a.sort_unstable();
    b.sort_unstable();
    if a != b {
        let member = a.iter().chain(&b).find(|i| a.binary_search(i).is_err() || b.binary_search(i).is_err()).copied().unwrap_or(0);
        return Err(Unclear { member, why: "moving it changes which hard links can be made" });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn items(spec: &[(&str, u8, &str)]) -> Vec<Item> {
        spec.iter().map(|(n, t, l)| Item::new(n.as_bytes(), *t, l.as_bytes())).collect()
    }

    /// The first `k` moved to the end.
    fn moved(n: usize, k: usize) -> impl Iterator<Item = usize> {
        (k..n).chain(0..k)
    }

    #[test]
    fn independent_members_may_move() {
        let it = items(&[("a", b'0', ""), ("./d/", b'5', ""), ("d/b", b'0', ""), ("s", b'2', "a")]);
        assert_eq!(same_meaning(&it, moved(4, 2)), Ok(()));
    }

    #[test]
    fn a_hard_link_target_may_not_move_after_its_link() {
        let it = items(&[("usr/bin/perl", b'0', ""), ("x", b'0', ""), ("usr/bin/perl5.36.0", b'1', "./usr/bin/perl")]);
        assert!(same_meaning(&it, moved(3, 1)).is_err());
        // A link and its target moved together keep their order.
        assert_eq!(same_meaning(&it, moved(3, 0)), Ok(()));
    }

    #[test]
    fn self_links_are_harmless_when_they_stay_in_order() {
        let it = items(&[("a", b'0', ""), ("b", b'0', ""), ("b", b'1', "b")]);
        assert_eq!(same_meaning(&it, moved(3, 1)), Ok(()));
        assert!(same_meaning(&it, moved(3, 2)).is_err());
    }

    #[test]
    fn the_last_of_two_names_wins() {
        let it = items(&[("f", b'0', ""), ("g", b'0', ""), ("./f", b'0', "")]);
        assert!(same_meaning(&it, moved(3, 1)).is_err());
    }

    #[test]
    fn unclear_sequences_are_not_the_same() {
        assert!(same_meaning(&items(&[("a", b'0', ""), ("a/b", b'0', "")]), moved(2, 1)).is_err());
        assert!(same_meaning(&items(&[("../a", b'0', ""), ("b", b'0', "")]), moved(2, 1)).is_err());
        assert!(same_meaning(&items(&[("d", b'5', ""), ("d", b'0', "")]), moved(2, 1)).is_err());
    }

    #[test]
    fn paths_normalize() {
        assert_eq!(normalize(b"./a//b/./c/"), Some(b"a/b/c".to_vec()));
        assert_eq!(normalize(b"/abs"), Some(b"abs".to_vec()));
        assert_eq!(normalize(b"./"), Some(Vec::new()));
        assert_eq!(normalize(b"a/../b"), None);
    }
}
