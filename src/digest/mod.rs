//! Member digests (issue #36): SHA-256 of a member's logical content and of each 4 MiB chunk of
//! it ([`crate::format::digests`] is the codec). [`Hasher`] computes them from the content as it
//! is written to it; [`Checker`] passes content on only once the digest of what it passes holds.
//!
//! A large member's whole digest and its chunk digests are two hashes of the same bytes:
//! [`Hasher`] runs both states over each block at once (`states`, `shani`), which on a CPU with
//! SHA-NI costs what one hash does.

mod checker;
mod hasher;
mod states;
#[cfg(target_arch = "x86_64")]
mod shani;

use sha2::{Digest, Sha256};

pub use checker::{check_file, Checker, Mismatch};
pub use hasher::Hasher;

/// SHA-256 of `data`, as hex.
pub fn hex(d: &[u8]) -> String {
    d.iter().map(|b| format!("{b:02x}")).collect()
}

/// SHA-256 of `data`.
pub fn sha256(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}
