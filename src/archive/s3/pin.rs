//! The user's cache of objects' indexes (`$XDG_CACHE_HOME/tarfs/s3`), and the identity of an
//! object remembered beside its cached index (a *pin*), so that a later read can skip the
//! opening request.
//!
//! - A cached sidecar is `URLHASH-ETAGHASH.tarfs`: keyed by the archive's ETag, so a replaced
//!   archive never meets an old cached index.
//! - A pin is `URLHASH.pin`: the ETag, the length and the first bytes of the object as it was
//!   last opened with its index cached. An object opened from its pin
//!   ([`super::S3Object::open_remembered`]) is not yet confirmed: its first answer (a range GET
//!   with `If-Match: ETAG`) confirms it, or says it changed (412, [`super::S3Error::Stale`]),
//!   and the caller opens it afresh.

use std::path::PathBuf;

use xxhash_rust::xxh3::xxh3_64;

/// The first line of a pin file.
const MAGIC: &[u8] = b"tarfs-s3-pin 1\n";

/// An object's identity as it was last opened: what opening would find, if it has not changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Pin {
    /// Its ETag.
    pub etag: String,
    /// Its length.
    pub len: u64,
    /// Its first bytes (up to [`super::FIRST_FETCH`]).
    pub head: Vec<u8>,
}

/// The user's cache of objects' indexes: `$XDG_CACHE_HOME/tarfs/s3`, or `~/.cache/tarfs/s3`.
fn dir() -> Option<PathBuf> {
    let base = match std::env::var_os("XDG_CACHE_HOME").map(PathBuf::from) {
        Some(d) if d.is_absolute() => d,
        _ => PathBuf::from(std::env::var_os("HOME")?).join(".cache"),
    };
    Some(base.join("tarfs/s3"))
}

/// Where the index of `url`, as it was with ETag `etag`, is cached.
pub(super) fn sidecar_path(url: &str, etag: &str) -> Option<PathBuf> {
    Some(dir()?.join(format!("{:016x}-{:016x}.tarfs", xxh3_64(url.as_bytes()), xxh3_64(etag.as_bytes()))))
}

/// Where the pin of `url` is kept.
fn pin_path(url: &str) -> Option<PathBuf> {
    Some(dir()?.join(format!("{:016x}.pin", xxh3_64(url.as_bytes()))))
}

/// Writes `bytes` at `path` through a temporary file and a rename; a cache that cannot be
/// written is passed over (it only saves requests).
pub(super) fn write(path: Option<PathBuf>, bytes: &[u8]) {
    let Some(p) = path else { return };
    let tmp = p.with_extension(format!("tmp{}", std::process::id()));
    if p.parent().is_some_and(|d| std::fs::create_dir_all(d).is_ok()) && std::fs::write(&tmp, bytes).is_ok() {
        let _ = std::fs::rename(&tmp, &p);
    }
}

/// Remembers `pin` for `url` (its index is cached under its ETag).
pub(super) fn remember(url: &str, pin: &Pin) {
    let mut bytes = MAGIC.to_vec();
    bytes.extend_from_slice(format!("{}\n{}\n", pin.len, pin.etag).as_bytes());
    bytes.extend_from_slice(&pin.head);
    write(pin_path(url), &bytes);
}

/// The pin of `url`, where there is one and the index of the object it names is cached too.
pub(super) fn recall(url: &str) -> Option<Pin> {
    let bytes = std::fs::read(pin_path(url)?).ok()?;
    let pin = parse(&bytes)?;
    sidecar_path(url, &pin.etag)?.is_file().then_some(pin)
}

/// A pin file's content, or `None` where it is not one.
fn parse(bytes: &[u8]) -> Option<Pin> {
    let rest = bytes.strip_prefix(MAGIC)?;
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let len = std::str::from_utf8(&rest[..nl]).ok()?.parse().ok()?;
    let rest = &rest[nl + 1..];
    let nl = rest.iter().position(|&b| b == b'\n')?;
    let etag = std::str::from_utf8(&rest[..nl]).ok()?.to_string();
    let head = rest[nl + 1..].to_vec();
    (!etag.is_empty() && head.len() as u64 <= len).then_some(Pin { etag, len, head })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pin_reads_back_as_written() {
        let pin = Pin { etag: "\"abc\"".into(), len: 10, head: b"0123\n56789".to_vec() };
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(b"10\n\"abc\"\n0123\n56789");
        assert_eq!(parse(&bytes), Some(pin));
        assert_eq!(parse(b"tarfs-s3-pin 1\n3\n\"e\"\n0123"), None, "more head than length");
        assert_eq!(parse(b"tarfs-s3-pin 1\nx\n\"e\"\n"), None);
        assert_eq!(parse(b"other"), None);
    }
}
