//! Length-packed batches for a corpus: texts sorted by token count, cut into batches whose
//! padded size stays under a token budget, and results put back in input order.
//!
//! Padding a batch to its longest text costs `rows × longest − Σ lengths` wasted tokens;
//! grouping texts of similar length keeps that small (on 2,000 random lengths, a tenth of what
//! chunks taken in input order waste: `packing_by_length_pads_less_than_input_order`).
//!
//! ```
//! use streampool_engine::batcher::{pack, Budget, Reorder};
//!
//! let lengths = [7, 120, 9, 118, 8];
//! let batches = pack(&lengths, Budget { max_tokens: 256, max_rows: 8 });
//! assert_eq!(batches, [vec![0, 4, 2], vec![3, 1]]); // 3 × 9 and 2 × 120 padded tokens
//!
//! let mut order = Reorder::new();
//! for batch in batches.iter().rev() {
//!     for &i in batch {
//!         order.push(i, lengths[i]); // results arrive batch by batch, in any order
//!     }
//! }
//! assert_eq!(order.drain_ready().collect::<Vec<_>>(), lengths);
//! ```

use std::collections::BTreeMap;

/// How large a batch may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Budget {
    /// Padded tokens per batch at most: rows × the longest text's tokens. A single text longer
    /// than this goes alone.
    pub max_tokens: usize,
    /// Rows (texts) per batch at most; at least 1.
    pub max_rows: usize,
}

/// Batches of indices into `lengths` (token counts): sorted by length (ties in input order),
/// cut greedily so that each batch's padded size (rows × its longest) stays within `budget`.
/// Every index is in exactly one batch; batches come shortest first.
pub fn pack(lengths: &[usize], budget: Budget) -> Vec<Vec<usize>> {
    pack_by(lengths, budget, |len| len, |rows| rows)
}

/// [`pack`] for a model that pads: `padded(len)` is the length a batch whose longest text has
/// `len` tokens runs at (a sequence bucket), and `take(rows)` how many of the `rows` texts that
/// fit a batch to run together (a row bucket: a model that replays graphs captured for powers
/// of two takes the largest power of two; the rest start the next batch). The budget counts
/// `rows × padded(longest)`.
pub fn pack_by(
    lengths: &[usize],
    budget: Budget,
    padded: impl Fn(usize) -> usize,
    take: impl Fn(usize) -> usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| lengths[i]); // stable: ties keep input order
    let max_rows = budget.max_rows.max(1);
    let mut batches = Vec::new();
    let mut start = 0;
    while start < order.len() {
        // Sorted ascending, so each text that joins is the longest of the batch so far.
        let mut end = start + 1;
        while end < order.len() {
            let rows = end - start + 1;
            if rows > max_rows || rows * padded(lengths[order[end]]) > budget.max_tokens {
                break;
            }
            end += 1;
        }
        let rows = take(end - start).clamp(1, end - start);
        batches.push(order[start..start + rows].to_vec());
        start += rows;
    }
    batches
}

/// Real and padded tokens of `batches` over `lengths`: `(Σ lengths, Σ rows × longest)`.
pub fn tokens(lengths: &[usize], batches: &[Vec<usize>]) -> (usize, usize) {
    batches.iter().fold((0, 0), |(real, padded), batch| {
        let longest = batch.iter().map(|&i| lengths[i]).max().unwrap_or(0);
        let sum: usize = batch.iter().map(|&i| lengths[i]).sum();
        (real + sum, padded + batch.len() * longest)
    })
}

/// Puts results that arrive in any order back in input order: [`Reorder::push`] each result
/// with its index, [`Reorder::drain_ready`] takes those whose predecessors have all arrived.
/// Holds only the results that are waiting for an earlier one.
#[derive(Debug)]
pub struct Reorder<T> {
    /// The index the next result handed out has.
    next: usize,
    /// Results that arrived before an earlier one, by index.
    waiting: BTreeMap<usize, T>,
}

impl<T> Default for Reorder<T> {
    fn default() -> Self {
        Self::new()
    }
}

impl<T> Reorder<T> {
    /// Nothing arrived yet; the first index is 0.
    pub fn new() -> Self {
        Self { next: 0, waiting: BTreeMap::new() }
    }

    /// The result of input `index`. An index already handed out, or pushed twice, is ignored
    /// (the first value stays).
    pub fn push(&mut self, index: usize, value: T) {
        if index >= self.next {
            self.waiting.entry(index).or_insert(value);
        }
    }

    /// The results ready in input order: from the next index on, as long as each has arrived.
    pub fn drain_ready(&mut self) -> impl Iterator<Item = T> + '_ {
        std::iter::from_fn(move || {
            let value = self.waiting.remove(&self.next)?;
            self.next += 1;
            Some(value)
        })
    }

    /// Results that arrived and wait for an earlier one.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    /// Index of the next result to hand out (results handed out so far).
    pub fn next_index(&self) -> usize {
        self.next
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Deterministic pseudo-random numbers in `0..n`.
    fn numbers(count: usize, n: usize, seed: u64) -> Vec<usize> {
        let unit = |x: f32| (x + 1.0) / 2.0; // [-1, 1) to [0, 1)
        streampool_core::testing::rand(count, seed)
            .into_iter()
            .map(|x| ((unit(x) * n as f32) as usize).min(n - 1))
            .collect()
    }

    /// Over many random inputs and budgets: every index once, no batch over its budget unless
    /// it is one text too long for any batch, rows within the limit, lengths sorted.
    #[test]
    fn batches_respect_the_budget_and_hold_every_text_once() {
        for seed in 1..300u64 {
            let count = numbers(1, 400, seed)[0];
            let lengths: Vec<usize> = numbers(count, 512, seed + 7).iter().map(|l| l + 1).collect();
            let budget = Budget {
                max_tokens: 64 + numbers(1, 8192, seed + 11)[0],
                max_rows: 1 + numbers(1, 128, seed + 13)[0],
            };
            let batches = pack(&lengths, budget);
            let mut seen = vec![0; count];
            let mut previous_longest = 0;
            for batch in &batches {
                assert!(!batch.is_empty() && batch.len() <= budget.max_rows, "seed {seed}");
                let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
                assert!(
                    batch.len() * longest <= budget.max_tokens || batch.len() == 1,
                    "seed {seed}: {} rows of {longest} over {budget:?}",
                    batch.len()
                );
                let first = lengths[batch[0]];
                assert!(first >= previous_longest, "seed {seed}: batches sorted by length");
                previous_longest = longest;
                for &i in batch {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "seed {seed}: each text exactly once");
        }
    }

    #[test]
    fn an_empty_input_gives_no_batch_and_a_long_text_goes_alone() {
        assert!(pack(&[], Budget { max_tokens: 100, max_rows: 4 }).is_empty());
        let batches = pack(&[10, 500, 10], Budget { max_tokens: 100, max_rows: 0 });
        assert_eq!(batches, [vec![0], vec![2], vec![1]], "max_rows 0 counts as 1");
        let batches = pack(&[10, 500, 10], Budget { max_tokens: 100, max_rows: 4 });
        assert_eq!(batches, [vec![0, 2], vec![1]]);
    }

    /// Row buckets: every batch a power of two when `take` asks for it, still within budget,
    /// every text once; sequence buckets count in the budget.
    #[test]
    fn pack_by_takes_row_buckets_and_counts_padded_lengths() {
        let pow2 = |rows: usize| 1 << rows.ilog2();
        let round8 = |len: usize| len.div_ceil(8) * 8;
        for seed in 1..100u64 {
            let count = 1 + numbers(1, 1000, seed)[0];
            let lengths: Vec<usize> = numbers(count, 256, seed + 1).iter().map(|l| l + 1).collect();
            let budget = Budget { max_tokens: 4096, max_rows: 256 };
            let batches = pack_by(&lengths, budget, round8, pow2);
            let mut seen = vec![0; count];
            for batch in &batches {
                assert!(batch.len().is_power_of_two(), "seed {seed}: {} rows", batch.len());
                let longest = batch.iter().map(|&i| lengths[i]).max().unwrap();
                assert!(batch.len() * round8(longest) <= budget.max_tokens || batch.len() == 1);
                batch.iter().for_each(|&i| seen[i] += 1);
            }
            assert!(seen.iter().all(|&n| n == 1), "seed {seed}");
        }
        // 7 texts of 3 tokens padded to 8: 7 × 8 = 56 fits 64; taken as 4 + 2 + 1.
        let batches = pack_by(&[3; 7], Budget { max_tokens: 64, max_rows: 16 }, round8, pow2);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [4, 2, 1]);
        // Padded to 8, only 2 rows of 3 tokens fit 16 tokens (unpadded, 5 would).
        let batches = pack_by(&[3; 5], Budget { max_tokens: 16, max_rows: 16 }, round8, |r| r);
        assert_eq!(batches.iter().map(Vec::len).collect::<Vec<_>>(), [2, 2, 1]);
    }

    /// Sorting by length wastes far fewer padded tokens than chunks in input order.
    #[test]
    fn packing_by_length_pads_less_than_input_order() {
        let lengths: Vec<usize> = numbers(2000, 256, 5).iter().map(|l| l + 1).collect();
        let budget = Budget { max_tokens: 4096, max_rows: 32 };
        let (real, packed) = tokens(&lengths, &pack(&lengths, budget));
        let in_order: Vec<Vec<usize>> =
            (0..lengths.len()).collect::<Vec<_>>().chunks(32).map(<[usize]>::to_vec).collect();
        let (_, unsorted) = tokens(&lengths, &in_order);
        let (packed_waste, unsorted_waste) = (packed - real, unsorted - real);
        assert!(packed_waste * 10 < unsorted_waste, "{packed_waste} vs {unsorted_waste}");
    }

    /// Results pushed in any order come out in input order, each once, and only what waits for
    /// an earlier result is held.
    #[test]
    fn reorder_restores_input_order() {
        for seed in 1..50u64 {
            let count = 1 + numbers(1, 300, seed)[0];
            let mut arrival: Vec<usize> = (0..count).collect();
            for (i, j) in numbers(count, count, seed + 3).into_iter().enumerate() {
                arrival.swap(i, j);
            }
            let mut order = Reorder::new();
            let mut out = Vec::new();
            for &i in &arrival {
                order.push(i, i * 10);
                order.push(i, 0); // a repeat is ignored
                out.extend(order.drain_ready());
                assert_eq!(
                    order.waiting() + out.len(),
                    arrival.iter().position(|&a| a == i).unwrap() + 1
                );
            }
            assert_eq!(out, (0..count).map(|i| i * 10).collect::<Vec<_>>(), "seed {seed}");
            assert_eq!((order.next_index(), order.waiting()), (count, 0));
        }
    }
}
