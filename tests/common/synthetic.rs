//! Synthetic archive stores for the sharding tests and `examples/shard_synthetic.rs`: paths and
//! sizes, no files. Deterministic for a seed (splitmix64), so the properties asserted of them
//! hold run after run.

/// A path and a size.
pub struct Archive {
    pub path: std::path::PathBuf,
    pub size: u64,
}

/// How sizes are spread.
#[derive(Debug, Clone, Copy)]
pub enum Sizes {
    /// Log-normal: median `median` bytes, `sigma` the spread of the log (2.0: the largest of a
    /// million is some 10,000 times the median, as in a store of backups).
    LogNormal { median: f64, sigma: f64 },
    /// Pareto: at least `min` bytes, tail index `alpha` (1.5: a heavier tail, finite mean).
    Pareto { min: f64, alpha: f64 },
}

/// splitmix64.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    /// Uniform in (0, 1].
    pub fn unit(&mut self) -> f64 {
        ((self.next() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }
    pub fn size(&mut self, sizes: Sizes) -> u64 {
        match sizes {
            Sizes::LogNormal { median, sigma } => {
                // Box-Muller.
                let (u, v) = (self.unit(), self.unit());
                let z = (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos();
                (median * (sigma * z).exp()) as u64
            }
            Sizes::Pareto { min, alpha } => (min / self.unit().powf(1.0 / alpha)) as u64,
        }
    }
}

/// `n` archives named as a store of projects and years would name them, numbered from `first`
/// (so that `store(n, ..)` and `store_from(n, m, ..)` are disjoint), with sizes from `seed`.
pub fn store_from(first: u64, n: u64, sizes: Sizes, seed: u64) -> Vec<Archive> {
    let mut rng = Rng(seed ^ first.wrapping_mul(0x2545_f491_4f6c_dd1d));
    (first..first + n)
        .map(|i| Archive { path: format!("/store/project{:04}/{}/backup-{i:08}.tar", i % 9973, 2000 + i % 26).into(), size: rng.size(sizes) })
        .collect()
}
