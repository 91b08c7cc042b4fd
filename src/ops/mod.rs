//! Operations over archives, built on the scanner: writing sidecar indexes ([`index`]), reading
//! through the best index present ([`read`]: list and cat), extracting ([`extract`]) and checking
//! indexes ([`verify`]).

pub mod extract;
pub mod filter;
pub mod index;
pub mod read;
pub mod verify;

mod atomic;
