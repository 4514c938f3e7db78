//! Deterministic synthetic weights for the MLP and Conv1D models (tests, benchmarks, demos).

use std::path::Path;

use crate::loading::weights::save_f32;
use crate::ModelError;

/// `n` values uniform in `[-scale, scale)` from a fixed generator (SplitMix64) seeded by `seed`:
/// the same on every machine.
pub fn values(seed: u64, n: usize, scale: f32) -> Vec<f32> {
    let mut state = seed;
    (0..n)
        .map(|_| {
            state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            let unit = (z >> 40) as f32 / (1u64 << 24) as f32;
            (unit * 2.0 - 1.0) * scale
        })
        .collect()
}

/// Writes an [`crate::Mlp`] with layer widths `dims` (`dims[0]` inputs, then each layer's
/// outputs) to `path`. Weights scaled by `1/sqrt(fan_in)`.
pub fn write_mlp(path: &Path, dims: &[usize], seed: u64) -> Result<(), ModelError> {
    let mut tensors = Vec::new();
    for (i, pair) in dims.windows(2).enumerate() {
        let (inp, out) = (pair[0], pair[1]);
        let scale = 1.0 / (inp as f32).sqrt();
        let w = values(seed.wrapping_add(2 * i as u64), out * inp, scale);
        let b = values(seed.wrapping_add(2 * i as u64 + 1), out, 0.1);
        tensors.push((format!("layers.{i}.weight"), vec![out, inp], w));
        tensors.push((format!("layers.{i}.bias"), vec![out], b));
    }
    save(path, &tensors)
}

/// Writes a [`crate::Conv1dNet`] with channel counts `channels` (`channels[0]` inputs) and
/// kernel size `kernel` for every layer to `path`.
pub fn write_conv1d(
    path: &Path,
    channels: &[usize],
    kernel: usize,
    seed: u64,
) -> Result<(), ModelError> {
    let mut tensors = Vec::new();
    for (i, pair) in channels.windows(2).enumerate() {
        let (cin, cout) = (pair[0], pair[1]);
        let scale = 1.0 / ((cin * kernel) as f32).sqrt();
        let w = values(seed.wrapping_add(2 * i as u64), cout * cin * kernel, scale);
        let b = values(seed.wrapping_add(2 * i as u64 + 1), cout, 0.1);
        tensors.push((format!("convs.{i}.weight"), vec![cout, cin, kernel], w));
        tensors.push((format!("convs.{i}.bias"), vec![cout], b));
    }
    save(path, &tensors)
}

fn save(path: &Path, tensors: &[(String, Vec<usize>, Vec<f32>)]) -> Result<(), ModelError> {
    let refs: Vec<(&str, &[usize], &[f32])> =
        tensors.iter().map(|(n, s, d)| (n.as_str(), s.as_slice(), d.as_slice())).collect();
    Ok(save_f32(path, &refs)?)
}
