//! MPNet's relative position bias: each layer's attention adds a learned bias per head to the
//! score of query `i` and key `j`, chosen by the bucket of the distance `j - i`. The bias depends
//! on the distance only, so it is resolved on the host once per model into a table per distance
//! that the attention kernels read ([`streampool_tensor::Ops::attention_qkv`]'s `bias`).

/// Distances from which buckets grow logarithmically up to the last one (transformers'
/// `max_distance`, fixed at 128 for MPNet).
const MAX_DISTANCE: f64 = 128.0;

/// The bucket of `relative` (= key position - query position) among `buckets`, as transformers'
/// `MPNetEncoder.relative_position_bucket`: half the buckets for keys before the query, half for
/// keys after; exact distances below a quarter of the buckets, logarithmic ones beyond. The
/// logarithm is taken in f32 as PyTorch takes it, so that distances whose bucket boundary falls
/// on a rounding edge (16, 32, 64 with 32 buckets) land where PyTorch puts them.
pub(crate) fn bucket(relative: i64, buckets: usize) -> usize {
    let half = (buckets / 2) as i64;
    let n = -relative;
    let side = if n < 0 { half } else { 0 };
    let n = n.abs();
    let exact = half / 2;
    let within = if n < exact {
        n
    } else {
        let scale = (MAX_DISTANCE / exact as f64).ln() as f32;
        let log = (n as f32 / exact as f32).ln() / scale * (half - exact) as f32;
        (exact + log as i64).min(half - 1)
    };
    (side + within) as usize
}

/// The per-distance bias table `[heads, 2 * span + 1]` (f32) from the learned bucket biases
/// `weight` (`[buckets, heads]`, transformers' `relative_attention_bias.weight`): entry
/// `[h, j - i + span]` is head `h`'s bias for a key `j - i` positions after its query.
pub(crate) fn distance_table(
    weight: &[f32],
    buckets: usize,
    heads: usize,
    span: usize,
) -> Vec<f32> {
    let width = 2 * span + 1;
    let mut table = vec![0.0; heads * width];
    for d in 0..width {
        let b = bucket(d as i64 - span as i64, buckets);
        for h in 0..heads {
            table[h * width + d] = weight[b * heads + h];
        }
    }
    table
}

#[cfg(test)]
mod tests {
    use super::*;

    /// transformers 5.23's buckets (32 of them) for relative positions -600..=600, as runs of
    /// (first position, bucket): `MPNetEncoder.relative_position_bucket(torch.arange(-600, 601))`.
    const TORCH_RUNS: [(i64, usize); 31] = [
        (-600, 15),
        (-90, 14),
        (-63, 13),
        (-45, 12),
        (-31, 11),
        (-22, 10),
        (-15, 9),
        (-11, 8),
        (-7, 7),
        (-6, 6),
        (-5, 5),
        (-4, 4),
        (-3, 3),
        (-2, 2),
        (-1, 1),
        (0, 0),
        (1, 17),
        (2, 18),
        (3, 19),
        (4, 20),
        (5, 21),
        (6, 22),
        (7, 23),
        (8, 24),
        (12, 25),
        (16, 26),
        (23, 27),
        (32, 28),
        (46, 29),
        (64, 30),
        (91, 31),
    ];

    #[test]
    fn buckets_match_transformers() {
        for (i, &(from, want)) in TORCH_RUNS.iter().enumerate() {
            let to = TORCH_RUNS.get(i + 1).map_or(600, |&(next, _)| next - 1);
            for rel in from..=to {
                assert_eq!(bucket(rel, 32), want, "relative position {rel}");
            }
        }
    }

    #[test]
    fn the_table_is_indexed_by_distance() {
        // Bucket b, head h: 10 * b + h.
        let weight: Vec<f32> =
            (0..32).flat_map(|b| (0..2).map(move |h| (10 * b + h) as f32)).collect();
        let table = distance_table(&weight, 32, 2, 20);
        assert_eq!(table.len(), 2 * 41);
        for rel in -20i64..=20 {
            let d = (rel + 20) as usize;
            let b = bucket(rel, 32) as f32;
            assert_eq!((table[d], table[41 + d]), (10.0 * b, 10.0 * b + 1.0), "distance {rel}");
        }
    }
}
