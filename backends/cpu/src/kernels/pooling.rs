//! Sentence-transformers pooling: masked mean over tokens, then L2 normalisation.

use super::error::{check_len, prod, KernelError};

/// The lengths of a pooling's operands, named `names`: `hidden` `[batch, seq, dim]`, `mask`
/// `[batch, seq]`, `out` `[batch, dim]`.
fn check_pool(
    [hidden_name, mask_name, out_name]: [&'static str; 3],
    hidden: &[f32],
    mask: Option<&[f32]>,
    [batch, seq, dim]: [usize; 3],
    out: &[f32],
) -> Result<(), KernelError> {
    check_len(hidden_name, hidden.len(), prod(&[batch, seq, dim])?)?;
    if let Some(m) = mask {
        check_len(mask_name, m.len(), prod(&[batch, seq])?)?;
    }
    check_len(out_name, out.len(), prod(&[batch, dim])?)
}

/// Max over the sequence, padding (mask 0) counted as -1e9 as sentence-transformers does:
/// `hidden` `[batch, seq, dim]`, `mask` `[batch, seq]` (`None`: every position), `out`
/// `[batch, dim]`.
pub fn max_pool(
    hidden: &[f32],
    mask: Option<&[f32]>,
    batch: usize,
    seq: usize,
    dim: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let names = ["max_pool hidden", "max_pool mask", "max_pool out"];
    check_pool(names, hidden, mask, [batch, seq, dim], out)?;
    if seq == 0 {
        return Ok(());
    }
    for b in 0..batch {
        let o = &mut out[b * dim..][..dim];
        o.fill(f32::MIN);
        for s in 0..seq {
            let padding = mask.is_some_and(|m| m[b * seq + s] == 0.0);
            for (ov, &hv) in o.iter_mut().zip(&hidden[(b * seq + s) * dim..][..dim]) {
                *ov = ov.max(if padding { -1e9 } else { hv });
            }
        }
    }
    Ok(())
}

/// Mean weighted by position (from 1) over the unmasked positions, as sentence-transformers'
/// `weightedmean` for right-padded sequences: `hidden` `[batch, seq, dim]`, `mask`
/// `[batch, seq]` (`None`: every position), `out` `[batch, dim]`.
pub fn weighted_mean_pool(
    hidden: &[f32],
    mask: Option<&[f32]>,
    batch: usize,
    seq: usize,
    dim: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let names = ["weighted_mean_pool hidden", "weighted_mean_pool mask", "weighted_mean_pool out"];
    check_pool(names, hidden, mask, [batch, seq, dim], out)?;
    for b in 0..batch {
        let o = &mut out[b * dim..][..dim];
        o.fill(0.0);
        let mut total = 0.0f32;
        for s in 0..seq {
            let w = mask.map_or(1.0, |m| m[b * seq + s]) * (s + 1) as f32;
            total += w;
            for (ov, &hv) in o.iter_mut().zip(&hidden[(b * seq + s) * dim..][..dim]) {
                *ov += hv * w;
            }
        }
        o.iter_mut().for_each(|v| *v /= total.max(1e-9));
    }
    Ok(())
}

/// The last unmasked position of each right-padded sequence (position `sum(mask) - 1`; the
/// last when `mask` is `None`): `hidden` `[batch, seq, dim]`, `out` `[batch, dim]`.
pub fn last_token_pool(
    hidden: &[f32],
    mask: Option<&[f32]>,
    batch: usize,
    seq: usize,
    dim: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let names = ["last_token_pool hidden", "last_token_pool mask", "last_token_pool out"];
    check_pool(names, hidden, mask, [batch, seq, dim], out)?;
    if seq == 0 {
        return Ok(());
    }
    for b in 0..batch {
        let n = mask.map_or(seq, |m| m[b * seq..][..seq].iter().sum::<f32>() as usize);
        let last = n.clamp(1, seq) - 1;
        out[b * dim..][..dim].copy_from_slice(&hidden[(b * seq + last) * dim..][..dim]);
    }
    Ok(())
}

/// `out[b] = sum_s(hidden[b, s] * mask[b, s]) / max(sum_s mask[b, s], 1e-9)`, as
/// sentence-transformers' mean pooling; `hidden` `[batch, seq, dim]`, `mask` `[batch, seq]` of 0/1.
pub fn mean_pool(
    hidden: &[f32],
    mask: &[f32],
    batch: usize,
    seq: usize,
    dim: usize,
    out: &mut [f32],
) -> Result<(), KernelError> {
    check_len("mean_pool hidden", hidden.len(), prod(&[batch, seq, dim])?)?;
    check_len("mean_pool mask", mask.len(), prod(&[batch, seq])?)?;
    check_len("mean_pool out", out.len(), prod(&[batch, dim])?)?;
    if dim == 0 {
        return Ok(());
    }
    for b in 0..batch {
        let o = &mut out[b * dim..][..dim];
        o.fill(0.0);
        let m = &mask[b * seq..][..seq];
        for (s, &w) in m.iter().enumerate() {
            if w != 0.0 {
                for (ov, &hv) in o.iter_mut().zip(&hidden[(b * seq + s) * dim..][..dim]) {
                    *ov += hv * w;
                }
            }
        }
        let count = m.iter().sum::<f32>().max(1e-9);
        for v in o.iter_mut() {
            *v /= count;
        }
    }
    Ok(())
}

/// In place, each row of `cols` becomes `x / max(||x||_2, 1e-12)` (`torch.nn.functional.normalize`).
pub fn l2_normalize_rows(x: &mut [f32], cols: usize) -> Result<(), KernelError> {
    if cols == 0 || x.len() % cols != 0 {
        return Err(KernelError::Shape(format!("l2_normalize: {} is not rows of {cols}", x.len())));
    }
    for row in x.chunks_exact_mut(cols) {
        let norm = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        for v in row.iter_mut() {
            *v /= norm;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_then_normalize() {
        let (batch, seq, dim) = (2, 3, 5);
        let hidden: Vec<f32> = (0..30).map(|i| (i as f32 * 0.41).sin()).collect();
        let mask = [1.0, 1.0, 0.0, 0.0, 0.0, 0.0];
        let mut out = vec![f32::NAN; batch * dim];
        mean_pool(&hidden, &mask, batch, seq, dim, &mut out).unwrap();
        for c in 0..dim {
            let want = (hidden[c] as f64 + hidden[dim + c] as f64) / 2.0;
            assert!((out[c] as f64 - want).abs() < 1e-6);
            assert_eq!(out[dim + c], 0.0); // all masked: zero sum / 1e-9
        }
        l2_normalize_rows(&mut out, dim).unwrap();
        let n: f64 = (0..dim)
            .map(|c| ((hidden[c] + hidden[dim + c]) as f64 / 2.0).powi(2))
            .sum::<f64>()
            .sqrt();
        for c in 0..dim {
            let want = (hidden[c] as f64 + hidden[dim + c] as f64) / 2.0 / n;
            assert!((out[c] as f64 - want).abs() < 1e-6 * (1.0 + want.abs()));
        }
        assert!(out[dim..].iter().all(|&v| v == 0.0));
        assert!(mean_pool(&hidden, &mask[..5], batch, seq, dim, &mut out).is_err());
        assert!(l2_normalize_rows(&mut out, 3).is_err());
    }
}
