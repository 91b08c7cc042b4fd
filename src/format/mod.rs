//! Format knowledge, apart from I/O: tar header views, pax records, sparse maps, and the codecs of
//! tarfs's own index formats (`.tarfs` and the seed's CSV index). Everything here works on byte
//! slices and is pure.

pub mod compression;
pub mod csv;
pub mod header;
pub mod pax;
pub mod sparse;
pub mod tarfs;
