//! Measures `--shard`'s partition (issue #35) on a synthetic store of paths with long-tailed
//! sizes, no files: how long the partition takes, how many assignments move when 1% more
//! archives are added, and the largest shard's bytes and count against the mean.
//!
//! `cargo run --release --example shard_synthetic [ARCHIVES [SHARDS...]]` (default 1,000,000
//! archives over 8, 64, 512 and 4096 shards).

#[path = "../tests/common/synthetic.rs"]
mod synthetic;

use std::time::Instant;

use synthetic::{store_from, Sizes};
use tarfs::batch::shard::{assign, hash, identity};

fn main() {
    let args: Vec<u64> = std::env::args().skip(1).map(|a| a.parse().expect("a number")).collect();
    let n = args.first().copied().unwrap_or(1_000_000);
    let counts: Vec<u32> = if args.len() > 1 { args[1..].iter().map(|&c| c as u32).collect() } else { vec![8, 64, 512, 4096] };
    for sizes in [Sizes::LogNormal { median: 64e6, sigma: 2.0 }, Sizes::Pareto { min: 16e6, alpha: 1.5 }] {
        let old = store_from(0, n, sizes, 35);
        let added = store_from(n, n / 100, sizes, 35);
        for &count in &counts {
            let t = Instant::now();
            let keys: Vec<u64> = old.iter().map(|a| hash(&identity(&a.path))).collect();
            let bytes: Vec<u64> = old.iter().map(|a| a.size).collect();
            let before = assign(&keys, &bytes, count);
            let secs = t.elapsed().as_secs_f64();
            let (mut keys2, mut bytes2) = (keys.clone(), bytes.clone());
            keys2.extend(added.iter().map(|a| hash(&identity(&a.path))));
            bytes2.extend(added.iter().map(|a| a.size));
            let after = assign(&keys2, &bytes2, count);
            let moved = before.iter().zip(&after).filter(|(a, b)| a != b).count();
            let mut load = vec![0u64; count as usize];
            let mut many = vec![0u64; count as usize];
            for (s, b) in after.iter().zip(&bytes2) {
                load[*s as usize] += b;
                many[*s as usize] += 1;
            }
            let mean = bytes2.iter().sum::<u64>() as f64 / f64::from(count);
            let largest = *bytes2.iter().max().unwrap() as f64;
            println!(
                "{sizes:?} {n} archives, {count} shards: partition {secs:.3} s (hashing included); moved {:.3}% on adding 1%; bytes max/mean {:.3} (largest archive {:.3} of the mean); count max/mean {:.3}",
                100.0 * moved as f64 / n as f64,
                *load.iter().max().unwrap() as f64 / mean,
                largest / mean,
                *many.iter().max().unwrap() as f64 / (bytes2.len() as f64 / f64::from(count)),
            );
        }
    }
}
