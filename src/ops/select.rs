//! Which members a command names, as GNU tar chooses them for `tar -t`/`tar -x`: member operands,
//! `--wildcards` and `--exclude`.
//!
//! - An operand names a member and, if it is a directory, everything under it: `a/b` selects
//!   `a/b` and `a/b/c`, not `a/bc`. A leading `./` and trailing `/` are ignored on both sides.
//! - With `--wildcards`, operands are globs (`*` matches `/`, as GNU tar's default
//!   `--wildcards-match-slash`), matched against the whole name or one of its leading
//!   directories (GNU tar's recursion, `FNM_LEADING_DIR`).
//! - `--exclude` globs are not anchored, as GNU tar's default: `b` or `*.o` leaves out a member
//!   when it matches any run of whole components of the name, so `--exclude b` leaves out `a/b`
//!   and everything under it.
//! - An operand that selects nothing is reported, as tar's "Not found in archive".

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{Glob, GlobMatcher, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result, UsageError};
use crate::format::ext::normalize_name;

/// A compiled member selection.
#[derive(Debug, Clone, Default)]
pub struct Selection {
    operands: Vec<Vec<u8>>,
    globs: Option<Vec<GlobMatcher>>,
    exclude: Option<GlobSet>,
    found: Vec<bool>,
}

fn glob(g: &str) -> Result<Glob> {
    Glob::new(g).map_err(|reason| Error::Usage { what: UsageError::BadPattern { pattern: g.to_string(), reason } })
}

impl Selection {
    /// Selects members named by `operands` (all, if there are none), taken as globs with
    /// `wildcards`, less those that `exclude` matches.
    pub fn new(operands: Vec<Vec<u8>>, wildcards: bool, exclude: &[String]) -> Result<Selection> {
        let globs = if wildcards {
            let each = operands.iter().map(|o| Ok(glob(&String::from_utf8_lossy(normalize_name(o)))?.compile_matcher()));
            Some(each.collect::<Result<Vec<_>>>()?)
        } else {
            None
        };
        let exclude = if exclude.is_empty() {
            None
        } else {
            let mut b = GlobSetBuilder::new();
            for g in exclude {
                b.add(glob(&String::from_utf8_lossy(normalize_name(g.as_bytes())))?);
            }
            Some(b.build().map_err(|e| Error::Usage { what: UsageError::GlobSet(e) })?)
        };
        let found = vec![false; operands.len()];
        Ok(Selection { operands, globs, exclude, found })
    }

    /// Everything.
    pub fn all() -> Selection {
        Selection::default()
    }

    /// Whether the member named `path` is selected; notes which operands it satisfies.
    pub fn take(&mut self, path: &[u8]) -> bool {
        let name = normalize_name(path);
        if self.exclude.as_ref().is_some_and(|x| excluded(x, name)) {
            return false;
        }
        if self.operands.is_empty() {
            return true;
        }
        let mut any = false;
        for i in 0..self.operands.len() {
            let hit = match &self.globs {
                Some(g) => leading_dirs(name).any(|p| g[i].is_match(Path::new(OsStr::from_bytes(p)))),
                None => selects(&self.operands[i], path),
            };
            if hit {
                self.found[i] = true;
                any = true;
            }
        }
        any
    }

    /// The operands that selected nothing, as given.
    pub fn unmatched(&self) -> impl Iterator<Item = &[u8]> {
        self.operands.iter().zip(&self.found).filter(|(_, f)| !**f).map(|(o, _)| o.as_slice())
    }
}

/// Whether the member named `name` is `operand` or under it (`a/b` selects `a/b` and `a/b/c`,
/// not `a/bc`), as an operand selects without `--wildcards`; both are compared as
/// [`normalize_name`] leaves them (no leading `./`, no trailing `/`). The operand `.` selects
/// `./` and every name that starts with `./`, as it does in GNU tar.
pub fn selects(operand: &[u8], name: &[u8]) -> bool {
    let (w, normal) = (normalize_name(operand), normalize_name(name));
    if w == b"." && name.starts_with(b"./") {
        return true;
    }
    normal == w || (normal.starts_with(w) && normal.get(w.len()) == Some(&b'/'))
}

/// `a/b/c`, then `a/b`, then `a`.
fn leading_dirs(name: &[u8]) -> impl Iterator<Item = &[u8]> {
    let cuts = name.iter().enumerate().filter(|(_, &c)| c == b'/').map(|(i, _)| i).collect::<Vec<_>>();
    std::iter::once(name).chain(cuts.into_iter().rev().map(move |i| &name[..i]))
}

/// Whether some run of whole components of `name` matches.
fn excluded(set: &GlobSet, name: &[u8]) -> bool {
    let starts = std::iter::once(0).chain(name.iter().enumerate().filter(|(_, &c)| c == b'/').map(|(i, _)| i + 1));
    starts.filter(|&s| s < name.len()).any(|s| leading_dirs(&name[s..]).any(|p| set.is_match(Path::new(OsStr::from_bytes(p)))))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sel(ops: &[&str], wildcards: bool, exclude: &[&str]) -> Selection {
        let ex: Vec<String> = exclude.iter().map(|s| s.to_string()).collect();
        Selection::new(ops.iter().map(|o| o.as_bytes().to_vec()).collect(), wildcards, &ex).unwrap()
    }

    #[test]
    fn operands_select_members_and_what_is_under_them() {
        let mut s = sel(&["a/b", "./x/", "missing"], false, &[]);
        assert!(s.take(b"a/b") && s.take(b"./a/b/c") && !s.take(b"a/bc") && !s.take(b"a"));
        assert!(s.take(b"x") && s.take(b"x/y"));
        assert_eq!(s.unmatched().collect::<Vec<_>>(), vec![b"missing".as_slice()]);
        // `.` is what starts with `./`, as in GNU tar.
        let mut s = sel(&["."], false, &[]);
        assert!(s.take(b"./") && s.take(b"./a/b") && s.take(b".") && !s.take(b"a") && !s.take(b".a"));
        // Not wildcards unless asked: `*` is a character.
        let mut s = sel(&["*.c"], false, &[]);
        assert!(!s.take(b"a.c") && s.take(b"*.c"));
    }

    #[test]
    fn wildcards_match_across_slashes_and_leading_directories() {
        let mut s = sel(&["*.c", "d?r"], true, &[]);
        assert!(s.take(b"src/deep/a.c") && s.take(b"dir/file") && s.take(b"./dxr") && !s.take(b"a.h"));
        assert_eq!(s.unmatched().count(), 0);
    }

    #[test]
    fn excludes_are_unanchored_whole_components() {
        let mut s = sel(&[], false, &["b", "*.o"]);
        assert!(!s.take(b"a/b") && !s.take(b"a/b/c") && !s.take(b"b") && !s.take(b"x/y.o"));
        assert!(s.take(b"a/bc") && s.take(b"ab") && s.take(b"a/c"));
        let mut s = sel(&["a"], false, &["a/secret"]);
        assert!(s.take(b"a/open") && !s.take(b"a/secret/k") && !s.take(b"z"));
    }
}
