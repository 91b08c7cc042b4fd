//! Member filters for subset indexes: `--include` and `--exclude` globs over member paths.
//!
//! A member is selected when it matches some include glob (or there are none) and no exclude glob.
//! `*` matches across `/`, as in GNU tar's `--wildcards`. The filter is recorded in the index as
//! `+GLOB`/`-GLOB` lines, so that `verify` can tell a subset from a stale index.

use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use globset::{Glob, GlobSet, GlobSetBuilder};

use crate::error::{Error, Result, UsageError};
use crate::format::tarfs::IndexError;

/// A compiled member filter.
#[derive(Debug, Clone)]
pub struct Filter {
    include: Option<GlobSet>,
    exclude: GlobSet,
    text: String,
}

impl Filter {
    /// Builds a filter; `None` when both lists are empty (every member is selected).
    pub fn new(include: &[String], exclude: &[String]) -> Result<Option<Filter>> {
        Filter::build(include, exclude).map_err(|what| Error::Usage { what })
    }

    /// [`Filter::new`], with why a glob does not parse.
    fn build(include: &[String], exclude: &[String]) -> std::result::Result<Option<Filter>, UsageError> {
        if include.is_empty() && exclude.is_empty() {
            return Ok(None);
        }
        let set = |globs: &[String]| -> std::result::Result<GlobSet, UsageError> {
            let mut b = GlobSetBuilder::new();
            for g in globs {
                b.add(Glob::new(g).map_err(|reason| UsageError::BadGlob { pattern: g.clone(), reason })?);
            }
            b.build().map_err(UsageError::GlobSet)
        };
        let mut text = String::new();
        for g in include {
            text.push_str(&format!("+{g}\n"));
        }
        for g in exclude {
            text.push_str(&format!("-{g}\n"));
        }
        Ok(Some(Filter { include: (!include.is_empty()).then(|| set(include)).transpose()?, exclude: set(exclude)?, text }))
    }

    /// Parses the text recorded in an index.
    pub fn parse(text: &str) -> std::result::Result<Option<Filter>, IndexError> {
        let mut include = Vec::new();
        let mut exclude = Vec::new();
        for line in text.lines() {
            match line.split_at_checked(1) {
                Some(("+", g)) => include.push(g.to_string()),
                Some(("-", g)) => exclude.push(g.to_string()),
                _ => return Err(IndexError::FilterLine(line.to_string())),
            }
        }
        Filter::build(&include, &exclude).map_err(IndexError::FilterGlob)
    }

    /// Whether a member path is selected. A trailing `/` is ignored.
    pub fn matches(&self, path: &[u8]) -> bool {
        let mut p = path;
        while p.len() > 1 && p.ends_with(b"/") {
            p = &p[..p.len() - 1];
        }
        let p = Path::new(OsStr::from_bytes(p));
        self.include.as_ref().is_none_or(|s| s.is_match(p)) && !self.exclude.is_match(p)
    }

    /// The `+GLOB`/`-GLOB` text recorded in the index.
    pub fn text(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_exclude() {
        let f = Filter::new(&["*.txt".into()], &["secret/*".into()]).unwrap().unwrap();
        assert!(f.matches(b"a/b.txt"));
        assert!(!f.matches(b"secret/b.txt"));
        assert!(!f.matches(b"a/b.bin"));
        let g = Filter::parse(f.text()).unwrap().unwrap();
        assert_eq!(g.text(), f.text());
        assert!(Filter::new(&[], &[]).unwrap().is_none());
        assert!(Filter::new(&["[".into()], &[]).is_err());
    }
}
