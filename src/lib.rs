//! tarfs gives existing tar archives an index, so that one member can be read by seeking instead
//! of scanning the whole archive.
//!
//! Layers, from the bottom:
//! - [`format`]: tar headers, pax records, sparse maps and the `.tarfs` codec, as pure functions
//!   over bytes;
//! - [`scan`]: the scanner, which walks an archive held in memory, and [`chunked`], which runs
//!   scanners on several threads and stitches their results into the sequential one;
//! - [`archive`]: opening an archive file (the memory map) and finding its indexes;
//! - [`ops`]: the operations (write a sidecar index, list, cat, extract, verify);
//! - [`discover`]: finding archives under directories;
//! - [`quote`]: member names as GNU tar prints them (its `escape` quoting style);
//! - [`batch`]: running an operation over many archives, in parallel, with one outcome each.
//!
//! The `tarfs` binary is a thin CLI over these.

pub mod archive;
pub mod batch;
pub mod builder;
pub mod chunked;
pub mod digest;
pub mod discover;
pub mod error;
pub mod format;
pub mod index_first;
pub mod members;
pub mod mount;
pub mod ops;
pub mod quote;
mod read_window;
pub mod scan;
pub mod seekpoints;
pub mod sigbus;
pub mod source;
pub mod stream;
pub mod verdict;
pub mod watch;

pub use error::{Error, Result};
pub use scan::{Entry, Limits, ScanEnd, ScanError, ScanOptions, Scanner};
