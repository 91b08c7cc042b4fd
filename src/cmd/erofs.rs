//! `tarfs erofs`: an archive's EROFS image, written from its best index
//! ([`tarfs::ops::erofs`]), for `mount -t erofs -o device=ARCHIVE IMAGE MNT`.

use anyhow::Result;
use tarfs::archive::open_any;
use tarfs::ops::erofs::{image_path, write_image};

use crate::cli::ErofsArgs;
use crate::config::Config;
use crate::warn;

pub fn run(cfg: &Config<'_>, a: &ErofsArgs) -> Result<bool> {
    let started = std::time::Instant::now();
    let opened = tarfs::members::open_best(open_any(&a.archive)?, cfg.index_dir.as_ref(), cfg.scan)?;
    let dest = a.output.clone().unwrap_or_else(|| image_path(&a.archive, cfg.index_dir.as_ref()));
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let (uid, gid) = (rustix::process::getuid().as_raw(), rustix::process::getgid().as_raw());
    let written = write_image(&opened, &dest, uid, gid, now)?;
    for (name, why) in &written.skipped {
        warn(format!("{}: {}: not in the image: {why}", a.archive.display(), tarfs::quote::diag(name)));
    }
    if written.copied > 0 {
        warn(format!("{}: sparse members whose data is not block-aligned in the archive, copied into the image: {}", a.archive.display(), written.copied));
    }
    if cfg.verbose {
        let through = match opened.index.source() {
            tarfs::ops::read::Source::Scan => "from a scan (no index)".to_string(),
            s => format!("through its {s}"),
        };
        warn(format!("{}: wrote {} ({} inodes, {} bytes) {through} in {:.2} s", a.archive.display(), dest.display(), written.inodes, written.bytes, started.elapsed().as_secs_f64()));
    }
    println!("{}", dest.display());
    Ok(true)
}
