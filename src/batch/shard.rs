//! Sharding a batch: which of the archives found this task handles, when N tasks (a Slurm array
//! job, Spark or Dask workers) each run the same command with `--shard K/N`.
//!
//! Every task computes the same partition on its own, from the same list: nothing is exchanged
//! between tasks. The partition must therefore be a pure function of the archives (their
//! identity, and where asked their sizes), and it should be:
//! - **stable**: adding archives moves few of those already assigned (a second run after the
//!   store grew finds most archives fresh in the shard that indexed them);
//! - **balanced** by bytes as well as by count, on sizes with a long tail.
//!
//! The scheme ([`assign`]), "pack the large, hash the rest by weight":
//! - An archive's identity is its absolute path as named ([`identity`], lexical: no system
//!   call, so that it costs nothing per archive and every task computes the same one), hashed
//!   with xxh3-64.
//! - The largest archives, one in [`BIG_SHARE`] (at least two per shard), are packed onto the
//!   empty shards, largest first, each onto the lightest so far (LPT). They may all move when
//!   archives are added, so the share of assignments that can move is bounded by their share
//!   (under 1%), plus the archives that enter or leave it.
//! - Every other archive is hashed, by weight: each shard's weight is what it lacks of the
//!   level at which the hashed bytes top every shard up alike (water-filling), so that a shard
//!   that a huge archive fills gets few or none. An archive's shard is its jump consistent hash
//!   (Lamping and Veach, 2014), taken with a chance of that shard's weight over the largest,
//!   else the jump hash of its key mixed again, and so on: its candidates and chances are fixed
//!   by its key, so adding archives (which changes the weights a little) moves only the few
//!   whose chance lay near a changed threshold; with equal weights it is the plain jump hash.
//!
//! The trade-off, against the alternatives considered:
//! - consistent hashing with bounded loads (each archive, in hash order, to its first shard under
//!   a cap) balances every prefix but cascades: a shard that fills a little earlier pushes every
//!   later archive of its along, so that 1% more archives can move far more than 2%;
//! - the power of two choices decides on the difference of two shards' loads, which balancing
//!   keeps small, so any added archive flips many later decisions;
//! - hashing alone moves nothing but leaves a shard's bytes to chance: with a long tail, a few
//!   large archives decide the imbalance. Packing exactly those few costs the stability of those
//!   few only; weighing the hash keeps the rest off the shards they fill.
//!
//! No scheme can do better than the largest single archive: a shard that holds it holds at
//! least its bytes. With sizes, every task must see the same sizes: where the command changes
//! archives' sizes (embed, csv, recover, recompress), a task that starts after another has
//! changed some would compute another partition, so those commands shard by identity alone
//! ([`Weigh::Count`]).

use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};

use crate::discover::Found;
use crate::error::{Error, Result, UsageError};

/// One task's part of a batch: shard `index` (from 0) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shard {
    index: u32,
    count: u32,
}

/// The share of archives packed by bytes: one in `BIG_SHARE` (0.78%), at least two per shard.
pub const BIG_SHARE: usize = 128;

/// What is wrong with a `--shard`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ShardProblem {
    /// Neither `K/N` nor `slurm`.
    #[error("expected K/N (shard K of N, counted from 1) or `slurm`")]
    Syntax,
    /// `K` not in `1..=N`, or `N` zero.
    #[error("K must be from 1 to N")]
    OutOfRange,
    /// A Slurm variable is not set.
    #[error("{var} is not set: --shard slurm is for the tasks of a Slurm array job (sbatch --array)")]
    SlurmUnset {
        /// The variable.
        var: &'static str,
    },
    /// A Slurm variable is not a number.
    #[error("{var}={value:?} is not a number")]
    SlurmNotNumber {
        /// The variable.
        var: &'static str,
        /// Its value.
        value: String,
    },
    /// The array's task ids are not an evenly stepped range that holds this task's id.
    #[error("task id {id} is not one of the {count} ids from {min} to {max} in steps of {step} (SLURM_ARRAY_TASK_*): give each task --shard K/N instead")]
    SlurmUneven {
        /// `SLURM_ARRAY_TASK_ID`.
        id: u64,
        /// `SLURM_ARRAY_TASK_MIN`.
        min: u64,
        /// `SLURM_ARRAY_TASK_MAX`.
        max: u64,
        /// `SLURM_ARRAY_TASK_STEP`.
        step: u64,
        /// `SLURM_ARRAY_TASK_COUNT`.
        count: u64,
    },
}

fn bad(given: &str, why: ShardProblem) -> Error {
    Error::Usage { what: UsageError::BadShard { given: given.to_string(), why } }
}

impl Shard {
    /// Shard `index` (from 0) of `count`.
    pub fn new(index: u32, count: u32) -> Result<Shard> {
        if index >= count {
            return Err(bad(&format!("{}/{count}", u64::from(index) + 1), ShardProblem::OutOfRange));
        }
        Ok(Shard { index, count })
    }

    /// Parses `K/N` (K counted from 1, as `split -n K/N` does) or `slurm`, which reads the array
    /// task's variables through `env` ([`Shard::from_slurm`]).
    pub fn parse(given: &str, env: impl Fn(&str) -> Option<OsString>) -> Result<Shard> {
        if given == "slurm" {
            return Shard::from_slurm(env);
        }
        let (k, n) = given.split_once('/').ok_or_else(|| bad(given, ShardProblem::Syntax))?;
        let (k, n): (u32, u32) = match (k.parse(), n.parse()) {
            (Ok(k), Ok(n)) => (k, n),
            _ => return Err(bad(given, ShardProblem::Syntax)),
        };
        if k == 0 || k > n {
            return Err(bad(given, ShardProblem::OutOfRange));
        }
        Ok(Shard { index: k - 1, count: n })
    }

    /// The shard of a Slurm array task: `SLURM_ARRAY_TASK_COUNT` shards, this one the place of
    /// `SLURM_ARRAY_TASK_ID` among the array's ids. Ids need not start at 0 (`--array=1-8`
    /// starts at `SLURM_ARRAY_TASK_MIN`) nor be consecutive (`--array=0-14:2`, in steps of
    /// `SLURM_ARRAY_TASK_STEP`), but they must be evenly stepped; a list such as `--array=1,4,9`
    /// is refused, since no task could tell its place from its own variables.
    pub fn from_slurm(env: impl Fn(&str) -> Option<OsString>) -> Result<Shard> {
        let var = |name: &'static str, default: Option<u64>| -> Result<u64> {
            match env(name) {
                None => default.ok_or_else(|| bad("slurm", ShardProblem::SlurmUnset { var: name })),
                Some(v) => {
                    let text = v.to_string_lossy().into_owned();
                    text.trim().parse().map_err(|_| bad("slurm", ShardProblem::SlurmNotNumber { var: name, value: text }))
                }
            }
        };
        let id = var("SLURM_ARRAY_TASK_ID", None)?;
        let count = var("SLURM_ARRAY_TASK_COUNT", None)?;
        let min = var("SLURM_ARRAY_TASK_MIN", Some(0))?;
        let step = var("SLURM_ARRAY_TASK_STEP", Some(1))?.max(1);
        let max = var("SLURM_ARRAY_TASK_MAX", Some(min + count.saturating_sub(1) * step))?;
        let uneven = ShardProblem::SlurmUneven { id, min, max, step, count };
        let even = count > 0 && count <= u64::from(u32::MAX) && min + (count - 1) * step == max;
        if !even || id < min || (id - min) % step != 0 || (id - min) / step >= count {
            return Err(bad("slurm", uneven));
        }
        Ok(Shard { index: ((id - min) / step) as u32, count: count as u32 })
    }

    /// This shard, from 0.
    pub fn index(&self) -> u32 {
        self.index
    }

    /// How many shards.
    pub fn count(&self) -> u32 {
        self.count
    }
}

/// `K/N`, K counted from 1.
impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index + 1, self.count)
    }
}

/// What a shard's share is balanced by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Weigh {
    /// Bytes and count: each archive's size is read (one `stat` each, in every task).
    Bytes,
    /// Count alone, by identity: for commands that change archives' sizes.
    Count,
}

/// The identity an archive is hashed by: its path made absolute, lexically (`.` components
/// dropped; no symbolic link resolved), so that every task of a run computes the same one
/// without touching the file system.
pub fn identity(path: &Path) -> PathBuf {
    std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf())
}

/// The hash of an identity (xxh3-64 of its bytes).
pub fn hash(identity: &Path) -> u64 {
    use std::os::unix::ffi::OsStrExt;
    xxhash_rust::xxh3::xxh3_64(identity.as_os_str().as_bytes())
}

/// The archives of `found` that fall in `shard`, in the order found. With [`Weigh::Bytes`] each
/// archive's size is read (an archive that cannot be read weighs 0, and fails in its shard).
pub fn select(found: Vec<Found>, shard: Shard, weigh: Weigh) -> Vec<Found> {
    use rayon::prelude::*;
    let keys: Vec<u64> = found.par_iter().map(|f| hash(&identity(&f.path))).collect();
    // On shared storage a `stat` waits on a server: many at once.
    let sizes: Vec<u64> = match weigh {
        Weigh::Bytes => found.par_iter().map(|f| std::fs::metadata(&f.path).map_or(0, |m| m.len())).collect(),
        Weigh::Count => vec![0; found.len()],
    };
    let to = assign(&keys, &sizes, shard.count);
    found.into_iter().zip(to).filter(|(_, s)| *s == shard.index).map(|(f, _)| f).collect()
}

/// The shard (from 0) of each archive, given its identity's hash and its size: the scheme the
/// module's documentation describes. A pure function of its inputs as a set: the same (distinct)
/// hashes and sizes in another order give each archive the same shard. `count` must be at least 1.
pub fn assign(keys: &[u64], sizes: &[u64], count: u32) -> Vec<u32> {
    assert_eq!(keys.len(), sizes.len(), "one size per key");
    let count = count.max(1);
    let n = keys.len();
    let big = if sizes.iter().all(|&s| s == 0) { 0 } else { n.min((n / BIG_SHARE).max(2 * count as usize)) };
    // The large ones: by size, largest first, ties by hash.
    let larger = |&a: &usize, &b: &usize| sizes[b].cmp(&sizes[a]).then(keys[a].cmp(&keys[b]));
    let mut order: Vec<usize> = (0..n).collect();
    if big > 0 && big < n {
        order.select_nth_unstable_by(big - 1, larger);
    }
    order.truncate(big);
    order.sort_unstable_by(larger);
    let mut to = vec![0u32; n];
    let packed = pack(&order, sizes, count, &mut to);
    let mut is_big = vec![false; n];
    for &i in &order {
        is_big[i] = true;
    }
    let hashed: u64 = (0..n).filter(|&i| !is_big[i]).map(|i| sizes[i]).sum();
    let weights = fill(&packed, hashed as f64);
    let top = weights.iter().copied().fold(0.0, f64::max);
    for i in (0..n).filter(|&i| !is_big[i]) {
        to[i] = weighted(keys[i], &weights, top);
    }
    to
}

/// Packs the archives `order` names (largest first) onto empty shards, each onto the lightest
/// so far (LPT; ties by shard), noting each one's shard in `to`; returns the shards' bytes.
fn pack(order: &[usize], sizes: &[u64], count: u32, to: &mut [u32]) -> Vec<u64> {
    use std::cmp::Reverse;
    let mut heap: std::collections::BinaryHeap<Reverse<(u64, u32)>> = (0..count).map(|s| Reverse((0, s))).collect();
    let mut loads = vec![0u64; count as usize];
    for &i in order {
        let Reverse((load, s)) = heap.pop().expect("at least one shard");
        to[i] = s;
        loads[s as usize] = load + sizes[i];
        heap.push(Reverse((loads[s as usize], s)));
    }
    loads
}

/// How much of the hashed bytes each shard should take so that all end level (water-filling:
/// the level `L` where the shards under it, topped up to it, hold `hashed`): `L - packed`, or 0
/// for a shard the packed archives already fill past it. All equal (1) when nothing is hashed
/// by weight (sizes unknown).
fn fill(packed: &[u64], hashed: f64) -> Vec<f64> {
    if hashed <= 0.0 {
        return vec![1.0; packed.len()];
    }
    let mut sorted: Vec<f64> = packed.iter().map(|&p| p as f64).collect();
    sorted.sort_by(f64::total_cmp);
    let mut sum = 0.0;
    let mut level = 0.0;
    for (j, &p) in sorted.iter().enumerate() {
        sum += p;
        level = (hashed + sum) / (j + 1) as f64;
        if sorted.get(j + 1).is_none_or(|&next| level <= next) {
            break;
        }
    }
    packed.iter().map(|&p| (level - p as f64).max(0.0)).collect()
}

/// The shard of a hashed archive: its jump hash, taken with a chance of the shard's weight over
/// the largest weight, else its jump hash again with the key mixed, and so on. Each archive's
/// sequence of candidates and of chances is its own, fixed by its key, so a small change of
/// the weights moves only the archives whose chance was near the changed threshold. With equal
/// weights it is the first candidate, the plain jump hash. `top` is the largest weight.
fn weighted(key: u64, weights: &[f64], top: f64) -> u32 {
    let mut k = key;
    for _ in 0..256 {
        let s = jump(k, weights.len() as u32);
        let chance = (mix(k) >> 11) as f64 / (1u64 << 53) as f64;
        if chance * top < weights[s as usize] || weights[s as usize] >= top {
            return s;
        }
        k = mix(k ^ 0x9e37_79b9_7f4a_7c15);
    }
    // Only where weights are near zero but one: the heaviest.
    weights.iter().enumerate().fold(0, |best, (s, &w)| if w > weights[best] { s } else { best }) as u32
}

/// A 64-bit finalizer (splitmix64's): a key's next candidate and its chance.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Jump consistent hashing (Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash
/// Algorithm", 2014): the bucket of `key` among `buckets`, in O(log n). Growing `buckets` to
/// `buckets + 1` moves a key only into the new bucket, 1 in `buckets + 1` of them.
pub fn jump(mut key: u64, buckets: u32) -> u32 {
    let (mut b, mut j) = (-1i64, 0i64);
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / ((key >> 33) + 1) as f64)) as i64;
    }
    b as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<OsString> + 'a {
        move |name| vars.iter().find(|(n, _)| *n == name).map(|(_, v)| OsString::from(v))
    }

    #[test]
    fn k_of_n_counts_from_one() {
        let none = env(&[]);
        assert_eq!(Shard::parse("1/8", &none).unwrap(), Shard { index: 0, count: 8 });
        assert_eq!(Shard::parse("8/8", &none).unwrap().to_string(), "8/8");
        for bad in ["0/8", "9/8", "1/0", "x", "1/", "/8", "-1/8", "1/8/2"] {
            assert!(matches!(Shard::parse(bad, &none), Err(Error::Usage { what: UsageError::BadShard { .. } })), "{bad}");
        }
    }

    #[test]
    fn slurm_ids_may_start_anywhere_and_step() {
        let at = |id: &str, min: &str, max: &str, step: &str, count: &str| {
            let vars = [("SLURM_ARRAY_TASK_ID", id), ("SLURM_ARRAY_TASK_MIN", min), ("SLURM_ARRAY_TASK_MAX", max), ("SLURM_ARRAY_TASK_STEP", step), ("SLURM_ARRAY_TASK_COUNT", count)];
            Shard::parse("slurm", env(&vars)).map(|s| (s.index(), s.count()))
        };
        assert_eq!(at("0", "0", "7", "1", "8").unwrap(), (0, 8));
        assert_eq!(at("8", "1", "8", "1", "8").unwrap(), (7, 8));
        assert_eq!(at("6", "0", "14", "2", "8").unwrap(), (3, 8));
        assert!(at("5", "0", "14", "2", "8").is_err(), "between steps");
        assert!(at("9", "1", "9", "1", "3").is_err(), "a list, not a range");
        assert!(at("x", "0", "7", "1", "8").is_err());
        let unset = Shard::parse("slurm", env(&[("SLURM_ARRAY_TASK_COUNT", "8")])).unwrap_err();
        assert!(unset.to_string().contains("SLURM_ARRAY_TASK_ID is not set"), "{unset}");
        // Without MIN, STEP and MAX (older Slurm): ids from 0.
        let vars = [("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4")];
        assert_eq!(Shard::parse("slurm", env(&vars)).unwrap(), Shard { index: 3, count: 4 });
    }

    #[test]
    fn jump_moves_only_into_a_new_bucket() {
        let keys: Vec<u64> = (0..10_000u64).map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())).collect();
        for n in 1..20 {
            for &k in &keys {
                let (a, b) = (jump(k, n), jump(k, n + 1));
                assert!(a < n && (a == b || b == n), "{k} {n}");
            }
        }
    }

    #[test]
    fn the_partition_does_not_depend_on_order() {
        let keys: Vec<u64> = (0..5_000u64).map(|i| xxhash_rust::xxh3::xxh3_64(&i.to_le_bytes())).collect();
        let sizes: Vec<u64> = keys.iter().map(|k| k % 1_000 + if k % 97 == 0 { 1 << 20 } else { 0 }).collect();
        let to = assign(&keys, &sizes, 7);
        let (rk, rs): (Vec<u64>, Vec<u64>) = keys.iter().zip(&sizes).rev().map(|(k, s)| (*k, *s)).unzip();
        let back: Vec<u32> = assign(&rk, &rs, 7).into_iter().rev().collect();
        assert_eq!(to, back);
        assert!(to.iter().all(|&s| s < 7));
    }
}
