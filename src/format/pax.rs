//! POSIX pax extended header records (`x`, `X` and `g` members), read without allocating.
//!
//! A record is `LEN KEY=VALUE\n`, where `LEN` counts the whole record in decimal. [`Records`]
//! iterates them over a borrowed slice; [`PaxOverrides`] collects the keys tarfs understands
//! (`path`, `linkpath`, `size`, `uid`, `gid`, `uname`, `gname`, `mtime` and the `GNU.sparse.*`
//! family) as borrowed slices and numbers, and merges a member's local records over the archive's
//! global ones.

use std::fmt;

/// What is wrong with a pax record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaxError {
    /// Byte offset of the bad record within the extended header's data.
    pub at: usize,
    /// What is wrong.
    pub problem: String,
}

impl fmt::Display for PaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "bad pax record at byte {} of the extended header: {}", self.at, self.problem)
    }
}

/// Iterates the records of an extended header's data. Trailing NUL padding ends the data.
pub struct Records<'a> {
    data: &'a [u8],
    at: usize,
}

impl<'a> Records<'a> {
    /// Records over an extended header's data (exactly `size` bytes, without block padding).
    pub fn new(data: &'a [u8]) -> Self {
        Records { data, at: 0 }
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<(&'a [u8], &'a [u8]), PaxError>;

    fn next(&mut self) -> Option<Self::Item> {
        let rest = &self.data[self.at..];
        if rest.is_empty() || rest[0] == 0 {
            return None;
        }
        let at = self.at;
        let fail = |problem: &str| {
            Some(Err(PaxError { at, problem: problem.to_string() }))
        };
        let Some(space) = rest.iter().take(20).position(|&b| b == b' ') else {
            self.at = self.data.len();
            return fail("no length");
        };
        let digits = &rest[..space];
        if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
            self.at = self.data.len();
            return fail("length is not a decimal number");
        }
        let len: usize = match std::str::from_utf8(digits).ok().and_then(|s| s.parse().ok()) {
            Some(l) => l,
            None => {
                self.at = self.data.len();
                return fail("length out of range");
            }
        };
        // `space` < 20, and `len` <= rest.len() = data.len() - at, so none of this overflows.
        let start = space.saturating_add(1);
        if len <= start || len > rest.len() {
            self.at = self.data.len();
            return fail("length runs past the header data");
        }
        let record = &rest[start..len];
        self.at = self.at.saturating_add(len);
        let Some((&b'\n', kv)) = record.split_last() else {
            self.at = self.data.len();
            return fail("record does not end with a newline");
        };
        let Some(eq) = kv.iter().position(|&b| b == b'=') else {
            self.at = self.data.len();
            return fail("record has no '='");
        };
        if eq == 0 {
            self.at = self.data.len();
            return fail("record has an empty key");
        }
        if kv[..eq].contains(&0) {
            self.at = self.data.len();
            return fail("key contains a NUL byte");
        }
        Some(Ok((&kv[..eq], &kv[eq.saturating_add(1)..])))
    }
}

/// Keys of one extended header that change how a member is read. `None` means "not given".
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PaxOverrides<'a> {
    /// `path`.
    pub path: Option<&'a [u8]>,
    /// `linkpath`.
    pub linkpath: Option<&'a [u8]>,
    /// `size`: bytes of data stored after the main header.
    pub size: Option<u64>,
    /// `uid`.
    pub uid: Option<u64>,
    /// `gid`.
    pub gid: Option<u64>,
    /// `uname`.
    pub uname: Option<&'a [u8]>,
    /// `gname`.
    pub gname: Option<&'a [u8]>,
    /// `mtime`, whole seconds (rounded down).
    pub mtime: Option<i64>,
    /// The nanoseconds of `mtime` past [`PaxOverrides::mtime`] (0 to 999,999,999).
    pub mtime_nsec: Option<u32>,
    /// Whether `SCHILY.xattr.*` or `LIBARCHIVE.xattr.*` records are present.
    pub xattrs: bool,
    /// `GNU.sparse.major` and `GNU.sparse.minor`.
    pub sparse_version: (Option<u64>, Option<u64>),
    /// `GNU.sparse.name`: the real name of a sparse member (0.1 and 1.0).
    pub sparse_name: Option<&'a [u8]>,
    /// `GNU.sparse.realsize` (1.0) or `GNU.sparse.size` (0.x): the logical size.
    pub sparse_real_size: Option<u64>,
    /// `GNU.sparse.map` (0.1): comma-separated offsets and lengths.
    pub sparse_map: Option<&'a [u8]>,
    /// Whether `GNU.sparse.offset`/`GNU.sparse.numbytes` records (0.0) are present.
    pub sparse_00: bool,
}

/// Which GNU sparse format a member uses, if any.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PaxSparse {
    /// 0.0: the map is `GNU.sparse.offset`/`numbytes` record pairs.
    V00,
    /// 0.1: the map is `GNU.sparse.map`.
    V01,
    /// 1.0: the map is stored in decimal lines at the start of the member's data.
    V10,
}

impl<'a> PaxOverrides<'a> {
    /// Parses the records of an extended header. Unknown keys are ignored; a malformed record,
    /// or a malformed number in a known key, is an error.
    ///
    /// `global` is true for a `g` header: there an empty value means "delete this key" (POSIX), so
    /// it is recorded as `Some(&[])`, which [`PaxOverrides::apply_global`] turns into a deletion.
    pub fn parse(data: &'a [u8]) -> Result<Self, PaxError> {
        let mut o = PaxOverrides::default();
        let mut records = Records::new(data);
        loop {
            let at = records.at;
            let Some(rec) = records.next() else { break };
            let (key, value) = rec?;
            let num = |what: &str| -> Result<u64, PaxError> {
                parse_decimal(value).ok_or_else(|| PaxError { at, problem: format!("{what} is not a decimal number") })
            };
            if matches!(key, b"path" | b"linkpath" | b"GNU.sparse.name") && value.contains(&0) {
                return Err(PaxError { at, problem: format!("{} contains a NUL byte", String::from_utf8_lossy(key)) });
            }
            match key {
                b"path" => o.path = Some(value),
                b"linkpath" => o.linkpath = Some(value),
                b"uname" => o.uname = Some(value),
                b"gname" => o.gname = Some(value),
                b"size" => o.size = if value.is_empty() { None } else { Some(num("size")?) },
                b"uid" => o.uid = if value.is_empty() { None } else { Some(num("uid")?) },
                b"gid" => o.gid = if value.is_empty() { None } else { Some(num("gid")?) },
                b"mtime" => {
                    let t = if value.is_empty() { None } else { Some(parse_time(value).ok_or_else(|| PaxError { at, problem: "mtime is not a number".into() })?) };
                    o.mtime = t.map(|t| t.0);
                    o.mtime_nsec = t.map(|t| t.1);
                }
                k if k.starts_with(b"SCHILY.xattr.") || k.starts_with(b"LIBARCHIVE.xattr.") => o.xattrs = true,
                b"GNU.sparse.major" => o.sparse_version.0 = Some(num("GNU.sparse.major")?),
                b"GNU.sparse.minor" => o.sparse_version.1 = Some(num("GNU.sparse.minor")?),
                b"GNU.sparse.name" => o.sparse_name = Some(value),
                b"GNU.sparse.realsize" | b"GNU.sparse.size" => o.sparse_real_size = Some(num("GNU.sparse.realsize")?),
                b"GNU.sparse.map" => o.sparse_map = Some(value),
                b"GNU.sparse.offset" | b"GNU.sparse.numbytes" => o.sparse_00 = true,
                _ => {}
            }
        }
        Ok(o)
    }

    /// Merges a global header's records into the global state: a given value replaces, an empty
    /// text value deletes.
    pub fn apply_global(&mut self, g: &PaxOverrides<'a>) {
        fn text<'a>(slot: &mut Option<&'a [u8]>, new: Option<&'a [u8]>) {
            match new {
                Some([]) => *slot = None,
                Some(v) => *slot = Some(v),
                None => {}
            }
        }
        text(&mut self.path, g.path);
        text(&mut self.linkpath, g.linkpath);
        text(&mut self.uname, g.uname);
        text(&mut self.gname, g.gname);
        self.size = g.size.or(self.size);
        self.uid = g.uid.or(self.uid);
        self.gid = g.gid.or(self.gid);
        self.mtime = g.mtime.or(self.mtime);
        self.mtime_nsec = g.mtime_nsec.or(self.mtime_nsec);
        self.xattrs |= g.xattrs;
    }

    /// The effective overrides for one member: its local records over the global ones. Sparse
    /// keys are only ever local.
    pub fn over(&self, global: &PaxOverrides<'a>) -> PaxOverrides<'a> {
        let nonempty = |v: Option<&'a [u8]>| v.filter(|v| !v.is_empty());
        PaxOverrides {
            path: nonempty(self.path).or(global.path),
            linkpath: nonempty(self.linkpath).or(global.linkpath),
            uname: self.uname.or(global.uname),
            gname: self.gname.or(global.gname),
            size: self.size.or(global.size),
            uid: self.uid.or(global.uid),
            gid: self.gid.or(global.gid),
            mtime: self.mtime.or(global.mtime),
            ..*self
        }
    }

    /// Whether any key is set.
    pub fn is_empty(&self) -> bool {
        *self == PaxOverrides::default()
    }

    /// The GNU sparse format these records describe, if any.
    pub fn sparse(&self) -> Option<PaxSparse> {
        match self.sparse_version {
            (Some(1), Some(0)) => Some(PaxSparse::V10),
            _ if self.sparse_map.is_some() => Some(PaxSparse::V01),
            _ if self.sparse_00 => Some(PaxSparse::V00),
            _ => None,
        }
    }
}

/// The pax globals in force while a scan is resumed piece by piece (a stream, a CSV index),
/// as [`crate::scan::Scanner::window`] takes them: none until a global header is met, then one
/// merged record set (see [`merge_globals`]).
#[derive(Debug, Default)]
pub struct Globals {
    /// Empty, or the one merged set.
    sets: Vec<Vec<u8>>,
}

impl Globals {
    /// Applies the global header data `g`; the merged set may not exceed `limit` bytes.
    pub fn add(&mut self, g: &[u8], limit: u64) -> Result<(), PaxError> {
        if self.sets.is_empty() {
            self.sets.push(Vec::new());
        }
        merge_globals(&mut self.sets[0], g, limit)
    }

    /// The globals in force, for [`crate::scan::Scanner::window`].
    pub fn as_slice(&self) -> &[Vec<u8>] {
        &self.sets
    }
}

/// Merges the records of a global header, `next`, into `state`, the records of the globals in
/// force (one record per key, in first-seen order), as readers apply them: a value replaces, an
/// empty value deletes. Carrying this one merged set, instead of every global header met, keeps
/// a stream's scan linear and its memory bounded: the merged set may not exceed `limit` bytes.
pub fn merge_globals(state: &mut Vec<u8>, next: &[u8], limit: u64) -> Result<(), PaxError> {
    let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Records::new(state).map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec()))).collect::<Result<_, _>>()?;
    for r in Records::new(next) {
        let (k, v) = r?;
        match pairs.iter().position(|(pk, _)| pk == k) {
            Some(i) if v.is_empty() => {
                pairs.remove(i);
            }
            Some(i) => pairs[i].1 = v.to_vec(),
            None if v.is_empty() => {}
            None => pairs.push((k.to_vec(), v.to_vec())),
        }
    }
    let mut out = Vec::new();
    for (k, v) in &pairs {
        push_record(&mut out, k, v);
    }
    if out.len() as u64 > limit {
        return Err(PaxError { at: 0, problem: format!("the pax global headers in force come to {} bytes, over the limit of {limit}", out.len()) });
    }
    *state = out;
    Ok(())
}

/// Appends one record, `LEN KEY=VALUE\n`, whose length counts its own digits.
pub fn push_record(out: &mut Vec<u8>, key: &[u8], value: &[u8]) {
    // Bounded: key and value are in memory, so their lengths plus a few bytes fit a usize.
    #[allow(clippy::arithmetic_side_effects)]
    let len = {
        let body = key.len() + value.len() + 3; // ' ', '=', '\n'
        let mut len = body + 1;
        while len != body + len.to_string().len() {
            len = body + len.to_string().len();
        }
        len
    };
    out.extend_from_slice(len.to_string().as_bytes());
    out.push(b' ');
    out.extend_from_slice(key);
    out.push(b'=');
    out.extend_from_slice(value);
    out.push(b'\n');
}

/// A non-negative decimal number that fits a `u64`; leading zeros are allowed.
pub fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() || !s.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let first = s.iter().position(|&b| b != b'0').unwrap_or(s.len());
    let digits = &s[first..];
    if digits.is_empty() {
        return Some(0);
    }
    std::str::from_utf8(digits).ok()?.parse().ok()
}

/// A pax time: optional sign, decimal seconds, optional fraction (dropped, rounding toward
/// negative infinity as tar does).
/// A pax time: whole seconds rounded down, and the nanoseconds past them.
fn parse_time(s: &[u8]) -> Option<(i64, u32)> {
    let (neg, s) = match s.split_first() {
        Some((b'-', rest)) => (true, rest),
        _ => (false, s),
    };
    let (whole, frac) = match s.iter().position(|&b| b == b'.') {
        Some(dot) => (&s[..dot], &s[dot.saturating_add(1)..]),
        None => (s, &[][..]),
    };
    if !frac.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let secs = i64::try_from(parse_decimal(whole)?).ok()?;
    // The first nine digits of the fraction, as nanoseconds; the rest is dropped (truncated).
    let mut nsec: u32 = 0;
    for i in 0..9 {
        let d = frac.get(i).map_or(0, |&b| u32::from(b.saturating_sub(b'0')));
        nsec = nsec.saturating_mul(10).saturating_add(d);
    }
    let has_frac = frac.iter().any(|&b| b != b'0');
    // secs is in 0..=i64::MAX, so its negation, less one, still fits.
    Some(if neg {
        let s = secs.checked_neg()?.checked_sub(i64::from(has_frac))?;
        // -1.25 is -2 seconds plus 0.75: the nanoseconds count up from the rounded-down second.
        let n = if nsec == 0 { 0 } else { 1_000_000_000u32.saturating_sub(nsec) };
        (s, n)
    } else {
        (secs, nsec)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_parse() {
        let data = b"16 path=global1\n22 mtime=1500000000.0\n";
        let r: Vec<_> = Records::new(data).collect::<Result<_, _>>().unwrap();
        assert_eq!(r, vec![(&b"path"[..], &b"global1"[..]), (&b"mtime"[..], &b"1500000000.0"[..])]);
        let o = PaxOverrides::parse(data).unwrap();
        assert_eq!(o.path, Some(&b"global1"[..]));
        assert_eq!(o.mtime, Some(1_500_000_000));
    }

    #[test]
    fn record_lengths_count_themselves() {
        for n in [0usize, 1, 5, 6, 7, 90, 95, 96, 97, 990, 995, 996, 10_000] {
            let mut out = Vec::new();
            let v = vec![b'a'; n];
            push_record(&mut out, b"path", &v);
            let parsed: Vec<_> = Records::new(&out).collect::<Result<_, _>>().unwrap();
            assert_eq!(parsed, vec![(&b"path"[..], &v[..])], "value of {n} bytes");
        }
    }

    #[test]
    fn bad_records() {
        for bad in [&b"99 path=x\n"[..], b"x path=a\n", b"9 pathx\n", b"11 path=abc", b"5 =a\n", b"0 \n"] {
            assert!(PaxOverrides::parse(bad).is_err(), "{:?}", String::from_utf8_lossy(bad));
        }
        assert!(PaxOverrides::parse(b"13 size=12x4\n").is_err());
    }

    #[test]
    fn nul_padding_ends_data() {
        let o = PaxOverrides::parse(b"11 path=ab\n\0\0\0").unwrap();
        assert_eq!(o.path, Some(&b"ab"[..]));
    }

    #[test]
    fn negative_and_fractional_time() {
        assert_eq!(parse_time(b"-2146608000"), Some((-2_146_608_000, 0)));
        assert_eq!(parse_time(b"-1.5"), Some((-2, 500_000_000)));
        assert_eq!(parse_time(b"12.25"), Some((12, 250_000_000)));
        assert_eq!(parse_time(b"1.1234567899"), Some((1, 123_456_789)));
        assert_eq!(parse_time(b"1x"), None);
    }

    #[test]
    fn global_delete() {
        let mut g = PaxOverrides::default();
        g.apply_global(&PaxOverrides::parse(b"16 path=global1\n").unwrap());
        assert_eq!(g.path, Some(&b"global1"[..]));
        g.apply_global(&PaxOverrides::parse(b"8 path=\n").unwrap());
        assert_eq!(g.path, None);
    }
}
