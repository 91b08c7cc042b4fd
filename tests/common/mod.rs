//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use serde_json::Value;

/// `../shared/corpus/`, beside the repository.
pub fn corpus_dir() -> PathBuf {
    let d = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared/corpus");
    assert!(d.join("truth.jsonl").is_file(), "the corpus must be at {} (see README)", d.display());
    d
}

/// Every line of `truth.jsonl`.
pub fn truth() -> Vec<Value> {
    std::fs::read_to_string(corpus_dir().join("truth.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}
