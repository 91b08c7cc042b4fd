//! Operations over archives, built on the scanner: writing sidecar indexes ([`index`]), appending
//! CSV index members ([`append_csv`]), reading
//! through the best index present ([`read`]: list and cat), choosing members as tar does
//! ([`select`]), extracting ([`extract`]) and checking indexes ([`verify`]).

pub mod append_csv;
pub mod create;
pub mod embed;
pub(crate) mod embed_digests;
pub mod embed_erofs;
pub mod erofs;
pub mod extract;
pub mod filter;
pub mod in_place;
pub mod grown;
pub mod index;
pub mod index_stream;
pub(crate) mod index_v2;
pub mod journal;
pub mod order;
pub mod owned;
pub mod plan;
pub mod read;
pub mod recompress;
pub mod remote;
mod remote_gzip;
mod remote_pass;
pub mod select;
pub mod shift;
pub mod verify;
pub mod digests;
pub mod scrub;
mod verify_v2;

pub mod atomic;
mod crash;
