//! GELU, exact (erf) form as PyTorch's default `F.gelu` and BERT's `gelu`, optionally fused with
//! the bias add of the linear layer before it.

use super::error::{check_len, KernelError};
use super::math::{erf, simd};

#[inline(always)]
fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

/// `out[i] = gelu(x[i]) = x/2 * (1 + erf(x/sqrt(2)))`.
///
/// ```
/// let mut out = [0.0f32; 2];
/// streampool_cpu::kernels::gelu_erf(&[0.0, 1.0], &mut out).unwrap();
/// assert!((out[1] - 0.841_344_7).abs() < 1e-6);
/// ```
pub fn gelu_erf(x: &[f32], out: &mut [f32]) -> Result<(), KernelError> {
    check_len("gelu out", out.len(), x.len())?;
    simd!([x: &'a [f32] = x, out: &'a mut [f32] = out] { gelu_into(x, out) });
    Ok(())
}

// The loops are `#[inline(always)]` so they compile inside `simd!`'s AVX2/AVX-512 context.
#[inline(always)]
fn gelu_into(x: &[f32], out: &mut [f32]) {
    for (o, &v) in out.iter_mut().zip(x) {
        *o = gelu(v);
    }
}

#[inline(always)]
fn gelu_in_place(x: &mut [f32]) {
    for v in x.iter_mut() {
        *v = gelu(*v);
    }
}

#[inline(always)]
fn bias_gelu_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v = gelu(*v + b);
        }
    }
}

/// In place on whole rows of `bias.len()` (or any length without a bias): `x += bias`, then
/// GELU when `gelu`. The epilogue of [`super::linear_gelu`], run on each block while it is hot.
pub(crate) fn bias_act(x: &mut [f32], bias: Option<&[f32]>, gelu: bool) {
    match (bias, gelu) {
        (Some(b), true) if !b.is_empty() => {
            simd!([x: &'a mut [f32] = x, bias: &'a [f32] = b] { bias_gelu_rows(x, bias) })
        }
        (Some(b), false) if !b.is_empty() => {
            simd!([x: &'a mut [f32] = x, bias: &'a [f32] = b] { bias_rows(x, bias) })
        }
        (_, true) => gelu_erf_inplace(x),
        (_, false) => {}
    }
}

#[inline(always)]
fn bias_rows(x: &mut [f32], bias: &[f32]) {
    for row in x.chunks_exact_mut(bias.len()) {
        for (v, &b) in row.iter_mut().zip(bias) {
            *v += b;
        }
    }
}

/// In place: GELU's tanh approximation (PyTorch's `gelu(approximate="tanh")`), computed in f64
/// and rounded (Gemma's activation; not a hot path here).
pub fn gelu_tanh_inplace(x: &mut [f32]) {
    let k = (2.0 / std::f64::consts::PI).sqrt();
    for v in x.iter_mut() {
        let y = *v as f64;
        *v = (0.5 * y * (1.0 + (k * (y + 0.044715 * y * y * y)).tanh())) as f32;
    }
}

/// In place: `x = tanh(x)` (the activation of sentence-transformers' `Dense` modules).
pub fn tanh_inplace(x: &mut [f32]) {
    x.iter_mut().for_each(|v| *v = v.tanh());
}

/// In-place [`gelu_erf`].
pub fn gelu_erf_inplace(x: &mut [f32]) {
    simd!([x: &'a mut [f32] = x] { gelu_in_place(x) });
}

/// In place on a row-major `[rows, bias.len()]` block: `x = gelu(x + bias)` (bias broadcast over
/// rows) — the tail of BERT's intermediate layer when the GEMM ran without its bias.
pub fn bias_gelu_inplace(x: &mut [f32], bias: &[f32]) -> Result<(), KernelError> {
    let cols = bias.len();
    if cols == 0 || x.len() % cols != 0 {
        return Err(KernelError::Shape(format!(
            "bias_gelu: {} elements are not whole rows of {cols}",
            x.len()
        )));
    }
    simd!([x: &'a mut [f32] = x, bias: &'a [f32] = bias] { bias_gelu_rows(x, bias) });
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gelu64(x: f64) -> f64 {
        // erf from its Taylor series (|x/sqrt2| < 5 here; 300 terms in f64 converge).
        let z = x / std::f64::consts::SQRT_2;
        let erf = if z.abs() > 5.0 {
            z.signum()
        } else {
            let (mut term, mut s) = (z, z);
            for n in 1..300 {
                term *= -z * z / n as f64;
                s += term / (2 * n + 1) as f64;
            }
            s * 2.0 / std::f64::consts::PI.sqrt()
        };
        0.5 * x * (1.0 + erf)
    }

    #[test]
    fn matches_reference() {
        let x: Vec<f32> = (-600..=600).map(|i| i as f32 * 0.01).collect();
        let mut out = vec![0.0; x.len()];
        gelu_erf(&x, &mut out).unwrap();
        for (&xi, &o) in x.iter().zip(&out) {
            let want = gelu64(xi as f64);
            // absolute 2e-7 on erf scales with |x|/2; relative 1e-5 elsewhere.
            assert!(
                (o as f64 - want).abs() <= 1e-5 * want.abs() + 1e-7 * (1.0 + xi.abs() as f64),
                "gelu({xi}) = {o}, want {want}"
            );
        }
        let mut y = x.clone();
        gelu_erf_inplace(&mut y);
        assert_eq!(y, out);
    }

    #[test]
    fn fused_bias() {
        let bias = [0.5f32, -1.0, 0.25];
        let x: Vec<f32> = (0..12).map(|i| i as f32 * 0.3 - 1.5).collect();
        let mut y = x.clone();
        bias_gelu_inplace(&mut y, &bias).unwrap();
        for (i, (&xi, &yi)) in x.iter().zip(&y).enumerate() {
            let want = gelu64(xi as f64 + bias[i % 3] as f64);
            assert!((yi as f64 - want).abs() <= 1e-5 * want.abs() + 1e-6);
        }
        assert!(bias_gelu_inplace(&mut y[..11], &bias).is_err());
        assert!(gelu_erf(&x, &mut y[..3]).is_err());
    }
}
