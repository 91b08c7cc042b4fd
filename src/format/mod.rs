//! Format knowledge, apart from I/O: tar header views, pax records, sparse maps, and the codecs of
//! tarfs's own index formats (`.tarfs` and the seed's CSV index). Everything here works on byte
//! slices and is pure.
//!
//! Every piece of arithmetic on values read from input is checked: the lint below holds for the
//! whole module, and each exception says where it stands why it cannot overflow.
#![deny(clippy::arithmetic_side_effects)]

pub mod bzip2;
pub mod compression;
pub mod csv;
pub mod digests;
pub mod erofs;
pub mod ext;
pub mod header;
pub mod pax;
pub mod seek;
pub mod sparse;
pub mod tarfs;
pub mod v2;
pub mod xz;
