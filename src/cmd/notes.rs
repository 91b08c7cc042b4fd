//! What the library reports, in words, for the batch reports of `index` and `recompress`.

use tarfs::ops::index::IndexReport;
use tarfs::seekpoints::NoSeekPoints;

/// What the index's extension data (and seek points) cost, for the report.
pub fn ext_note(r: &IndexReport) -> String {
    let seek = match &r.seek {
        Some(s) => format!(
            "; {} seek points, {} bytes ({:.2}% of the {} decompressed bytes)",
            s.checkpoints,
            s.bytes,
            s.bytes as f64 * 100.0 / s.decompressed.max(1) as f64,
            s.decompressed
        ),
        None => String::new(),
    };
    format!("{}{seek}", ext_part(r))
}

fn ext_part(r: &IndexReport) -> String {
    if r.ext_len == 0 || r.entries == 0 {
        return "; no extension data (a value does not fit it)".into();
    }
    let n = r.entries as f64;
    format!(
        "; extension data {} bytes: {} per member, {:.1} per member of names, {:.1} of its header, chunk table and padding",
        r.ext_len,
        tarfs::format::ext::BYTES_PER_MEMBER,
        r.ext_names as f64 / n,
        (r.ext_len - r.ext_names) as f64 / n - tarfs::format::ext::BYTES_PER_MEMBER as f64
    )
}

/// Why a compressed archive has no seek points, if so: `; WHY`.
pub fn no_seek_note(no_seek: Option<&NoSeekPoints>) -> String {
    no_seek.map(|w| format!("; {w}")).unwrap_or_default()
}

/// The hint for an archive without seek points: what that costs, and what would help.
pub fn unseekable_hint(why: &NoSeekPoints) -> String {
    let what = match why {
        NoSeekPoints::ZstdSingleFrame => "one zstd frame".to_string(),
        NoSeekPoints::XzSingleBlock => "one xz block".to_string(),
        NoSeekPoints::Bzip2SingleBlock => "one bzip2 block".to_string(),
        other => other.to_string(),
    };
    let remedy = if why.recompress_helps() { "; `tarfs recompress --seekable` makes it seekable" } else { "" };
    format!("{what}, so reads decode it from the start{remedy}")
}

/// The scan's warning, if any, for the archive's outcome.
pub fn warning(r: &IndexReport) -> Option<String> {
    r.end.warning.as_ref().map(|w| w.to_string())
}

/// The summary line of a batch (and of `tarfs report`'s merged shards), on stderr.
pub fn summary_line(verb: &str, dry_run: bool, s: &tarfs::batch::Summary, secs: f64) -> String {
    let counts = [
        (s.indexed, "indexed"),
        (s.would_index, "would be indexed"),
        (s.embedded, "embedded"),
        (s.would_embed, "would be embedded"),
        (s.recompressed, "recompressed"),
        (s.would_recompress, "would be recompressed"),
        (s.finished, "finished"),
        (s.rolled_back, "rolled back"),
        (s.verified, "verified"),
        (s.skipped, "skipped"),
        (s.failed, "failed"),
        (s.busy, "busy"),
        (s.not_started, "not started"),
    ];
    let parts: Vec<String> = counts.iter().filter(|(n, what)| *n > 0 || *what == "failed").map(|(n, what)| format!("{n} {what}")).collect();
    let mib = s.bytes as f64 / (1 << 20) as f64;
    let dry = if dry_run { " (dry run, nothing written)" } else { "" };
    // Members where they were counted: none said where none was (recover), and how many
    // archives were not where some were (a dry run of compressed archives).
    let members = match (s.members, s.uncounted) {
        (m, 0) => format!("{}, ", tarfs::batch::count(m, "member", "members")),
        (0, _) => String::new(),
        (m, u) => format!("{} ({} not counted), ", tarfs::batch::count(m, "member", "members"), tarfs::batch::count(u, "archive", "archives")),
    };
    format!("{verb}{dry}: {}; {members}{mib:.1} MiB in {secs:.2} s", parts.join(", "))
}
