//! Lists an archive with the Rust `tar` crate (`entries_with_seek`, which seeks over member data),
//! printing each path as `tar -tf` does: a peer that `scripts/bench-peers.sh` times beside tarfs.

use std::io::{BufWriter, Write};

fn main() -> std::io::Result<()> {
    let path = std::env::args_os().nth(1).expect("usage: tar_rs_list ARCHIVE");
    let mut archive = tar::Archive::new(std::fs::File::open(path)?);
    let mut out = BufWriter::new(std::io::stdout().lock());
    for entry in archive.entries_with_seek()? {
        let entry = entry?;
        out.write_all(&entry.path_bytes())?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
