//! `--json`'s archive record with the SHA-256 of the index it names (issue #36), so that a
//! catalogue can pin the index.

use tarfs::batch;

/// An archive's record: its outcome and, where it names an index, the SHA-256 of the index's
/// bytes as they are now (in place: outcomes are reported once sidecars are), so that a
/// catalogue can pin the index.
#[derive(serde::Serialize)]
pub struct ArchiveRecord<'a> {
    #[serde(flatten)]
    outcome: &'a batch::Outcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    index_sha256: Option<String>,
}

impl<'a> ArchiveRecord<'a> {
    pub fn of(outcome: &'a batch::Outcome) -> ArchiveRecord<'a> {
        let index_sha256 = outcome.index_path.as_ref().and_then(|p| std::fs::read(p).ok()).map(|b| tarfs::digest::hex(&tarfs::digest::sha256(&b)));
        ArchiveRecord { outcome, index_sha256 }
    }
}

