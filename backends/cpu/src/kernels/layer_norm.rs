//! Layer normalisation over the last dimension, PyTorch semantics (biased variance, `eps` inside
//! the square root), plain and fused with BERT's residual add.

use super::error::{check_len, mul, KernelError};
use super::math::{simd, sum, sum_sq_dev};

fn check_params(
    rows: usize,
    dim: usize,
    gamma: &[f32],
    beta: &[f32],
) -> Result<usize, KernelError> {
    check_len("layer_norm gamma", gamma.len(), dim)?;
    check_len("layer_norm beta", beta.len(), dim)?;
    mul(rows, dim)
}

/// Normalises `row` in place, then applies `gamma`/`beta`.
#[inline(always)]
fn normalize(row: &mut [f32], gamma: &[f32], beta: &[f32], eps: f32) {
    let n = row.len() as f32;
    let mean = sum(row) / n;
    let var = sum_sq_dev(row, mean) / n;
    let inv = 1.0 / (var + eps).sqrt();
    for ((v, &g), &b) in row.iter_mut().zip(gamma).zip(beta) {
        *v = (*v - mean) * inv * g + b;
    }
}

/// `out[r] = (x[r] - mean) / sqrt(var + eps) * gamma + beta` for each of `rows` rows of `dim`.
///
/// ```
/// let mut out = [0.0f32; 2];
/// streampool_cpu::kernels::layer_norm(&[1.0, 3.0], 1, 2, &[1.0, 1.0], &[0.0, 0.0], 0.0, &mut out)
///     .unwrap();
/// assert_eq!(out, [-1.0, 1.0]);
/// ```
pub fn layer_norm(
    x: &[f32],
    rows: usize,
    dim: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let len = check_params(rows, dim, gamma, beta)?;
    check_len("layer_norm x", x.len(), len)?;
    check_len("layer_norm out", out.len(), len)?;
    if dim == 0 {
        return Ok(());
    }
    out.copy_from_slice(x);
    layer_norm_inplace(out, rows, dim, gamma, beta, eps)
}

/// [`layer_norm`] in place on `x[rows, dim]`.
pub fn layer_norm_inplace(
    x: &mut [f32],
    rows: usize,
    dim: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
) -> Result<(), KernelError> {
    let len = check_params(rows, dim, gamma, beta)?;
    check_len("layer_norm x", x.len(), len)?;
    if dim == 0 {
        return Ok(());
    }
    simd!([x: &'a mut [f32] = x, dim: usize = dim, gamma: &'a [f32] = gamma, beta: &'a [f32] = beta, eps: f32 = eps] {
        normalize_rows(x, dim, gamma, beta, eps)
    });
    Ok(())
}

/// BERT's `LayerNorm(x + bias + residual)` in one pass over memory: `x` is typically the output of
/// a GEMM run without its bias, `bias` (`[dim]`, broadcast) that bias, `residual` the block input.
#[allow(clippy::too_many_arguments)] // PyTorch's layer_norm arguments plus the two addends
pub fn add_layer_norm(
    x: &[f32],
    residual: &[f32],
    bias: Option<&[f32]>,
    rows: usize,
    dim: usize,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) -> Result<(), KernelError> {
    let len = check_params(rows, dim, gamma, beta)?;
    check_len("add_layer_norm x", x.len(), len)?;
    check_len("add_layer_norm residual", residual.len(), len)?;
    check_len("add_layer_norm out", out.len(), len)?;
    if let Some(b) = bias {
        check_len("add_layer_norm bias", b.len(), dim)?;
    }
    if dim == 0 {
        return Ok(());
    }
    simd!([x: &'a [f32] = x, residual: &'a [f32] = residual, bias: Option<&'a [f32]> = bias,
           gamma: &'a [f32] = gamma, beta: &'a [f32] = beta, eps: f32 = eps, out: &'a mut [f32] = out] {
        add_normalize_rows(x, residual, bias, gamma, beta, eps, out)
    });
    Ok(())
}

#[inline(always)]
fn normalize_rows(x: &mut [f32], dim: usize, gamma: &[f32], beta: &[f32], eps: f32) {
    for row in x.chunks_exact_mut(dim) {
        normalize(row, gamma, beta, eps);
    }
}

#[inline(always)]
fn add_normalize_rows(
    x: &[f32],
    residual: &[f32],
    bias: Option<&[f32]>,
    gamma: &[f32],
    beta: &[f32],
    eps: f32,
    out: &mut [f32],
) {
    let dim = gamma.len();
    {
        let rows =
            out.chunks_exact_mut(dim).zip(x.chunks_exact(dim)).zip(residual.chunks_exact(dim));
        for ((o, xr), rr) in rows {
            match bias {
                Some(b) => {
                    for (((o, &xv), &rv), &bv) in o.iter_mut().zip(xr).zip(rr).zip(b) {
                        *o = xv + bv + rv;
                    }
                }
                None => {
                    for ((o, &xv), &rv) in o.iter_mut().zip(xr).zip(rr) {
                        *o = xv + rv;
                    }
                }
            }
            normalize(o, gamma, beta, eps);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reference(x: &[f64], dim: usize, gamma: &[f32], beta: &[f32], eps: f64) -> Vec<f64> {
        let mut out = Vec::new();
        for row in x.chunks(dim) {
            let mean = row.iter().sum::<f64>() / dim as f64;
            let var = row.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / dim as f64;
            for (i, v) in row.iter().enumerate() {
                out.push((v - mean) / (var + eps).sqrt() * gamma[i] as f64 + beta[i] as f64);
            }
        }
        out
    }

    fn data(n: usize, k: f32) -> Vec<f32> {
        (0..n).map(|i| ((i as f32 * k).sin() * 3.0) + 0.5).collect()
    }

    #[test]
    fn plain_and_fused_match_reference() {
        let (rows, dim) = (5, 384);
        let (x, res, bias) = (data(rows * dim, 0.37), data(rows * dim, 0.11), data(dim, 0.7));
        let (gamma, beta) = (data(dim, 1.3), data(dim, 0.9));
        let mut out = vec![0.0; rows * dim];
        layer_norm(&x, rows, dim, &gamma, &beta, 1e-12, &mut out).unwrap();
        let xs: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        let want = reference(&xs, dim, &gamma, &beta, 1e-12);
        for (g, w) in out.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
        }
        add_layer_norm(&x, &res, Some(&bias), rows, dim, &gamma, &beta, 1e-5, &mut out).unwrap();
        let sum: Vec<f64> =
            (0..rows * dim).map(|i| x[i] as f64 + res[i] as f64 + bias[i % dim] as f64).collect();
        let want = reference(&sum, dim, &gamma, &beta, 1e-5);
        for (g, w) in out.iter().zip(&want) {
            assert!((*g as f64 - w).abs() < 1e-5 * (1.0 + w.abs()), "{g} vs {w}");
        }
    }

    #[test]
    fn bad_lengths() {
        let mut out = vec![0.0; 8];
        let err = layer_norm(&[0.0; 8], 2, 4, &[1.0; 3], &[0.0; 4], 1e-5, &mut out).unwrap_err();
        assert!(matches!(err, KernelError::Length { what: "layer_norm gamma", .. }));
        let err =
            add_layer_norm(&[0.0; 8], &[0.0; 7], None, 2, 4, &[1.0; 4], &[0.0; 4], 1e-5, &mut out)
                .unwrap_err();
        assert!(matches!(err, KernelError::Length { what: "add_layer_norm residual", .. }));
    }
}
